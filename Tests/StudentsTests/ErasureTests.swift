internal import CampusContracts
internal import CampusSupport
internal import Crypto
internal import EventsService
internal import Foundation
internal import GRPCWire
internal import Postgres
internal import QuadProtobuf
internal import QuadRPC
internal import Testing
internal import TestSupport

/// Crypto-shredding: a student's personal fields are sealed in the log with their key; erasing
/// them destroys it. Checked on `quad serve` over real gRPC, against a pg_dump of the whole
/// database (what a backup would hold) and the server's log.
@Suite("Students: personal data sealed in the log, and erasure")
struct ErasureTests {
  static let options = CallOptions(timeout: .seconds(30))
  /// S1's personal data: none of it may survive the erasure anywhere.
  static let secrets = ["Zorblaxia", "Zorblaxine", "Quendrith", "zorblaxia.q"]

  struct Failure: Error, CustomStringConvertible { let description: String }

  static func keyed(_ key: String) -> CallOptions {
    CallOptions(timeout: .seconds(30), metadata: [("idempotency-key", .text(key))])
  }

  /// Every committed event: where, what, whose, and its payload bytes.
  static func events(_ client: GRPCClient) async throws -> [(Int64, String, String, [UInt8])] {
    var request = Quad_Events_V1_SubscribeRequest()
    request.start = .first
    var out: [(Int64, String, String, [UInt8])] = []
    do {
      try await Quad_Events_V1_Events.Client(client).subscribe(request, options: CallOptions(timeout: .seconds(3))) { stream in
        for try await e in stream { out.append((e.cursor.position, e.eventType, e.streamId, e.payload.value)) }
      }
    } catch {}
    return out
  }

  /// The whole database as `pg_dump` writes it.
  static func dump(_ pg: TestPostgres) async throws -> String {
    let script = #"BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1); "$BIN/pg_dump" --data-only -d "$0""#
    let (status, output) = try await runProcess(["sh", "-c", script, pg.conninfo])
    guard status == 0 else { throw Failure(description: "pg_dump failed: \(output)") }
    return output
  }

  static func registered(_ id: String, _ given: String, _ family: String, _ email: String) -> Campus_Students_V1_RegisterStudentRequest {
    var r = Campus_Students_V1_RegisterStudentRequest()
    r.studentId = id
    r.givenName = given
    r.familyName = family
    r.email = email
    r.program = "CS-BSC"
    return r
  }

