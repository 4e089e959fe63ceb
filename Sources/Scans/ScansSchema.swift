internal import Postgres

/// The scans context's own tables, in its own schema: every recorded scan, and the card ->
/// student lookup it keeps from the students context's events.
enum ScansSchema {
  static let migrations = [
    Migration(version: 3001, name: "scans.tables", sql: """
      CREATE SCHEMA IF NOT EXISTS scans;
      -- `state` is the campus.scans.v1.Scan message without recorded_at (the column).
      CREATE TABLE scans.scans (
        scan_id text PRIMARY KEY,
        card_id text NOT NULL,
        student_id text NOT NULL,
        location text NOT NULL,
        scanned_at timestamptz NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        state bytea NOT NULL
      );
      CREATE INDEX scans_by_time ON scans.scans (scanned_at, scan_id);
      CREATE INDEX scans_by_student ON scans.scans (student_id, scanned_at, scan_id);
      CREATE INDEX scans_by_card ON scans.scans (card_id, scanned_at, scan_id);
      CREATE INDEX scans_by_location ON scans.scans (location, scanned_at, scan_id);
      -- Cards as the students context's events describe them (event-carried state transfer);
      -- `position` is the newest event applied, so a redelivered older one changes nothing.
      CREATE TABLE scans.cards (
        card_id text PRIMARY KEY,
        student_id text NOT NULL,
        lost boolean NOT NULL DEFAULT false,
        position bigint NOT NULL
      );
      """),
  ]
}
