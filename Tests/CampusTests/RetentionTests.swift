internal import CampusContracts
internal import Foundation
internal import GRPCWire
internal import Postgres
internal import QuadProtobuf
internal import QuadRPC
internal import Testing
internal import TestSupport

/// `quad serve --scan-retention-days`: scans older than the retention lose their card and
/// student everywhere (log, scans table, projections), while positions, counts and occupancy
/// stay, and a rebuilt projection equals the live one.
@Suite("Scan retention")
struct RetentionTests {
  static let options = CallOptions(timeout: .seconds(30))
  static let day: Int64 = 86_400_000_000

  static func scan(_ id: String, card: String, daysAgo: Int64, direction: Campus_Scans_V1_Direction) -> Campus_Scans_V1_RecordScanRequest {
    var s = Campus_Scans_V1_RecordScanRequest()
    s.scanId = id
    s.cardId = card
    s.location = "library"
    s.direction = direction
    s.scannedAt = Google_Protobuf_Timestamp(microseconds: Int64(Date().timeIntervalSince1970 * 1_000_000) - daysAgo * day - 60_000_000)
    s.deviceId = "door-lib"
    return s
  }

  /// Every row of the analytics tables, as text.
  static func projection(_ pool: PostgresPool) async throws -> [String] {
    try await pool.withConnection { db in
      var out: [String] = []
      for table in ["occupancy", "hourly", "daily_visitors", "location_visits", "student_days", "student_day_locations"] {
        let rows = try await db.query(SQL(unsafeRaw: "SELECT t::text AS row FROM analytics.\(table) t ORDER BY 1"), named: "test.projection")
        out += try rows.map { "\(table) " + (try $0.decode("row", as: String.self)) }
      }
      return out
    }
  }

  /// Waits until the analytics projection includes every scan event of the log.
  static func caughtUp(_ pool: PostgresPool) async throws {
    let deadline = ContinuousClock.now + .seconds(60)
    while ContinuousClock.now < deadline {
      let done = try await pool.withConnection { db in
        try await db.query("""
          SELECT (SELECT position FROM analytics.progress) >= coalesce((SELECT max(position) FROM quad_events
            WHERE event_type IN ('campus.scans.v1.ScanRecorded', 'campus.scans.v1.ScansAnonymised')), 0) AS done
          """, named: "test.caught-up")[0].decode("done", as: Bool.self)
      }
      if done { return }
      try await Task.sleep(for: .milliseconds(100))
    }
    Issue.record("the analytics projection did not catch up")
  }

