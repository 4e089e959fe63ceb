internal import CampusContracts
package import EventConsumers
package import EventRelay
package import EventStore
internal import Postgres
internal import QuadProtobuf

/// The analytics read model, projected from ScanRecorded events: occupancy per location,
/// scans per location per hour, distinct cards per location per day, and each student's days.
/// A durable consumer (`consumer:analytics`) feeds it a page at a time; each page is folded in
/// memory and applied in one transaction (a statement per table) with the projection's
/// position, so it is applied exactly once.
/// ``rebuild(store:)`` computes the same tables again from the whole log.
package struct AnalyticsProjection: Sendable {
  package let store: EventStore

  package init(store: EventStore) {
    self.store = store
  }

  /// The events the projection reads.
  static let filter = EventFilter(eventTypes: [Campus_Scans_V1_ScanRecorded.protoMessageName, Campus_Scans_V1_ScansAnonymised.protoMessageName])

  /// Creates or updates the context's tables (under the migration lock).
  package func migrate() async throws {
    try await store.pool.withConnection { db in _ = try await Migrator.migrate(AnalyticsSchema.migrations, on: db) }
  }

  /// The consumer that keeps the projection; run it for as long as the context serves.
  package func consumer(relay: EventRelay, settings: EventConsumer.Settings = EventConsumer.Settings()) -> EventConsumer {
    EventConsumer(name: "analytics", relay: relay, filter: Self.filter, settings: settings) { events, through in
      try await apply(events, through: through)
    }
  }

  /// The last log position the projection includes.
  package func position() async throws -> Int64 {
    try await store.pool.withConnection { db in
      try await db.query("SELECT position FROM analytics.progress", named: "analytics.position")[0].decode("position", as: Int64.self)
    }
  }

  /// Applies the events of a page the projection does not include yet, and moves its position
  /// to `through`; fails (and is retried) when a rebuild moved it meanwhile.
  func apply(_ events: [StoredEvent], through: Int64) async throws {
    let scans = try Self.scans(events.filter { $0.type == Campus_Scans_V1_ScanRecorded.protoMessageName })
    // Where the projection is, and the page's locations as they are now, in one statement:
    // safe to read before the transaction, since only a projector at this position (guarded
    // by analytics.advance) or a rebuild changes them.
    let (at, before) = try await store.pool.withConnection { db in
      let rows = try await db.query("""
        SELECT p.position, o.location, o.occupancy FROM analytics.progress p
        LEFT JOIN analytics.occupancy o ON o.location = ANY(\(PostgresTextArray(Set(scans.map(\.scan.location)).sorted()))::text[])
        """, named: "analytics.page.start")
      var occupancy: [String: Int64] = [:]
      for r in rows {
        if let l = try r.decode("location", as: String?.self) { occupancy[l] = try r.decode("occupancy", as: Int64.self) }
      }
      return (try rows[0].decode("position", as: Int64.self), occupancy)
    }
    guard through > at else { return }
    var occupancy = before
    let statements = [("SELECT analytics.advance(\(at), \(through))", "analytics.advance")]
      + (try Self.statements(forPage: events.filter { $0.position > at }, occupancy: &occupancy))
    _ = try await store.pool.withConnection { db in try await db.pipelineTransaction(statements) }
  }

  /// A scan as the projection reads it: its event's position and recording time, and the scan.
  struct ProjectedScan {
    let position: Int64
    let recordedAt: Int64
    let scannedAt: Int64
    let scan: Campus_Scans_V1_ScanRecorded
  }

  /// The page's ScanRecorded events with a time and a direction (others change nothing).
  static func scans(_ events: [StoredEvent]) throws -> [ProjectedScan] {
    try events.compactMap { e in
      guard e.type == Campus_Scans_V1_ScanRecorded.protoMessageName else { return nil }
      let scan = try Campus_Scans_V1_ScanRecorded(serializedBytes: e.payload)
      guard let scanned = scan.scannedAt.microseconds, scan.direction == .in || scan.direction == .out else { return nil }
      return ProjectedScan(position: e.position, recordedAt: e.recordedAtMicroseconds, scannedAt: scanned, scan: scan)
    }
  }

  /// What a page of events does to the tables, in log order: its scans, and at each
  /// ScansAnonymised the removal of the per-card and per-student rows of the days before it.
  static func statements(forPage events: [StoredEvent], occupancy: inout [String: Int64]) throws -> [(sql: SQL, name: String)] {
    var out: [(sql: SQL, name: String)] = []
    var pending: [StoredEvent] = []
    for e in events {
      guard e.type == Campus_Scans_V1_ScansAnonymised.protoMessageName else {
        pending.append(e)
        continue
      }
      out += statements(for: try scans(pending), occupancy: &occupancy)
      pending = []
      let anonymised = try Campus_Scans_V1_ScansAnonymised(serializedBytes: e.payload)
      let day = CivilDate(microseconds: anonymised.before.microseconds ?? 0).description
      out += [
        ("DELETE FROM analytics.daily_visitors WHERE day < \(day)::date", "analytics.anonymised.visitors"),
        ("DELETE FROM analytics.student_days WHERE day < \(day)::date", "analytics.anonymised.days"),
        ("DELETE FROM analytics.student_day_locations WHERE day < \(day)::date", "analytics.anonymised.locations"),
      ]
    }
    return out + statements(for: try scans(pending), occupancy: &occupancy)
  }

  /// What a page of scans does to the tables, folded in log order in memory: at most one
  /// statement per table (the rows unnested from arrays). `occupancy` holds the locations'
  /// occupancy before the page (missing: 0) and is left as it is after it.
  static func statements(for scans: [ProjectedScan], occupancy: inout [String: Int64]) -> [(sql: SQL, name: String)] {
    guard !scans.isEmpty else { return [] }
    struct Hour: Hashable { let location: String, hour: Int64 }
    struct Visit: Hashable { let day: String, location: String, card: String }
    struct StudentDay: Hashable { let student: String, day: String }
    struct StudentPlace: Hashable { let student: String, day: String, location: String }
    var touched: [String: Int64] = [:]  // location -> when its occupancy last changed (recorded)
    var hours: [Hour: (scansIn: Int64, scansOut: Int64)] = [:]
    var visits: Set<Visit> = []
    var days: [StudentDay: (scans: Int64, first: Int64, last: Int64)] = [:]
    var places: Set<StudentPlace> = []
    for s in scans {
      let location = s.scan.location, entering = s.scan.direction == .in
      occupancy[location] = max(0, (occupancy[location] ?? 0) + (entering ? 1 : -1))
      touched[location] = s.recordedAt
      let hour = s.scannedAt - ((s.scannedAt % 3_600_000_000) + 3_600_000_000) % 3_600_000_000
      let counts = hours[Hour(location: location, hour: hour)] ?? (0, 0)
      hours[Hour(location: location, hour: hour)] = entering ? (counts.scansIn + 1, counts.scansOut) : (counts.scansIn, counts.scansOut + 1)
      let day = CivilDate(microseconds: s.scannedAt).description
      if !s.scan.cardId.isEmpty { visits.insert(Visit(day: day, location: location, card: s.scan.cardId)) }
      if !s.scan.studentId.isEmpty {
        let key = StudentDay(student: s.scan.studentId, day: day)
        let d = days[key] ?? (0, s.scannedAt, s.scannedAt)
        days[key] = (d.scans + 1, min(d.first, s.scannedAt), max(d.last, s.scannedAt))
        places.insert(StudentPlace(student: s.scan.studentId, day: day, location: location))
      }
    }
    func texts(_ values: [String]) -> PostgresTextArray { PostgresTextArray(values) }
    func numbers(_ values: [Int64]) -> PostgresTextArray { PostgresTextArray(values.map(String.init)) }
    let locations = touched.keys.sorted()
    let hourKeys = hours.keys.sorted { ($0.location, $0.hour) < ($1.location, $1.hour) }
    let visitKeys = visits.sorted { ($0.day, $0.location, $0.card) < ($1.day, $1.location, $1.card) }
    let dayKeys = days.keys.sorted { ($0.student, $0.day) < ($1.student, $1.day) }
    let placeKeys = places.sorted { ($0.student, $0.day, $0.location) < ($1.student, $1.day, $1.location) }
    var out: [(sql: SQL, name: String)] = [
      ("""
        INSERT INTO analytics.occupancy AS o (location, occupancy, updated_at)
        SELECT l, n, timestamptz 'epoch' + u * interval '1 microsecond'
        FROM unnest(\(texts(locations))::text[], \(numbers(locations.map { occupancy[$0] ?? 0 }))::text[]::int8[],
                    \(numbers(locations.map { touched[$0] ?? 0 }))::text[]::int8[]) AS t(l, n, u)
        ON CONFLICT (location) DO UPDATE SET occupancy = EXCLUDED.occupancy, updated_at = EXCLUDED.updated_at
        """, "analytics.occupancy"),
      ("""
        INSERT INTO analytics.hourly AS h (location, hour, scans_in, scans_out)
        SELECT l, timestamptz 'epoch' + hr * interval '1 microsecond', i, o
        FROM unnest(\(texts(hourKeys.map(\.location)))::text[], \(numbers(hourKeys.map(\.hour)))::text[]::int8[],
                    \(numbers(hourKeys.map { hours[$0]!.scansIn }))::text[]::int8[],
                    \(numbers(hourKeys.map { hours[$0]!.scansOut }))::text[]::int8[]) AS t(l, hr, i, o)
        ON CONFLICT (location, hour) DO UPDATE SET scans_in = h.scans_in + EXCLUDED.scans_in, scans_out = h.scans_out + EXCLUDED.scans_out
        """, "analytics.hourly"),
      ("""
        INSERT INTO analytics.daily_visitors (day, location, card_id)
        SELECT d::date, l, c FROM unnest(\(texts(visitKeys.map(\.day)))::text[], \(texts(visitKeys.map(\.location)))::text[],
                                         \(texts(visitKeys.map(\.card)))::text[]) AS t(d, l, c)
        ON CONFLICT DO NOTHING
        """, "analytics.visitors"),
    ]
    if !dayKeys.isEmpty {
      out += [
        ("""
          INSERT INTO analytics.student_days AS d (student_id, day, scans, first_scan, last_scan)
          SELECT s, dy::date, n, timestamptz 'epoch' + f * interval '1 microsecond', timestamptz 'epoch' + la * interval '1 microsecond'
          FROM unnest(\(texts(dayKeys.map(\.student)))::text[], \(texts(dayKeys.map(\.day)))::text[],
                      \(numbers(dayKeys.map { days[$0]!.scans }))::text[]::int8[], \(numbers(dayKeys.map { days[$0]!.first }))::text[]::int8[],
                      \(numbers(dayKeys.map { days[$0]!.last }))::text[]::int8[]) AS t(s, dy, n, f, la)
          ON CONFLICT (student_id, day) DO UPDATE SET scans = d.scans + EXCLUDED.scans,
            first_scan = LEAST(d.first_scan, EXCLUDED.first_scan), last_scan = GREATEST(d.last_scan, EXCLUDED.last_scan)
          """, "analytics.student.day"),
        ("""
          INSERT INTO analytics.student_day_locations (student_id, day, location)
          SELECT s, d::date, l FROM unnest(\(texts(placeKeys.map(\.student)))::text[], \(texts(placeKeys.map(\.day)))::text[],
                                           \(texts(placeKeys.map(\.location)))::text[]) AS t(s, d, l)
          ON CONFLICT DO NOTHING
          """, "analytics.student.location"),
      ]
    }
    return out
  }

  /// Empties the projection and computes it again from the whole log, in one transaction (the
  /// live consumer waits for it, then goes on after it); returns the events applied and the
  /// position the projection is at afterwards.
  package static func rebuild(store: EventStore) async throws -> (events: Int, position: Int64) {
    // Everything committed by now: fenced before the transaction, which would otherwise wait
    // for itself (it writes, so the fence counts it as in flight).
    let committed = try await store.fence()
    return try await store.pool.withConnection { db in
      try await db.transaction { tx in
        // Holding the position's row keeps the live consumer's next page out until this commits.
        let before = try await tx.query("SELECT position FROM analytics.progress FOR UPDATE", named: "analytics.rebuild.lock")[0]
          .decode("position", as: Int64.self)
        _ = try await tx.query("TRUNCATE \(literal: AnalyticsSchema.tables)", named: "analytics.rebuild.truncate")
        // Everything the live projection had included (all of it committed), and everything
        // committed before the rebuild began.
        let through = max(before, committed)
        var after: Int64 = 0
        var applied = 0
        var occupancy: [String: Int64] = [:]  // the tables start empty
        while after < through {
          let page = try await store.read(after: after, through: through, limit: 1000, filter: filter)
          let statements = try Self.statements(forPage: page.events, occupancy: &occupancy)
          if !statements.isEmpty { _ = try await tx.pipelineTransaction(statements) }
          applied += page.events.count
          guard page.through > after else { break }
          after = page.through
        }
        _ = try await tx.query("UPDATE analytics.progress SET position = \(through)", named: "analytics.rebuild.position")
        return (applied, through)
      }
    }
  }
}

/// A day of the proleptic Gregorian calendar (UTC), as YYYY-MM-DD.
struct CivilDate: CustomStringConvertible {
  let year: Int
  let month: Int
  let day: Int

  /// The UTC day the instant falls on.
  init(microseconds: Int64) {
    let days = Int((microseconds - ((microseconds % 86_400_000_000) + 86_400_000_000) % 86_400_000_000) / 86_400_000_000)
    // Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    day = doy - (153 * mp + 2) / 5 + 1
    month = mp < 10 ? mp + 3 : mp - 9
    year = yoe + era * 400 + (month <= 2 ? 1 : 0)
  }

  var description: String {
    func pad(_ n: Int, _ width: Int) -> String { String(repeating: "0", count: max(0, width - String(n).count)) + String(n) }
    return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))"
  }
}
