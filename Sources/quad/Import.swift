internal import ArgumentParser
internal import CampusContracts
internal import Foundation
internal import GRPCWire
internal import QuadRPC

/// `quad import HOST:PORT roster.csv`: streams the registrar's roster to ImportRoster, with a
/// progress bar, and prints what the server did with each row.
struct ImportCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "import",
    abstract: "Import a registrar roster (CSV) into the students context.",
    discussion: """
      The file is UTF-8 CSV (RFC 4180) with a header row naming the columns registrar_id, \
      given_name, family_name, email (required), program, status, enrolled_on (optional); \
      other columns are ignored. Rows are validated by the server; rejected rows are listed \
      with their line numbers. Importing the same file again changes nothing. Exits 0 when \
      every row was accepted, 1 when some were rejected.
      """)

  @Argument(help: "HOST:PORT of the server.") var address: String
  @Argument(help: "The roster: a CSV file with a header row.") var file: String
  @OptionGroup var connection: ConnectionOptions

  func run() async throws {
    let roster: Roster
    do {
      roster = try Roster(csv: try Data(contentsOf: URL(fileURLWithPath: file)))
    } catch let e as Roster.Failure {
      throw ValidationError("\(file): \(e.message)")
    } catch {
      throw ValidationError("cannot read \(file): \(error.localizedDescription)")
    }
    let client = try connection.client(address)
    defer { Task { await client.close() } }
    var options = try connection.callOptions()
    if options.metadata.first("x-correlation-id") == nil {
      options.metadata.add("x-correlation-id", "import-\(UUID().uuidString.lowercased())")
    }
    let progress = Progress(total: roster.rows.count)
    var summary = Campus_Students_V1_ImportRosterResponse()
    try await withRPCErrors {
      summary = try await Campus_Students_V1_Students.Client(client).importRoster(options: options) { writer in
        for row in roster.rows {
          try await writer.write(row)
          progress.advance()
        }
      }
    }
    progress.finish()
    printLine("imported \(file): \(roster.rows.count) rows; created \(summary.created), updated \(summary.updated), unchanged \(summary.unchanged), rejected \(summary.rejected)")
    for r in summary.rejections {
      printLine("  line \(r.rowNumber) (\(r.registrarId.isEmpty ? "no registrar_id" : r.registrarId)): \(r.reason)")
    }
    if summary.rejected > Int64(summary.rejections.count) {
      printLine("  … and \(summary.rejected - Int64(summary.rejections.count)) more")
    }
    if summary.rejected > 0 { throw ExitCode(1) }
  }
}

/// A roster file's rows, read from CSV by their header's column names.
struct Roster {
  struct Failure: Error {
    let message: String
  }

  static let required = ["registrar_id", "given_name", "family_name", "email"]
  static let optional = ["program", "status", "enrolled_on"]

  var rows: [Campus_Students_V1_RosterRow] = []

  init(csv data: Data) throws {
    var bytes = [UInt8](data)
    if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
    guard let text = String(validating: bytes, as: UTF8.self) else {
      let line = Self.lineOfFirstInvalidUTF8(bytes)
      throw Failure(message: "line \(line) is not UTF-8")
    }
    var records = try CSV.records(text)
    guard let header = records.first, !header.fields.allSatisfy(\.isEmpty) else { throw Failure(message: "it is empty; the first line must name the columns") }
    records.removeFirst()
    var column: [String: Int] = [:]
    for (i, name) in header.fields.enumerated() {
      let key = name.trimmingCharacters(in: .whitespaces).lowercased()
      if column[key] == nil { column[key] = i }
    }
    let missing = Self.required.filter { column[$0] == nil }
    guard missing.isEmpty else {
      throw Failure(message: "line \(header.line): the header lacks the required column\(missing.count > 1 ? "s" : "") \(missing.joined(separator: ", "))")
    }
    for record in records where !(record.fields.count == 1 && record.fields[0].isEmpty) {
      func value(_ name: String) -> String {
        guard let i = column[name], i < record.fields.count else { return "" }
        return record.fields[i].trimmingCharacters(in: .whitespaces)
      }
      var row = Campus_Students_V1_RosterRow()
      row.rowNumber = Int64(record.line)
      row.registrarId = value("registrar_id")
      row.givenName = value("given_name")
      row.familyName = value("family_name")
      row.email = value("email")
      row.program = value("program")
      row.status = value("status")
      row.enrolledOn = value("enrolled_on")
      rows.append(row)
    }
  }

  static func lineOfFirstInvalidUTF8(_ bytes: [UInt8]) -> Int {
    var line = 1
    var start = 0
    for (i, b) in bytes.enumerated() where b == 0x0A {
      if String(validating: bytes[start..<i], as: UTF8.self) == nil { return line }
      line += 1
      start = i + 1
    }
    return line
  }
}

/// RFC 4180 CSV: fields separated by commas, records by CRLF or LF, fields in double quotes may
/// hold commas, line breaks and doubled quotes.
enum CSV {
  struct Record {
    /// The line the record starts on (from 1).
    let line: Int
    let fields: [String]
  }

  static func records(_ text: String) throws -> [Record] {
    var records: [Record] = []
    var fields: [String] = []
    var field = ""
    var line = 1, recordLine = 1
    var quoted = false, wasQuoted = false
    var chars = text.unicodeScalars.makeIterator()
    var pending: Unicode.Scalar?
    func next() -> Unicode.Scalar? {
      if let p = pending {
        pending = nil
        return p
      }
      return chars.next()
    }
    while let c = next() {
      if quoted {
        if c == "\"" {
          if let n = next() {
            if n == "\"" { field.unicodeScalars.append("\"") } else {
              quoted = false
              pending = n
            }
          } else {
            quoted = false
          }
        } else {
          if c == "\n" { line += 1 }
          field.unicodeScalars.append(c)
        }
        continue
      }
      switch c {
      case "\"" where field.isEmpty && !wasQuoted:
        quoted = true
        wasQuoted = true
      case "\"":
        throw Roster.Failure(message: "line \(line): a quote inside an unquoted field (quote the whole field and double the quote)")
      case ",":
        fields.append(field)
        field = ""
        wasQuoted = false
      case "\r":
        continue
      case "\n":
        fields.append(field)
        records.append(Record(line: recordLine, fields: fields))
        fields = []
        field = ""
        wasQuoted = false
        line += 1
        recordLine = line
      default:
        if wasQuoted { throw Roster.Failure(message: "line \(line): text after a quoted field's closing quote") }
        field.unicodeScalars.append(c)
      }
    }
    if quoted { throw Roster.Failure(message: "line \(recordLine): a quoted field is never closed") }
    if !field.isEmpty || !fields.isEmpty || wasQuoted {
      fields.append(field)
      records.append(Record(line: recordLine, fields: fields))
    }
    return records
  }
}

/// A progress bar on standard error, drawn only when it is a terminal.
final class Progress: @unchecked Sendable {
  let total: Int
  private var done = 0
  private var drawn = -1
  private let terminal = isatty(2) != 0

  init(total: Int) {
    self.total = total
  }

  func advance() {
    done += 1
    let percent = total == 0 ? 100 : done * 100 / total
    guard terminal, percent != drawn else { return }
    drawn = percent
    let width = 30
    let filled = width * percent / 100
    let bar = String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled)
    FileHandle.standardError.write(Data("\r[\(bar)] \(percent)% \(done)/\(total) rows".utf8))
  }

  func finish() {
    if terminal && drawn >= 0 { FileHandle.standardError.write(Data("\n".utf8)) }
  }
}