  @Test("Personal fields are sealed in every event and opened for the students service; after EraseStudent no event payload, table, dump or log line holds them, while every position, payload byte and other student is unchanged")
  func erasure() async throws {
    let pg = try await TestPostgres.start()
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quad-erasure-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let log = dir.appendingPathComponent("serve.log").path
    let (server, port) = try await QuadServe.start(["--database-url", pg.conninfo, "--log-level", "debug"], log: log)
    let client = try GRPCClient(target: "127.0.0.1:\(port)")
    let students = Campus_Students_V1_Students.Client(client)

    // S1 (to be erased) and S2, each with writes whose answers are kept for retries.
    _ = try await students.registerStudent(Self.registered("S1", "Zorblaxia", "Quendrith", "zorblaxia.q@uni.example.edu"), options: Self.keyed("reg-s1"))
    _ = try await students.registerStudent(Self.registered("S2", "Marvolo", "Tenebris", "marvolo.t@uni.example.edu"), options: Self.keyed("reg-s2"))
    var rename = Campus_Students_V1_UpdateStudentRequest()
    rename.studentId = "S1"
    rename.givenName = "Zorblaxine"
    rename.updateMask.paths = ["given_name"]
    _ = try await students.updateStudent(rename, options: Self.keyed("rename-s1"))
    var issue = Campus_Students_V1_IssueCardRequest()
    issue.studentId = "S1"
    issue.cardId = "CARD-S1"
    _ = try await students.issueCard(issue, options: Self.options)
    // The scans context learns of the card from the log first, so the scan names the student.
    let pool = PostgresPool(conninfo: pg.conninfo, maximumConnections: 1)
    let known = ContinuousClock.now + .seconds(60)
    while ContinuousClock.now < known {
      let n = try await pool.withConnection { db in
        try await db.query("SELECT count(*) AS n FROM scans.cards WHERE card_id = 'CARD-S1'", named: "test.card")[0].decode("n", as: Int64.self)
      }
      if n > 0 { break }
      try await Task.sleep(for: .milliseconds(100))
    }
    pool.shutdown()
    var scan = Campus_Scans_V1_RecordScanRequest()
    scan.scanId = "erase-1"
    scan.cardId = "CARD-S1"
    scan.location = "library"
    scan.direction = .in
    scan.scannedAt = Google_Protobuf_Timestamp(microseconds: Int64(Date().timeIntervalSince1970 * 1_000_000) - 60_000_000)
    scan.deviceId = "door-lib"
    _ = try await Campus_Scans_V1_Scans.Client(client).recordScan(scan, options: Self.options)

    // Sealed in the log, opened for the students service.
    let before = try await Self.events(client)
    let s1Registered = try #require(before.first { $0.2 == "S1" && $0.1 == "campus.students.v1.StudentRegistered" })
    let sealed = try Campus_Students_V1_StudentRegistered(serializedBytes: s1Registered.3)
    #expect(sealed.givenName.hasPrefix("quad-enc:v1:") && sealed.email.hasPrefix("quad-enc:v1:") && sealed.program == "CS-BSC", "\(sealed)")
    #expect(!Self.secrets.contains { s in before.contains { String(decoding: $0.3, as: UTF8.self).contains(s) } }, "no plaintext in any payload")
    var history = Campus_Students_V1_GetStudentHistoryRequest()
    history.studentId = "S1"
    let opened = try await students.getStudentHistory(history, options: Self.options).entries
    #expect(try Campus_Students_V1_StudentRegistered(serializedBytes: opened[0].event.value).givenName == "Zorblaxia")
    var getS2 = Campus_Students_V1_GetStudentRequest()
    getS2.studentId = "S2"
    let s2Before = try await students.getStudent(getS2, options: Self.options)
    #expect(s2Before.givenName == "Marvolo")

    // Erase S1.
    var erase = Campus_Students_V1_EraseStudentRequest()
    erase.studentId = "S1"
    erase.reason = "erasure request 42"
    let erased = try await students.eraseStudent(erase, options: Self.options)
    #expect(erased.erased && erased.givenName.isEmpty && erased.familyName.isEmpty && erased.email.isEmpty && erased.cardId == "CARD-S1" && erased.program == "CS-BSC")
    #expect(try await students.eraseStudent(erase, options: Self.options).erased, "erasing again answers with the erased record")

    // The log: every event and payload byte as before, the erasure appended.
    let after = try await Self.events(client)
    #expect(after.count == before.count + 1)
    #expect(zip(before, after).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 && $0.2 == $1.2 && $0.3 == $1.3 }, "positions, order and payloads unchanged")
    #expect(after.last?.1 == "campus.students.v1.StudentErased" && after.last?.2 == "S1")
    // S1's personal fields cannot be read any more, by anyone; the rest of their record can.
    let reopened = try await students.getStudentHistory(history, options: Self.options).entries
    #expect(reopened.count == opened.count + 1 && zip(opened, reopened).allSatisfy { $0.position == $1.position && $0.version == $1.version })
    let shredded = try Campus_Students_V1_StudentRegistered(serializedBytes: reopened[0].event.value)
    #expect(shredded.givenName.isEmpty && shredded.email.isEmpty && shredded.studentId == "S1" && shredded.program == "CS-BSC")
    var asOf = Campus_Students_V1_GetStudentAsOfRequest()
    asOf.studentId = "S1"
    asOf.asOf = Google_Protobuf_Timestamp(microseconds: Int64(Date().timeIntervalSince1970 * 1_000_000))
    let rebuilt = try await students.getStudentAsOf(asOf, options: Self.options)
    #expect(rebuilt.givenName.isEmpty && rebuilt.erased && rebuilt.cardId == "CARD-S1")
    var again = rename
    again.givenName = "Zorblaxia"
    await #expect(throws: RPCError.self, "no personal data is written for an erased student") { _ = try await students.updateStudent(again, options: Self.options) }
    // The retried write's kept answer went too: it now registers nothing and reveals nothing.
    let retried = await #expect(throws: RPCError.self) {
      _ = try await students.registerStudent(Self.registered("S1", "Zorblaxia", "Quendrith", "zorblaxia.q@uni.example.edu"), options: Self.keyed("reg-s1"))
    }
    #expect((retried as? RPCError)?.code == .alreadyExists)
    // S2 is untouched; the scans and analytics of S1 stay.
    #expect(try await students.getStudent(getS2, options: Self.options) == s2Before)
    var scans = Campus_Scans_V1_ListScansRequest()
    scans.studentId = "S1"
    #expect(try await Campus_Scans_V1_Scans.Client(client).listScans(scans, options: Self.options).scans.map(\.scanId) == ["erase-1"])

