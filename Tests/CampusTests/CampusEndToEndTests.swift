internal import CampusContracts
internal import EventsService
internal import Foundation
internal import GRPCWire
internal import Postgres
internal import QuadProtobuf
internal import QuadRPC
internal import Synchronization
internal import Testing
internal import TestSupport

/// The campus platform end to end: `quad serve` (the binary) on a real PostgreSQL, a Python
/// grpcio client generated from Protos/, Swift clients, the `quad import` and
/// `quad projections rebuild` commands.
@Suite("Campus end to end", .serialized)
struct CampusEndToEndTests {
  static let quad = repositoryRoot.appendingPathComponent(".build/debug/quad").path
  static let options = CallOptions(timeout: .seconds(60))

  struct Failure: Error, CustomStringConvertible { let description: String }

  /// Starts `quad serve` (metrics on a free port); with `log`, its standard error goes there.
  static func serve(_ conninfo: String, extra: [String] = [], log: String? = nil) async throws -> (BackgroundProcess, Int) {
    let command = [quad, "serve", "--port", "0", "--metrics-port", "0", "--database-url", conninfo] + extra
    let server = try await BackgroundProcess.start(log.map { ["sh", "-c", "exec \"$@\" 2>>'\($0)'", $0] + command } ?? command)
    guard server.firstLine.hasPrefix("quad serve: serving"), let port = server.firstLine.split(separator: ":").last.flatMap({ Int($0) }) else {
      throw Failure(description: "quad serve did not start: \(server.firstLine)")
    }
    return (server, port)
  }

  /// Waits (up to a minute) until `condition` holds.
  static func eventually(_ what: String, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(60)
    while ContinuousClock.now < deadline {
      if try await condition() { return }
      try await Task.sleep(for: .milliseconds(100))
    }
    throw Failure(description: "timed out waiting until \(what)")
  }

  /// A consumer group's checkpoint (0 when it has none yet).
  static func checkpoint(_ db: PostgresConnection, _ group: String) async throws -> Int64 {
    try await db.query("SELECT checkpoint FROM quad_consumer_groups WHERE group_name = \(group)", named: "test.checkpoint")
      .first?.decode("checkpoint", as: Int64.self) ?? 0
  }

  static func head(_ db: PostgresConnection) async throws -> Int64 {
    try await db.query("SELECT coalesce(max(position), 0) AS head FROM quad_events", named: "test.head")[0].decode("head", as: Int64.self)
  }

  /// Every analytics table, as text, in a fixed order: what "the projection" is.
  static func projection(_ db: PostgresConnection) async throws -> [String] {
    var out: [String] = []
    let tables: [StaticString] = [
      "analytics.occupancy", "analytics.hourly", "analytics.daily_visitors", "analytics.location_visits", "analytics.student_days", "analytics.student_day_locations",
    ]
    for table in tables {
      let rows = try await db.query("""
        SELECT coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '') AS rows FROM \(literal: table) t
        """, named: "test.projection")
      out.append("\(table):\n" + (try rows[0].decode("rows", as: String.self)))
    }
    return out
  }

  /// The start of the UTC hour three hours ago, moved back to 21:00 when the two hours after it
  /// would cross midnight: the scenario's scans all fall on one day, in two known hours.
  static func scenarioBase() -> Int64 {
    let hour: Int64 = 3_600_000_000
    let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
    var base = now / hour * hour - 3 * hour
    let hourOfDay = base % (24 * hour) / hour
    if hourOfDay > 21 { base -= (hourOfDay - 21) * hour }
    return base
  }

  static func scan(_ id: String, _ card: String, _ location: String, _ direction: Campus_Scans_V1_Direction, at micros: Int64) -> Campus_Scans_V1_RecordScanRequest {
    var r = Campus_Scans_V1_RecordScanRequest()
    r.scanId = id
    r.cardId = card
    r.location = location
    r.direction = direction
    r.scannedAt = Google_Protobuf_Timestamp(microseconds: micros)
    r.deviceId = "door-\(location)"
    return r
  }