  @Test("Scans past the retention are anonymised in the log, the scans table and the projections; recent ones, positions, counts and occupancy stay; a rebuild equals the live projection")
  func retention() async throws {
    let pg = try await TestPostgres.start()
    let pool = PostgresPool(conninfo: pg.conninfo, maximumConnections: 2)
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quad-retention-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let log = dir.appendingPathComponent("serve.log").path

    // Without retention: a student with a card, scans 40 days ago and today.
    var (server, port) = try await QuadServe.start(["--database-url", pg.conninfo], log: log)
    var client = try GRPCClient(target: "127.0.0.1:\(port)")
    var register = Campus_Students_V1_RegisterStudentRequest()
    register.studentId = "R1"
    register.givenName = "Reta"
    register.familyName = "Ention"
    register.email = "r1@uni.example.edu"
    _ = try await Campus_Students_V1_Students.Client(client).registerStudent(register, options: Self.options)
    var issue = Campus_Students_V1_IssueCardRequest()
    issue.studentId = "R1"
    issue.cardId = "CARD-RET"
    _ = try await Campus_Students_V1_Students.Client(client).issueCard(issue, options: Self.options)
    var scans = Campus_Scans_V1_Scans.Client(client)
    // The card directory learns of the card first, so the scans name the student.
    let deadline = ContinuousClock.now + .seconds(30)
    while ContinuousClock.now < deadline {
      let known = try await pool.withConnection { db in
        try await db.query("SELECT count(*) AS n FROM scans.cards WHERE card_id = 'CARD-RET'", named: "test.card")[0].decode("n", as: Int64.self)
      }
      if known > 0 { break }
      try await Task.sleep(for: .milliseconds(100))
    }
    #expect(try await scans.recordScan(Self.scan("probe", card: "CARD-RET", daysAgo: 50, direction: .in), options: Self.options).studentId == "R1")
    _ = try await scans.recordScan(Self.scan("old-1", card: "CARD-RET", daysAgo: 40, direction: .in), options: Self.options)
    _ = try await scans.recordScan(Self.scan("old-2", card: "CARD-RET", daysAgo: 40, direction: .out), options: Self.options)
    _ = try await scans.recordScan(Self.scan("new-1", card: "CARD-RET", daysAgo: 0, direction: .in), options: Self.options)
    try await Self.caughtUp(pool)
    func events() async throws -> [(Int64, String, String, [UInt8])] {
      try await pool.withConnection { db in
        try await db.query("SELECT position, event_type, stream_id, payload FROM quad_events ORDER BY position", named: "test.events").map {
          (try $0.decode("position"), try $0.decode("event_type"), try $0.decode("stream_id"), try $0.decode("payload"))
        }
      }
    }
    let before = try await events()
    let hourlyBefore = try await Self.projection(pool).filter { $0.hasPrefix("hourly ") || $0.hasPrefix("occupancy ") }
    var byStudent = Campus_Scans_V1_ListScansRequest()
    byStudent.studentId = "R1"
    #expect(try await scans.listScans(byStudent, options: Self.options).scans.count == 4)
    await client.close()
    await server.kill()

    // With a 30-day retention: the job runs at start.
    (server, port) = try await QuadServe.start(["--database-url", pg.conninfo, "--scan-retention-days", "30"], log: log)
    client = try GRPCClient(target: "127.0.0.1:\(port)")
    scans = Campus_Scans_V1_Scans.Client(client)
    let jobDeadline = ContinuousClock.now + .seconds(60)
    while try await !(events().contains { $0.1 == "campus.scans.v1.ScansAnonymised" }) && ContinuousClock.now < jobDeadline {
      try await Task.sleep(for: .milliseconds(100))
    }
    try await Self.caughtUp(pool)
    let after = try await events()
    #expect(after.count == before.count + 1 && after.last?.1 == "campus.scans.v1.ScansAnonymised")
    for (b, a) in zip(before, after) {
      #expect(a.0 == b.0 && a.1 == b.1 && a.2 == b.2, "positions, types and streams unchanged")
      guard b.1 == "campus.scans.v1.ScanRecorded" else {
        #expect(a.3 == b.3)
        continue
      }
      let was = try Campus_Scans_V1_ScanRecorded(serializedBytes: b.3), now = try Campus_Scans_V1_ScanRecorded(serializedBytes: a.3)
      if ["old-1", "old-2", "probe"].contains(b.2) {
        #expect(now.cardId.isEmpty && now.studentId.isEmpty, "\(b.2) anonymised")
        var expected = was
        expected.cardId = ""
        expected.studentId = ""
        #expect(now == expected, "only the card and student went")
      } else {
        #expect(a.3 == b.3, "\(b.2) kept as it was")
      }
    }
    // The scans table: the old scans no longer say whose they were; by location they are all there.
    #expect(try await scans.listScans(byStudent, options: Self.options).scans.map(\.scanId) == ["new-1"])
    var byLocation = Campus_Scans_V1_ListScansRequest()
    byLocation.location = "library"
    byLocation.from = Google_Protobuf_Timestamp(microseconds: 0)
    let all = try await scans.listScans(byLocation, options: Self.options).scans
    #expect(all.count == 4 && all.filter { $0.cardId.isEmpty }.count == 3, "\(all.map(\.scanId))")
    // The projections: counts and occupancy as before; no card or student rows before the cutoff.
    let live = try await Self.projection(pool)
    #expect(live.filter { $0.hasPrefix("hourly ") || $0.hasPrefix("occupancy ") } == hourlyBefore)
    #expect(live.filter { $0.hasPrefix("daily_visitors ") || $0.hasPrefix("student_days ") || $0.hasPrefix("student_day_locations ") }.count == 3,
            "today's rows only: \(live)")
    #expect(live.filter { $0.hasPrefix("location_visits ") }.count == 1, "today's visitor count only: \(live)")
    await client.close()
    await server.kill()
    // Rebuilt from the anonymised log, the projection is the live one.
    let (status, output) = try await runProcess([QuadServe.executable, "projections", "rebuild", "analytics", "--database-url", pg.conninfo])
    #expect(status == 0, "\(output)")
    #expect(try await Self.projection(pool) == live)
    pool.shutdown()
    await pg.stop()
    try? FileManager.default.removeItem(at: dir)
  }
}
