@testable internal import Analytics
internal import Postgres
internal import Testing
internal import TestSupport

/// analytics.location_visits, the counts GetTopLocations and GetDailyVisitors read unique
/// visitors from, against the distinct count over analytics.daily_visitors it replaces: equal for
/// every range of up to 32 days, after visits arrive in any order, in batches with duplicates,
/// and after deletions (retention) and truncation (rebuild).
@Suite("Unique-visitor counts")
struct VisitorCountTests {
  static let locations = ["gym", "hall", "library"]

  /// A deterministic stream of numbers, so a failure can be replayed.
  struct Random {
    var state: UInt64
    mutating func next(_ bound: Int) -> Int {
      state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      return Int((state >> 33) % UInt64(bound))
    }
  }

  /// Inserts visits as the projection does: one statement, duplicates skipped.
  static func insert(_ visits: [(location: String, card: String, day: Int)], _ db: PostgresConnection) async throws {
    _ = try await db.query("""
      INSERT INTO analytics.daily_visitors (day, location, card_id)
      SELECT date '2026-01-01' + d, l, c FROM unnest(\(PostgresTextArray(visits.map { String($0.day) }))::text[]::int[],
        \(PostgresTextArray(visits.map(\.location)))::text[], \(PostgresTextArray(visits.map(\.card)))::text[]) AS t(d, l, c)
      ON CONFLICT DO NOTHING
      """, named: "test.visits.insert")
  }

  /// Ranges whose counted unique visitors differ from the distinct count, and rows of the counts
  /// that differ from counts computed from scratch (with none at 0).
  static func mismatches(_ db: PostgresConnection) async throws -> (ranges: Int64, rows: Int64) {
    let row = try await db.query("""
      WITH ranges AS (
        SELECT l, date '2026-01-01' + d1 AS d1, date '2026-01-01' + d1 + span AS d2
        FROM unnest(\(PostgresTextArray(locations))::text[]) l, generate_series(-2, 70) d1, unnest(ARRAY[0, 1, 2, 6, 13, 31]) span
      ), wrong AS (
        SELECT 1 FROM ranges r
        WHERE (SELECT count(DISTINCT card_id) FROM analytics.daily_visitors v WHERE v.location = r.l AND v.day BETWEEN r.d1 AND r.d2)
          <> (SELECT coalesce(sum(visitors), 0) FROM analytics.location_visits c WHERE c.location = r.l AND c.day BETWEEN r.d1 AND r.d2 AND c.since < r.d1)
      ), scratch AS (
        SELECT location, day, since, count(*) AS visitors FROM (
          SELECT location, day, analytics.visit_since(day, lag(day) OVER (PARTITION BY location, card_id ORDER BY day)) AS since
          FROM analytics.daily_visitors) v
        GROUP BY location, day, since
      ), differing AS (
        (SELECT * FROM scratch EXCEPT SELECT * FROM analytics.location_visits)
        UNION ALL (SELECT * FROM analytics.location_visits EXCEPT SELECT * FROM scratch)
      )
      SELECT (SELECT count(*) FROM wrong) AS ranges, (SELECT count(*) FROM differing) AS rows
      """, named: "test.visits.check")[0]
    return (try row.decode("ranges", as: Int64.self), try row.decode("rows", as: Int64.self))
  }

  @Test("Counts equal the distinct count for every range, through out-of-order batches, retention deletes and a truncate; the migration counts the visits already there")
  func countsMatchDistinct() async throws {
    try await TestPostgres.with { pg in
      let db = try await PostgresConnection.connect(pg.conninfo)
      var random = Random(state: 42)
      func batch(_ size: Int, days: ClosedRange<Int>) -> [(location: String, card: String, day: Int)] {
        (0..<size).map { _ in (Self.locations[random.next(Self.locations.count)], "card-\(random.next(40))", days.lowerBound + random.next(days.count)) }
      }
      // Visits projected by a version before the counts: the migration counts them.
      _ = try await Migrator.migrate(Array(AnalyticsSchema.migrations.prefix(1)), on: db)
      try await Self.insert(batch(300, days: 0...60), db)
      _ = try await Migrator.migrate(AnalyticsSchema.migrations, on: db)
      var checks = try await Self.mismatches(db)
      #expect(checks.ranges == 0 && checks.rows == 0, "after the migration's backfill")

      // Batches of late and early visits, with duplicates within and across batches.
      for round in 0..<12 {
        let lo = random.next(50)
        try await Self.insert(batch(1 + random.next(60), days: lo...(lo + random.next(20))), db)
        if round % 4 == 3 {  // retention: the visits before a day go, as at ScansAnonymised
          _ = try await db.query("DELETE FROM analytics.daily_visitors WHERE day < date '2026-01-01' + \(Int64(random.next(30)))::int", named: "test.visits.retain")
        }
        if round % 5 == 4 {  // single visits removed
          _ = try await db.query("DELETE FROM analytics.daily_visitors WHERE card_id = \("card-\(random.next(40))")", named: "test.visits.card")
        }
        checks = try await Self.mismatches(db)
        #expect(checks.ranges == 0 && checks.rows == 0, "round \(round)")
      }
      let counted = try await db.query("SELECT count(*) AS n FROM analytics.location_visits", named: "test.visits.rows")[0].decode("n", as: Int64.self)
      #expect(counted > 0)

      // A rebuild truncates the visits: the counts go with them, and come back with the visits.
      _ = try await db.query("TRUNCATE \(literal: AnalyticsSchema.tables)", named: "test.visits.truncate")
      #expect(try await db.query("SELECT count(*) AS n FROM analytics.location_visits", named: "test.visits.rows")[0].decode("n", as: Int64.self) == 0)
      try await Self.insert(batch(200, days: 0...40), db)
      checks = try await Self.mismatches(db)
      #expect(checks.ranges == 0 && checks.rows == 0, "after the truncate")
      await db.close()
    }
  }
}