    await client.close()
    await server.kill()
    // No table, and so no backup, holds S1's personal data; S2's is there (the dump works).
    // (bytea columns are dumped as hex: look for both spellings.)
    let dump = try await Self.dump(pg)
    func holds(_ s: String) -> Bool {
      dump.localizedCaseInsensitiveContains(s) || dump.contains(s.utf8.map { String(format: "%02x", $0) }.joined())
    }
    #expect(holds("Marvolo"))
    for s in Self.secrets { #expect(!holds(s), "the dump holds \(s)") }
    // Nor does any log line, at debug level.
    let lines = try String(contentsOfFile: log, encoding: .utf8)
    #expect(lines.contains("personal data read"))
    for s in Self.secrets { #expect(!lines.localizedCaseInsensitiveContains(s), "the log holds \(s)") }
    await pg.stop()
    try? FileManager.default.removeItem(at: dir)
  }

  @Test("Sealing rewrites only the personal fields; a token opens only for its subject, type and field and key; tampering or a wrong key empties the field; malformed payloads are refused")
  func sealing() throws {
    var e = Campus_Students_V1_StudentRegistered()
    e.studentId = "S9"
    e.givenName = "Ada"
    e.familyName = "Byron"
    e.email = "ada@uni.example.edu"
    e.program = "MATH"
    let type = "campus.students.v1.StudentRegistered"
    let fields = Campus_Students_V1_StudentRegistered.personalFieldNumbers
    let key = PersonalData.newKey()
    let sealed = try PersonalData.seal(e.serializedBytes(), type: type, fields: fields, subject: "S9", key: key)
    let s = try Campus_Students_V1_StudentRegistered(serializedBytes: sealed)
    #expect(s.studentId == "S9" && s.program == "MATH" && s.givenName.hasPrefix("quad-enc:v1:") && s.givenName != s.familyName)
    #expect(try PersonalData.seal(sealed, type: type, fields: fields, subject: "S9", key: key) == sealed, "sealing twice changes nothing")
    #expect(try Campus_Students_V1_StudentRegistered(serializedBytes: PersonalData.open(sealed, type: type, fields: fields, subject: "S9", key: key)) == e)
    for (subject, k) in [("S8", key), ("S9", PersonalData.newKey())] {
      let wrong = try Campus_Students_V1_StudentRegistered(serializedBytes: PersonalData.open(sealed, type: type, fields: fields, subject: subject, key: k))
      #expect(wrong.givenName.isEmpty && wrong.email.isEmpty && wrong.program == "MATH")
    }
    let none = try Campus_Students_V1_StudentRegistered(serializedBytes: PersonalData.open(sealed, type: type, fields: fields, subject: "S9", key: nil))
    #expect(none.givenName.isEmpty && none.studentId == "S9")
    var tampered = s
    tampered.givenName = String(tampered.givenName.dropLast(4)) + "AAA="
    #expect(try Campus_Students_V1_StudentRegistered(serializedBytes: PersonalData.open(tampered.serializedBytes(), type: type, fields: fields, subject: "S9", key: key)).givenName.isEmpty)
    for bad: [UInt8] in [[0x12, 0x05, 0x41], [0x12], [0x13, 0x00], [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]] {
      #expect(throws: PersonalData.Malformed.self) { _ = try PersonalData.seal(bad, type: type, fields: fields, subject: "S9", key: key) }
    }
  }
}