  @Test("Python registers and imports, Swift records scans, a subscriber sees every event in order, analytics answer a known scenario, quad import twice changes nothing, a rebuilt projection equals the live one")
  func campus() async throws {
    let pg = try await TestPostgres.start()
    let (server, port) = try await Self.serve(pg.conninfo)
    let db = try await PostgresConnection.connect(pg.conninfo)
    let grpc = try GRPCClient(target: "127.0.0.1:\(port)")
    defer { Task { await grpc.close() } }
    let scans = Campus_Scans_V1_Scans.Client(grpc)
    let analytics = Campus_Analytics_V1_Analytics.Client(grpc)
    do {
      // 1. The Python client: students, cards, refusals and their details, history, roster.
      let script = repositoryRoot.appendingPathComponent("Tests/CampusTests/python/campus_client.py").path
      let python = try await runProcess(["python3", script, String(port)])
      print(python.output)
      #expect(python.status == 0, "\(python.output)")
      #expect(python.output.contains("ok import1 created=18 updated=0 unchanged=0 rejected=2 lines=7,11"))
      #expect(python.output.contains("ok import2 created=0 updated=0 unchanged=18 rejected=2 lines=7,11"))
      #expect(python.output.hasSuffix("done\n"))

      // 2. quad import: a CSV file with reordered and extra columns, a quoted comma, a row
      // missing its email; the second run changes nothing.
      let csv = FileManager.default.temporaryDirectory.appendingPathComponent("roster-\(UUID().uuidString).csv")
      defer { try? FileManager.default.removeItem(at: csv) }
      var text = "email,given_name,family_name,registrar_id,notes,status\r\n"
      for i in 0..<8 { text += "q\(i)@uni.example.edu,Quinn,\"Import, Jr.\",Q\(i),\"said \"\"hi\"\"\",enrolled\r\n" }
      text += ",Nomail,Person,Q99,,enrolled\r\n"
      try text.write(to: csv, atomically: true, encoding: .utf8)
      let first = try await runProcess([Self.quad, "import", "127.0.0.1:\(port)", csv.path])
      #expect(first.status == 1 && first.output.contains("created 8, updated 0, unchanged 0, rejected 1"), "\(first.output)")
      #expect(first.output.contains("line 10 (Q99): email: is required"), "\(first.output)")
      let again = try await runProcess([Self.quad, "import", "127.0.0.1:\(port)", csv.path])
      #expect(again.output.contains("created 0, updated 0, unchanged 8, rejected 1"), "\(again.output)")
      let missingColumn = FileManager.default.temporaryDirectory.appendingPathComponent("bad-\(UUID().uuidString).csv")
      defer { try? FileManager.default.removeItem(at: missingColumn) }
      try "registrar_id,given_name\nX1,Y\n".write(to: missingColumn, atomically: true, encoding: .utf8)
      let refused = try await runProcess(["sh", "-c", "\"$0\" \"$@\" 2>&1", Self.quad, "import", "127.0.0.1:\(port)", missingColumn.path])
      #expect(refused.status == 2 && refused.output.contains("lacks the required columns family_name, email"), "\(refused.output)")

      // 3. Watch occupancy from before the scans, and wait until the card directory has every card.
      let updates = Mutex<[String: Int64]>([:])
      let watch = Task {
        try await analytics.watchOccupancy(Campus_Analytics_V1_WatchOccupancyRequest(), options: CallOptions(timeout: .seconds(120))) { stream in
          for try await u in stream {
            updates.withLock { $0[u.occupancy.location] = u.occupancy.occupancy }
          }
        }
      }
      defer { watch.cancel() }
      let cardsWritten = try await Self.head(db)
      try await Self.eventually("the scans context's card directory has caught up") {
        try await Self.checkpoint(db, "consumer:scans.cards") >= cardsWritten
      }

      // 4. The scenario, recorded by a Swift client.
      let base = Self.scenarioBase()
      let minute: Int64 = 60_000_000
      let scenario = [
        Self.scan("s01", "CARD-C001", "library", .in, at: base + 5 * minute),
        Self.scan("s02", "CARD-C002", "library", .in, at: base + 10 * minute),
        Self.scan("s03", "CARD-C003", "library", .in, at: base + 15 * minute),
        Self.scan("s04", "CARD-C001", "library", .out, at: base + 70 * minute),
        Self.scan("s05", "CARD-C001", "gym", .in, at: base + 75 * minute),
        Self.scan("s06", "CARD-X999", "gym", .in, at: base + 80 * minute),
        Self.scan("s07", "CARD-C005", "gym", .in, at: base + 85 * minute),
        Self.scan("s08", "CARD-C002", "library", .out, at: base + 90 * minute),
        Self.scan("s09", "CARD-C002", "library", .out, at: base + 95 * minute),
        Self.scan("s10", "CARD-C003", "library", .out, at: base + 100 * minute),
        Self.scan("s11", "CARD-C004", "library", .out, at: base + 105 * minute),
        Self.scan("s12", "CARD-C004", "library", .in, at: base + 110 * minute),
      ]
      let one = try await scans.recordScan(scenario[0], options: Self.options)
      #expect(one.studentId == "C001" && one.cardStatus == .valid)
      var bad = scenario[1]
      bad.direction = .unspecified
      bad.location = "Library Main"
      let batch = try await scans.recordScans(options: Self.options) { w in
        for s in scenario.dropFirst() { try await w.write(s) }
        try await w.write(scenario[0])  // a resend
        try await w.write(bad)
      }
      #expect(batch.recorded == 11 && batch.duplicates == 1 && batch.rejected == 1, "\(batch)")
      #expect(batch.rejections.first?.index == 13 && batch.rejections.first?.reason.contains("direction") == true)
      var byCard = Campus_Scans_V1_ListScansRequest()
      byCard.location = "gym"
      let gym = try await scans.listScans(byCard, options: Self.options).scans
      #expect(gym.map(\.scanId) == ["s05", "s06", "s07"])
      #expect(gym.map(\.cardStatus) == [.valid, .unknown, .lost] && gym[2].studentId == "C005" && gym[1].studentId.isEmpty)
      var c001 = Campus_Scans_V1_ListScansRequest()
      c001.studentId = "C001"
      c001.pageSize = 2
      let page1 = try await scans.listScans(c001, options: Self.options)
      c001.pageToken = page1.nextPageToken
      let page2 = try await scans.listScans(c001, options: Self.options)
      #expect((page1.scans + page2.scans).map(\.scanId) == ["s01", "s04", "s05"] && page2.nextPageToken.isEmpty)

      // 5. A subscriber from the start sees every event of the log, in order, once.
      let head = try await Self.head(db)
      let logged = try await db.query("SELECT position, event_type FROM quad_events ORDER BY position", named: "test.log")
        .map { (try $0.decode("position", as: Int64.self), try $0.decode("event_type", as: String.self)) }
      var subscribe = Quad_Events_V1_SubscribeRequest()
      subscribe.start = .first
      let seen = try await Quad_Events_V1_Events.Client(grpc).subscribe(subscribe, options: Self.options) { stream in
        var seen: [(Int64, String)] = []
        for try await e in stream {
          seen.append((e.cursor.position, e.eventType))
          if e.cursor.position >= head { break }
        }
        return seen
      }
      #expect(seen.map(\.0) == logged.map(\.0) && seen.map(\.1) == logged.map(\.1))
      #expect(logged.filter { $0.1 == "campus.scans.v1.ScanRecorded" }.count == 12)
      print("campus: the log holds \(logged.count) events; the subscriber saw all of them in order")

      // 6. Analytics for the scenario, once the projection has the whole log.
      try await Self.eventually("the analytics projection has caught up") {
        try await analytics.getOccupancy(Campus_Analytics_V1_GetOccupancyRequest(), options: Self.options).logPosition >= head
      }
      let occupancy = try await analytics.getOccupancy(Campus_Analytics_V1_GetOccupancyRequest(), options: Self.options)
      #expect(occupancy.locations.map { "\($0.location)=\($0.occupancy)" } == ["gym=3", "library=1"])
      var hourly = Campus_Analytics_V1_GetHourlyCountsRequest()
      hourly.location = "library"
      hourly.from = Google_Protobuf_Timestamp(microseconds: base)
      hourly.to = Google_Protobuf_Timestamp(microseconds: base + 2 * 60 * minute)
      let hours = try await analytics.getHourlyCounts(hourly, options: Self.options).counts
      #expect(hours.map { "\($0.hour.microseconds! - base)/\($0.scansIn)/\($0.scansOut)" } == ["0/3/0", "3600000000/1/5"])
      var top = Campus_Analytics_V1_GetTopLocationsRequest()
      top.from = hourly.from
      top.to = hourly.to
      let topLocations = try await analytics.getTopLocations(top, options: Self.options).locations
      #expect(topLocations.map { "\($0.location)/\($0.scans)/\($0.uniqueVisitors)" } == ["library/9/4", "gym/3/3"])
      var visitors = Campus_Analytics_V1_GetDailyVisitorsRequest()
      let day = ISO8601DateFormatter()
      day.formatOptions = [.withFullDate]
      visitors.day = day.string(from: Date(timeIntervalSince1970: Double(base) / 1e6))
      let daily = try await analytics.getDailyVisitors(visitors, options: Self.options).locations
      #expect(daily.map { "\($0.location)=\($0.uniqueVisitors)" } == ["gym=3", "library=4"])
      var activity = Campus_Analytics_V1_GetStudentActivityRequest()
      activity.studentId = "C001"
      let days = try await analytics.getStudentActivity(activity, options: Self.options).days
      #expect(days.count == 1 && days.first?.scans == 3 && days.first?.locations == 2)
      #expect(days.first?.firstScan.microseconds == base + 5 * minute && days.first?.lastScan.microseconds == base + 75 * minute)
      try await Self.eventually("WatchOccupancy has shown the last scan") {
        updates.withLock { $0 } == ["gym": 3, "library": 1]
      }

      // 7. A rebuilt projection equals the live one, and the live one goes on after it.
      let live = try await Self.projection(db)
      let rebuilt = try await runProcess([Self.quad, "projections", "rebuild", "analytics", "--database-url", pg.conninfo])
      #expect(rebuilt.status == 0 && rebuilt.output.contains("12 events applied"), "\(rebuilt.output)")
      #expect(try await Self.projection(db) == live)
      _ = try await scans.recordScan(Self.scan("s13", "CARD-C003", "gym", .in, at: base + 115 * minute), options: Self.options)
      try await Self.eventually("the projection counts a scan after the rebuild") {
        try await analytics.getOccupancy(Campus_Analytics_V1_GetOccupancyRequest(), options: Self.options).locations.first?.occupancy == 4
      }
      let unknown = try await runProcess(["sh", "-c", "\"$0\" \"$@\" 2>&1", Self.quad, "projections", "rebuild", "nothing", "--database-url", pg.conninfo])
      #expect(unknown.status == 2 && unknown.output.contains("unknown projection 'nothing'; known: analytics"), "\(unknown.output)")
    } catch {
      Issue.record(error)
    }
    await db.close()
    await server.kill()
    await pg.stop()
  }

