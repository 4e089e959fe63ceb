package import Postgres

/// The event log's tables: the log is also the outbox, so a write's state change and its
/// event commit in one transaction.
enum EventStoreSchema {
  static let migrations = [
    Migration(version: 1001, name: "eventstore.log", sql: """
      -- Positions come from a sequence with CACHE 1, so they are handed out in one global order;
      -- transactions commit in another, which the reader's fence accounts for (GapSafety.md).
      CREATE SEQUENCE quad_event_position AS bigint CACHE 1;
      CREATE TABLE quad_events (
        position bigint PRIMARY KEY,
        -- The writer's transaction id, taken before its position: what the fence waits on.
        writer_xid xid8 NOT NULL,
        stream_type text NOT NULL,
        stream_id text NOT NULL,
        stream_version bigint NOT NULL CHECK (stream_version > 0),
        event_type text NOT NULL,
        payload bytea NOT NULL,
        metadata bytea NOT NULL DEFAULT '',
        recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        UNIQUE (stream_type, stream_id, stream_version)
      );
      -- The log's identity: part of every resume token; a restored backup gets a new one.
      CREATE TABLE quad_event_log (
        singleton bool PRIMARY KEY DEFAULT true CHECK (singleton),
        identity text NOT NULL
      );
      INSERT INTO quad_event_log (identity) VALUES (gen_random_uuid()::text);
      """),
  ]
}
