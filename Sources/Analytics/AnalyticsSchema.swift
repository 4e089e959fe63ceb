internal import Postgres

/// The analytics context's own tables, in its own schema: projections of the scan stream,
/// and how far into the log they are.
enum AnalyticsSchema {
  static let migrations = [
    Migration(version: 4001, name: "analytics.projections", sql: """
      CREATE SCHEMA IF NOT EXISTS analytics;
      -- The last log position the projections include: each page of events is applied in one
      -- transaction that moves it, so a page applied again changes nothing.
      CREATE TABLE analytics.progress (
        singleton bool PRIMARY KEY DEFAULT true CHECK (singleton),
        position bigint NOT NULL
      );
      INSERT INTO analytics.progress (position) VALUES (0);
      CREATE TABLE analytics.occupancy (
        location text PRIMARY KEY,
        occupancy bigint NOT NULL CHECK (occupancy >= 0),
        updated_at timestamptz NOT NULL
      );
      CREATE TABLE analytics.hourly (
        location text NOT NULL,
        hour timestamptz NOT NULL,
        scans_in bigint NOT NULL,
        scans_out bigint NOT NULL,
        PRIMARY KEY (location, hour)
      );
      CREATE INDEX hourly_by_hour ON analytics.hourly (hour);
      CREATE TABLE analytics.daily_visitors (
        day date NOT NULL,
        location text NOT NULL,
        card_id text NOT NULL,
        PRIMARY KEY (day, location, card_id)
      );
      CREATE TABLE analytics.student_days (
        student_id text NOT NULL,
        day date NOT NULL,
        scans bigint NOT NULL,
        first_scan timestamptz NOT NULL,
        last_scan timestamptz NOT NULL,
        PRIMARY KEY (student_id, day)
      );
      CREATE TABLE analytics.student_day_locations (
        student_id text NOT NULL,
        day date NOT NULL,
        location text NOT NULL,
        PRIMARY KEY (student_id, day, location)
      );
      -- Moves the position from `expected` to `through`, or fails (QA001) when another
      -- projector or a rebuild moved it first: the page is then read again.
      CREATE FUNCTION analytics.advance(expected bigint, through bigint) RETURNS void
      LANGUAGE plpgsql AS $$
      BEGIN
        UPDATE analytics.progress SET position = through WHERE position = expected;
        IF NOT FOUND THEN
          RAISE EXCEPTION 'the analytics projection is no longer at %', expected USING ERRCODE = 'QA001';
        END IF;
      END $$;
      """),
  ]

  /// The projection's tables, emptied by a rebuild.
  static let tables: StaticString = "analytics.occupancy, analytics.hourly, analytics.daily_visitors, analytics.student_days, analytics.student_day_locations"
}
