package import CampusContracts
internal import CampusSupport
package import EventRelay
internal import EventStore
internal import GRPCWire
internal import Postgres
internal import QuadProtobuf
package import QuadRPC

/// `campus.analytics.v1.Analytics`: queries on the ``AnalyticsProjection`` tables, each
/// answered in one statement with the projection's position, and WatchOccupancy, which starts
/// from the projection and then folds the scan stream itself, so updates are live however far
/// behind the projection's consumer is.
package struct AnalyticsService: Campus_Analytics_V1_Analytics.ServiceProtocol {
  let relay: EventRelay
  var store: EventStore { relay.store }

  /// The contract reflection serves for this context.
  package static let protoFiles = [QuadFile_campus_analytics_v1_analytics_proto.serializedDescriptor]

  /// The longest range the hourly and top-location queries cover.
  static let maximumRange: Int64 = 31 * 86_400_000_000

  package init(relay: EventRelay) {
    self.relay = relay
  }

  static func location(_ v: String) -> String? { CampusSupport.code(v, 1...64, extra: "-", lowercaseOnly: true) }

  static func locations(_ list: [String], _ violations: inout [RPCError.FieldViolation]) {
    if list.count > 1000 { violations.append(RPCError.FieldViolation("locations", "at most 1000")) }
    for (i, l) in list.enumerated() {
      if let why = location(l) { violations.append(RPCError.FieldViolation("locations[\(i)]", why)) }
    }
  }

  /// A required [from, to) range of at most 31 days, in microseconds.
  static func range(_ from: Google_Protobuf_Timestamp?, _ to: Google_Protobuf_Timestamp?, _ violations: inout [RPCError.FieldViolation]) -> (Int64, Int64) {
    let f = from?.microseconds, t = to?.microseconds
    if from == nil { violations.append(RPCError.FieldViolation("from", "is required")) } else if f == nil { violations.append(RPCError.FieldViolation("from", "is not a valid timestamp")) }
    if to == nil { violations.append(RPCError.FieldViolation("to", "is required")) } else if t == nil { violations.append(RPCError.FieldViolation("to", "is not a valid timestamp")) }
    guard let f, let t else { return (0, 0) }
    if t <= f { violations.append(RPCError.FieldViolation("to", "must be after from")) }
    if t - f > maximumRange { violations.append(RPCError.FieldViolation("to", "must be at most 31 days after from")) }
    return (f, t)
  }

  static func timestamp(_ row: PostgresRow, _ column: String) throws -> Google_Protobuf_Timestamp {
    Google_Protobuf_Timestamp(microseconds: try row.decode(column, as: Int64.self))
  }

  /// Runs `sql`, whose rows all carry the projection's position in `position` and, where the
  /// answer has data, a non-null `key`; returns the position and the rows with data.
  func query(_ sql: SQL, named name: String) async throws -> (position: Int64, rows: [PostgresRow]) {
    try await CampusSupport.mapped {
      try await store.pool.withConnection { db in
        let rows = try await db.query(sql, named: name)
        let position = try rows.first?.decode("position", as: Int64.self) ?? 0
        return (position, try rows.filter { try $0.decode("key", as: String?.self) != nil })
      }
    }
  }

  package func getOccupancy(_ request: Campus_Analytics_V1_GetOccupancyRequest, context: ServerContext) async throws -> Campus_Analytics_V1_GetOccupancyResponse {
    var violations: [RPCError.FieldViolation] = []
    Self.locations(request.locations, &violations)
    try CampusSupport.check(violations)
    let (position, rows) = try await occupancy(request.locations)
    var response = Campus_Analytics_V1_GetOccupancyResponse()
    response.logPosition = position
    response.locations = rows
    return response
  }

  /// The projection's occupancy of `locations` (all when empty), and its position.
  func occupancy(_ locations: [String]) async throws -> (Int64, [Campus_Analytics_V1_LocationOccupancy]) {
    let (position, rows) = try await query("""
      SELECT p.position, o.location AS key, o.occupancy, (extract(epoch FROM o.updated_at) * 1000000)::int8 AS updated
      FROM analytics.progress p LEFT JOIN analytics.occupancy o
        ON cardinality(\(PostgresTextArray(locations))::text[]) = 0 OR o.location = ANY(\(PostgresTextArray(locations))::text[])
      ORDER BY o.location
      """, named: "analytics.occupancy.get")
    return (position, try rows.map { r in
      var o = Campus_Analytics_V1_LocationOccupancy()
      o.location = try r.decode("key", as: String.self)
      o.occupancy = try r.decode("occupancy", as: Int64.self)
      o.updatedAt = try Self.timestamp(r, "updated")
      return o
    })
  }

  package func getHourlyCounts(_ request: Campus_Analytics_V1_GetHourlyCountsRequest, context: ServerContext) async throws -> Campus_Analytics_V1_GetHourlyCountsResponse {
    var violations = CampusSupport.violations([("location", Self.location(request.location))])
    let (from, to) = Self.range(request.hasFrom ? request.from : nil, request.hasTo ? request.to : nil, &violations)
    try CampusSupport.check(violations)
    let (position, rows) = try await query("""
      SELECT p.position, h.location AS key, (extract(epoch FROM h.hour) * 1000000)::int8 AS hour, h.scans_in, h.scans_out
      FROM analytics.progress p LEFT JOIN analytics.hourly h
        ON h.location = \(request.location)
        AND h.hour >= timestamptz 'epoch' + \(from) * interval '1 microsecond' AND h.hour < timestamptz 'epoch' + \(to) * interval '1 microsecond'
      ORDER BY h.hour
      """, named: "analytics.hourly.get")
    var response = Campus_Analytics_V1_GetHourlyCountsResponse()
    response.logPosition = position
    response.counts = try rows.map { r in
      var c = Campus_Analytics_V1_HourlyCount()
      c.location = try r.decode("key", as: String.self)
      c.hour = try Self.timestamp(r, "hour")
      c.scansIn = try r.decode("scans_in", as: Int64.self)
      c.scansOut = try r.decode("scans_out", as: Int64.self)
      return c
    }
    return response
  }

  package func getTopLocations(_ request: Campus_Analytics_V1_GetTopLocationsRequest, context: ServerContext) async throws -> Campus_Analytics_V1_GetTopLocationsResponse {
    var violations: [RPCError.FieldViolation] = []
    let (from, to) = Self.range(request.hasFrom ? request.from : nil, request.hasTo ? request.to : nil, &violations)
    if !(0...100).contains(request.limit) { violations.append(RPCError.FieldViolation("limit", "must be 0 to 100")) }
    try CampusSupport.check(violations)
    let limit = request.limit == 0 ? 10 : Int64(request.limit)
    let firstDay = CivilDate(microseconds: from).description, lastDay = CivilDate(microseconds: to - 1).description
    let (position, rows) = try await query("""
      WITH traffic AS (
        SELECT location, sum(scans_in + scans_out)::int8 AS scans FROM analytics.hourly
        WHERE hour >= timestamptz 'epoch' + \(from) * interval '1 microsecond' AND hour < timestamptz 'epoch' + \(to) * interval '1 microsecond'
        GROUP BY location ORDER BY scans DESC, location LIMIT \(limit)
      ), visitors AS (
        SELECT v.location, sum(v.visitors)::int8 AS visitors FROM analytics.location_visits v
        WHERE v.location IN (SELECT location FROM traffic) AND v.day BETWEEN \(firstDay)::date AND \(lastDay)::date
          AND v.since < \(firstDay)::date
        GROUP BY v.location
      )
      SELECT p.position, t.location AS key, t.scans, coalesce(v.visitors, 0) AS visitors
      FROM analytics.progress p LEFT JOIN (traffic t LEFT JOIN visitors v USING (location)) ON true
      ORDER BY t.scans DESC, t.location
      """, named: "analytics.top")
    var response = Campus_Analytics_V1_GetTopLocationsResponse()
    response.logPosition = position
    response.locations = try rows.map { r in
      var t = Campus_Analytics_V1_LocationTraffic()
      t.location = try r.decode("key", as: String.self)
      t.scans = try r.decode("scans", as: Int64.self)
      t.uniqueVisitors = try r.decode("visitors", as: Int64.self)
      return t
    }
    return response
  }

  package func getDailyVisitors(_ request: Campus_Analytics_V1_GetDailyVisitorsRequest, context: ServerContext) async throws -> Campus_Analytics_V1_GetDailyVisitorsResponse {
    try CampusSupport.check(CampusSupport.violations([("day", request.day.isEmpty ? "is required" : CampusSupport.date(request.day))]))
    let (position, rows) = try await query("""
      SELECT p.position, v.location AS key, v.visitors
      FROM analytics.progress p LEFT JOIN (
        SELECT location, sum(visitors)::int8 AS visitors FROM analytics.location_visits WHERE day = \(request.day)::date GROUP BY location
      ) v ON true
      ORDER BY v.location
      """, named: "analytics.visitors.get")
    var response = Campus_Analytics_V1_GetDailyVisitorsResponse()
    response.logPosition = position
    response.locations = try rows.map { r in
      var d = Campus_Analytics_V1_DailyVisitors()
      d.location = try r.decode("key", as: String.self)
      d.uniqueVisitors = try r.decode("visitors", as: Int64.self)
      return d
    }
    return response
  }

  package func getStudentActivity(_ request: Campus_Analytics_V1_GetStudentActivityRequest, context: ServerContext) async throws -> Campus_Analytics_V1_GetStudentActivityResponse {
    var violations = CampusSupport.violations([
      ("student_id", CampusSupport.code(request.studentId, 1...32)),
      ("from_day", CampusSupport.date(request.fromDay)), ("to_day", CampusSupport.date(request.toDay)),
    ])
    let first = request.fromDay.isEmpty ? "1900-01-01" : request.fromDay, last = request.toDay.isEmpty ? "2199-12-31" : request.toDay
    if violations.isEmpty, !request.fromDay.isEmpty, !request.toDay.isEmpty, last < first {
      violations.append(RPCError.FieldViolation("to_day", "is before from_day"))
    }
    try CampusSupport.check(violations)
    let (position, rows) = try await query("""
      SELECT p.position, d.day::text AS key, d.scans, d.locations, d.first_us, d.last_us
      FROM analytics.progress p LEFT JOIN (
        SELECT s.day, s.scans, (extract(epoch FROM s.first_scan) * 1000000)::int8 AS first_us,
               (extract(epoch FROM s.last_scan) * 1000000)::int8 AS last_us,
               (SELECT count(*)::int8 FROM analytics.student_day_locations l WHERE l.student_id = s.student_id AND l.day = s.day) AS locations
        FROM analytics.student_days s
        WHERE s.student_id = \(request.studentId) AND s.day BETWEEN \(first)::date AND \(last)::date
        ORDER BY s.day LIMIT 366
      ) d ON true
      ORDER BY d.day
      """, named: "analytics.student.activity")
    var response = Campus_Analytics_V1_GetStudentActivityResponse()
    response.logPosition = position
    response.days = try rows.map { r in
      var d = Campus_Analytics_V1_StudentDay()
      d.day = try r.decode("key", as: String.self)
      d.scans = try r.decode("scans", as: Int64.self)
      d.locations = try r.decode("locations", as: Int64.self)
      d.firstScan = try Self.timestamp(r, "first_us")
      d.lastScan = try Self.timestamp(r, "last_us")
      return d
    }
    return response
  }

  package func watchOccupancy(
    _ request: Campus_Analytics_V1_WatchOccupancyRequest, writer: ResponseStreamWriter<Campus_Analytics_V1_OccupancyUpdate>, context: ServerContext
  ) async throws {
    var violations: [RPCError.FieldViolation] = []
    Self.locations(request.locations, &violations)
    try CampusSupport.check(violations)
    let watched = Set(request.locations)
    // Where the projection is, then every scan after it, folded as the projection folds it.
    let (start, rows) = try await occupancy(request.locations)
    var current: [String: Int64] = [:]
    for o in rows { current[o.location] = o.occupancy }
    var first = rows
    for l in watched.subtracting(current.keys).sorted() {
      var o = Campus_Analytics_V1_LocationOccupancy()
      o.location = l
      first.append(o)
    }
    for o in first.sorted(by: { $0.location < $1.location }) {
      var u = Campus_Analytics_V1_OccupancyUpdate()
      u.occupancy = o
      u.logPosition = start
      try await writer.write(u)
    }
    var seen = start
    while true {
      try Task.checkCancellation()
      let (events, through) = try await CampusSupport.mapped { try await relay.next(after: seen, filter: AnalyticsProjection.filter) }
      if events.isEmpty && through == seen {
        await relay.waitForEvents(after: seen)
        continue
      }
      for e in events {
        guard let scan = try? Campus_Scans_V1_ScanRecorded(serializedBytes: e.payload),
              watched.isEmpty || watched.contains(scan.location), scan.direction == .in || scan.direction == .out
        else { continue }
        let old = current[scan.location] ?? 0
        let new = max(0, old + (scan.direction == .in ? 1 : -1))
        guard new != old || current[scan.location] == nil else { continue }
        current[scan.location] = new
        var u = Campus_Analytics_V1_OccupancyUpdate()
        u.occupancy.location = scan.location
        u.occupancy.occupancy = new
        u.occupancy.updatedAt = Google_Protobuf_Timestamp(microseconds: e.recordedAtMicroseconds)
        u.logPosition = e.position
        try await writer.write(u)
      }
      seen = through
    }
  }
}
