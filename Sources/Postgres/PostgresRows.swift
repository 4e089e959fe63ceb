/// The rows a statement returned, with their column names and types, values in text form.
package struct PostgresRows: Sendable, RandomAccessCollection {
  package let columns: [String]
  /// Each column's type OID.
  package let types: [UInt32]
  private let values: [String?]
  /// Rows inserted, updated or deleted (`PQcmdTuples`), 0 for other statements.
  package let affectedRows: Int

  init(columns: [String], types: [UInt32], values: [String?], affectedRows: Int) {
    self.columns = columns
    self.types = types
    self.values = values
    self.affectedRows = affectedRows
  }

  package var startIndex: Int { 0 }
  package var endIndex: Int { columns.isEmpty ? 0 : values.count / columns.count }

  package subscript(position: Int) -> PostgresRow {
    PostgresRow(rows: self, index: position)
  }

  fileprivate func value(row: Int, column: Int) -> String? { values[row * columns.count + column] }
}

/// One row: values by column name or position, decoded into Swift types.
package struct PostgresRow: Sendable {
  fileprivate let rows: PostgresRows
  fileprivate let index: Int

  /// The value of column `name` as `T` (use an optional `T` for a column that may be NULL).
  ///
  /// - Throws: ``PostgresError`` `.decoding` for an unknown column, a NULL where `T` is not
  ///   optional, or text that is not a `T`.
  package func decode<T: PostgresDecodable>(_ name: String, as type: T.Type = T.self) throws(PostgresError) -> T {
    guard let c = rows.columns.firstIndex(of: name) else {
      throw PostgresError(.decoding, "no column \(name) (columns: \(rows.columns.joined(separator: ", ")))")
    }
    return try decode(column: c, as: type)
  }

  /// The value of the column at `column` as `T`.
  package func decode<T: PostgresDecodable>(column: Int, as type: T.Type = T.self) throws(PostgresError) -> T {
    guard column < rows.columns.count else { throw PostgresError(.decoding, "no column \(column)") }
    let text = rows.value(row: index, column: column)
    do {
      return try T(postgresText: text, oid: rows.types[column])
    } catch {
      throw PostgresError(.decoding, "column \(rows.columns[column]): \(error.message)")
    }
  }
}

/// A Swift type a text-form result value decodes into.
package protocol PostgresDecodable: Sendable {
  /// Decodes `text` (nil for SQL NULL) of a column of type `oid`.
  init(postgresText text: String?, oid: UInt32) throws(PostgresError)
}

extension PostgresDecodable {
  static func required(_ text: String?) throws(PostgresError) -> String {
    guard let text else { throw PostgresError(.decoding, "NULL where a \(Self.self) is required") }
    return text
  }
}

extension String: PostgresDecodable {
  package init(postgresText text: String?, oid: UInt32) throws(PostgresError) { self = try Self.required(text) }
}

extension Int64: PostgresDecodable {
  package init(postgresText text: String?, oid: UInt32) throws(PostgresError) {
    guard let v = Int64(try Self.required(text)) else { throw PostgresError(.decoding, "\(text!) is not an integer") }
    self = v
  }
}

extension Int: PostgresDecodable {
  package init(postgresText text: String?, oid: UInt32) throws(PostgresError) { self = Int(try Int64(postgresText: text, oid: oid)) }
}

extension Int32: PostgresDecodable {
  package init(postgresText text: String?, oid: UInt32) throws(PostgresError) {
    guard let v = Int32(try Self.required(text)) else { throw PostgresError(.decoding, "\(text!) is not a 32-bit integer") }
    self = v
  }
}

extension Bool: PostgresDecodable {
  package init(postgresText text: String?, oid: UInt32) throws(PostgresError) {
    switch try Self.required(text) {
    case "t", "true": self = true
    case "f", "false": self = false
    default: throw PostgresError(.decoding, "\(text!) is not a boolean")
    }
  }
}

extension Double: PostgresDecodable {
  package init(postgresText text: String?, oid: UInt32) throws(PostgresError) {
    guard let v = Double(try Self.required(text)) else { throw PostgresError(.decoding, "\(text!) is not a number") }
    self = v
  }
}

extension Array: PostgresDecodable where Element == UInt8 {
  /// `bytea` in its hex text form (`\x0102ff`).
  package init(postgresText text: String?, oid: UInt32) throws(PostgresError) {
    let t = Array(try Self.required(text).utf8)
    guard t.count >= 2, t[0] == UInt8(ascii: "\\"), t[1] == UInt8(ascii: "x"), t.count % 2 == 0 else {
      throw PostgresError(.decoding, "not bytea in hex form")
    }
    func nibble(_ c: UInt8) throws(PostgresError) -> UInt8 {
      switch c {
      case 0x30...0x39: return c - 0x30
      case 0x61...0x66: return c - 0x61 + 10
      case 0x41...0x46: return c - 0x41 + 10
      default: throw PostgresError(.decoding, "bad hex digit in bytea")
      }
    }
    var out: [UInt8] = []
    out.reserveCapacity((t.count - 2) / 2)
    var i = 2
    while i < t.count {
      out.append(try nibble(t[i]) << 4 | nibble(t[i + 1]))
      i += 2
    }
    self = out
  }
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
  package init(postgresText text: String?, oid: UInt32) throws(PostgresError) {
    self = try text.map { t throws(PostgresError) in try Wrapped(postgresText: t, oid: oid) }
  }
}