  @Test("--contexts serves a subset; per-service health is NOT_SERVING while the database is away and SERVING when it is back")
  func contextsAndHealth() async throws {
    let pg = try await TestPostgres.start()
    let (server, port) = try await Self.serve(pg.conninfo, extra: ["--contexts", "students,scans"])
    do {
      #expect(server.firstLine.contains("campus.students.v1.Students") && !server.firstLine.contains("Analytics"))
      let list = try await runProcess([Self.quad, "list", "127.0.0.1:\(port)"])
      #expect(list.output.contains("campus.scans.v1.Scans") && !list.output.contains("campus.analytics.v1.Analytics"), "\(list.output)")
      let grpc = try GRPCClient(target: "127.0.0.1:\(port)")
      await #expect {
        _ = try await Campus_Analytics_V1_Analytics.Client(grpc).getOccupancy(Campus_Analytics_V1_GetOccupancyRequest(), options: Self.options)
      } throws: { ($0 as? RPCError)?.code == .unimplemented }
      await grpc.close()
      func health(_ service: String) async throws -> String {
        try await runProcess([Self.quad, "health", "127.0.0.1:\(port)", service]).output.trimmingCharacters(in: .whitespacesAndNewlines)
      }
      #expect(try await health("campus.students.v1.Students") == "SERVING")
      try await pg.halt()
      try await Self.eventually("the students service is NOT_SERVING") { try await health("campus.students.v1.Students") == "NOT_SERVING" }
      #expect(try await health("") == "NOT_SERVING")
      try await pg.resume()
      try await Self.eventually("the students service is SERVING again") { try await health("campus.students.v1.Students") == "SERVING" }
      let bad = try await runProcess(["sh", "-c", "\"$0\" \"$@\" 2>&1", Self.quad, "serve", "--contexts", "students,library"])
      #expect(bad.status == 2 && bad.output.contains("unknown context 'library'"), "\(bad.output)")
    } catch {
      Issue.record(error)
    }
    // SIGTERM drains and exits 0.
    await server.kill()
    #expect(server.terminationStatus == 0)
    await pg.stop()
  }

  @Test("Scans and analytics refuse bad requests with INVALID_ARGUMENT naming each field; /metrics counts calls by method and status; JSON log lines carry the correlation id and traceparent; quad demo runs")
  func validation() async throws {
    let pg = try await TestPostgres.start()
    let log = FileManager.default.temporaryDirectory.appendingPathComponent("serve-\(UUID().uuidString).log").path
    defer { try? FileManager.default.removeItem(atPath: log) }
    let (server, port) = try await Self.serve(pg.conninfo, log: log)
    let grpc = try GRPCClient(target: "127.0.0.1:\(port)")
    func fields(_ body: () async throws -> Void) async -> [String] {
      do {
        try await body()
      } catch let e as RPCError where e.code == .invalidArgument {
        return e.fieldViolations.map(\.field)
      } catch {
        Issue.record("expected INVALID_ARGUMENT, got \(error)")
      }
      return []
    }
    let scans = Campus_Scans_V1_Scans.Client(grpc)
    let analytics = Campus_Analytics_V1_Analytics.Client(grpc)
    var future = Self.scan("", "x", "Main Hall", .unspecified, at: Int64(Date().timeIntervalSince1970 * 1e6) + 3_600_000_000)
    future.deviceId = ""
    #expect(await fields { _ = try await scans.recordScan(future, options: Self.options) } == ["card_id", "location", "direction", "scanned_at", "device_id"])
    var noTime = Self.scan("a b", "CARD-1", "gym", .in, at: 0)
    noTime.clearScannedAt()
    #expect(await fields { _ = try await scans.recordScan(noTime, options: Self.options) } == ["scan_id", "scanned_at"])
    var two = Campus_Scans_V1_ListScansRequest()
    two.studentId = "S1"
    two.location = "gym"
    two.pageToken = "not-a-token"
    #expect(await fields { _ = try await scans.listScans(two, options: Self.options) } == ["location", "page_token"])
    var hourly = Campus_Analytics_V1_GetHourlyCountsRequest()
    hourly.from = Google_Protobuf_Timestamp(microseconds: 0)
    hourly.to = Google_Protobuf_Timestamp(microseconds: 40 * 86_400_000_000)
    #expect(await fields { _ = try await analytics.getHourlyCounts(hourly, options: Self.options) } == ["location", "to"])
    var top = Campus_Analytics_V1_GetTopLocationsRequest()
    top.limit = 500
    #expect(await fields { _ = try await analytics.getTopLocations(top, options: Self.options) } == ["from", "to", "limit"])
    var day = Campus_Analytics_V1_GetDailyVisitorsRequest()
    day.day = "2026-02-29"
    #expect(await fields { _ = try await analytics.getDailyVisitors(day, options: Self.options) } == ["day"])
    var activity = Campus_Analytics_V1_GetStudentActivityRequest()
    activity.fromDay = "2026-05-02"
    #expect(await fields { _ = try await analytics.getStudentActivity(activity, options: Self.options) } == ["student_id"])
    var watch = Campus_Analytics_V1_WatchOccupancyRequest()
    watch.locations = ["gym", "GYM"]
    #expect(await fields { try await analytics.watchOccupancy(watch, options: Self.options) { stream in for try await _ in stream {} } } == ["locations[1]"])

    // A traced call: its log line and its event's carry the ids.
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    let traced = CallOptions(timeout: .seconds(30), metadata: [("x-correlation-id", .text("corr-e2e-1")), ("traceparent", .text(traceparent))])
    var register = Campus_Students_V1_RegisterStudentRequest()
    register.studentId = "T1"
    register.givenName = "Tracy"
    register.familyName = "Trace"
    register.email = "t1@uni.example.edu"
    _ = try await Campus_Students_V1_Students.Client(grpc).registerStudent(register, options: traced)
    await grpc.close()

    // quad demo against the same server.
    let demo = try await runProcess([Self.quad, "demo", "127.0.0.1:\(port)", "--students", "10", "--rate", "50", "--duration", "2"])
    #expect(demo.status == 0 && demo.output.contains("roster: 10 students imported") && demo.output.contains("demo: 100 scans recorded"), "\(demo.output)")
    #expect(demo.output.contains("occupancy after") && demo.output.contains("busiest locations"), "\(demo.output)")

    // /metrics: the calls above, by method and status, and the consumer groups' lag.
    let metricsPort = try #require(Self.metricsPort(server.firstLine))
    func scrape() async throws -> String {
      try await runProcess(["python3", "-c", "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())",
                            "http://127.0.0.1:\(metricsPort)/metrics"]).output
    }
    try await Self.eventually("the consumer groups' lag is sampled") {
      try await scrape().contains("quad_consumer_group_lag_events{group=\"consumer:analytics\"}")
    }
    let metrics = try await scrape()
    #expect(metrics.contains("quad_rpc_calls_total{method=\"/campus.scans.v1.Scans/RecordScan\",code=\"INVALID_ARGUMENT\"} 2"), "\(metrics)")
    #expect(metrics.contains("quad_rpc_calls_total{method=\"/campus.scans.v1.Scans/RecordScan\",code=\"OK\"} 100"), "\(metrics)")
    #expect(metrics.contains("quad_rpc_duration_seconds_bucket{method=\"/campus.students.v1.Students/RegisterStudent\""), "\(metrics)")
    #expect(metrics.contains("quad_db_pool_connections{state=\"open\"}") && metrics.contains("quad_relay_lag_events"), "\(metrics)")

    // The JSON log: every line an object; the traced call's and its event's carry the ids.
    await server.kill()
    let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
    let objects = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    #expect(objects.count == lines.count && !lines.isEmpty, "\(lines.prefix(5))")
    let tracedLines = objects.filter { $0["correlation_id"] as? String == "corr-e2e-1" && $0["traceparent"] as? String == traceparent }
    #expect(tracedLines.contains { $0["message"] as? String == "rpc" && $0["method"] as? String == "/campus.students.v1.Students/RegisterStudent" && $0["code"] as? String == "OK" })
    #expect(tracedLines.contains { $0["message"] as? String == "event committed" && $0["event_type"] as? String == "campus.students.v1.StudentRegistered" })
    await pg.stop()
  }

  /// The metrics port from the ready line ("… (metrics at http://0.0.0.0:N/metrics) on …").
  static func metricsPort(_ line: String) -> Int? {
    guard let start = line.range(of: "(metrics at http://0.0.0.0:"), let end = line[start.upperBound...].firstIndex(of: "/") else { return nil }
    return Int(line[start.upperBound..<end])
  }
}

