internal import CampusContracts
package import EventConsumers
package import EventRelay
package import EventStore
internal import Postgres
internal import QuadProtobuf

/// The analytics read model, projected from ScanRecorded events: occupancy per location,
/// scans per location per hour, distinct cards per location per day, and each student's days.
/// A durable consumer (`consumer:analytics`) feeds it a page at a time; each page is applied
/// in one transaction with the projection's position, so it is applied exactly once.
/// ``rebuild(store:)`` computes the same tables again from the whole log.
package struct AnalyticsProjection: Sendable {
  package let store: EventStore

  package init(store: EventStore) {
    self.store = store
  }

  /// The events the projection reads.
  static let filter = EventFilter(eventTypes: [Campus_Scans_V1_ScanRecorded.protoMessageName])

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
    let at = try await position()
    guard through > at else { return }
    var statements: [(sql: SQL, name: String)] = [("SELECT analytics.advance(\(at), \(through))", "analytics.advance")]
    for e in events where e.position > at { statements += try Self.statements(for: e) }
    _ = try await store.pool.withConnection { db in try await db.pipelineTransaction(statements) }
  }

  /// What one event does to the tables, as statements applied in log order.
  static func statements(for event: StoredEvent) throws -> [(sql: SQL, name: String)] {
    guard event.type == Campus_Scans_V1_ScanRecorded.protoMessageName else { return [] }
    let scan = try Campus_Scans_V1_ScanRecorded(serializedBytes: event.payload)
    guard let scanned = scan.scannedAt.microseconds, scan.direction == .in || scan.direction == .out else { return [] }
    let delta: Int64 = scan.direction == .in ? 1 : -1
    let hour = scanned - ((scanned % 3_600_000_000) + 3_600_000_000) % 3_600_000_000
    let day = CivilDate(microseconds: scanned).description
    let (scansIn, scansOut): (Int64, Int64) = scan.direction == .in ? (1, 0) : (0, 1)
    var out: [(sql: SQL, name: String)] = [
      ("""
        INSERT INTO analytics.occupancy AS o (location, occupancy, updated_at)
        VALUES (\(scan.location), GREATEST(0, \(delta)::int8), timestamptz 'epoch' + \(event.recordedAtMicroseconds) * interval '1 microsecond')
        ON CONFLICT (location) DO UPDATE SET occupancy = GREATEST(0, o.occupancy + \(delta)::int8), updated_at = EXCLUDED.updated_at
        """, "analytics.occupancy"),
      ("""
        INSERT INTO analytics.hourly AS h (location, hour, scans_in, scans_out)
        VALUES (\(scan.location), timestamptz 'epoch' + \(hour) * interval '1 microsecond', \(scansIn), \(scansOut))
        ON CONFLICT (location, hour) DO UPDATE SET scans_in = h.scans_in + EXCLUDED.scans_in, scans_out = h.scans_out + EXCLUDED.scans_out
        """, "analytics.hourly"),
      ("""
        INSERT INTO analytics.daily_visitors (day, location, card_id) VALUES (\(day)::date, \(scan.location), \(scan.cardId))
        ON CONFLICT DO NOTHING
        """, "analytics.visitors"),
    ]
    if !scan.studentId.isEmpty {
      out += [
        ("""
          INSERT INTO analytics.student_days AS d (student_id, day, scans, first_scan, last_scan)
          VALUES (\(scan.studentId), \(day)::date, 1, timestamptz 'epoch' + \(scanned) * interval '1 microsecond',
                  timestamptz 'epoch' + \(scanned) * interval '1 microsecond')
          ON CONFLICT (student_id, day) DO UPDATE SET scans = d.scans + 1,
            first_scan = LEAST(d.first_scan, EXCLUDED.first_scan), last_scan = GREATEST(d.last_scan, EXCLUDED.last_scan)
          """, "analytics.student.day"),
        ("""
          INSERT INTO analytics.student_day_locations (student_id, day, location) VALUES (\(scan.studentId), \(day)::date, \(scan.location))
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
        while after < through {
          let page = try await store.read(after: after, through: through, limit: 1000, filter: filter)
          let statements = try page.events.flatMap(Self.statements(for:))
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
