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
    Migration(version: 1002, name: "eventstore.consumers", sql: """
      -- Durable consumer groups: a checkpoint, and a lease so one reader at a time holds it.
      CREATE TABLE quad_consumer_groups (
        group_name text PRIMARY KEY,
        checkpoint bigint NOT NULL DEFAULT 0 CHECK (checkpoint >= 0),
        lease_holder text,
        lease_expires timestamptz,
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
      );
      -- Write RPCs already answered, by (caller, method, key): a retry gets the same answer.
      CREATE TABLE quad_idempotency (
        caller text NOT NULL,
        method text NOT NULL,
        key text NOT NULL,
        request_hash bytea NOT NULL,
        response bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (caller, method, key)
      );
      CREATE INDEX quad_idempotency_created ON quad_idempotency (created_at);
      -- An aggregate's state every N events, so a long history loads from the newest snapshot.
      CREATE TABLE quad_snapshots (
        stream_type text NOT NULL,
        stream_id text NOT NULL,
        stream_version bigint NOT NULL,
        state bytea NOT NULL,
        PRIMARY KEY (stream_type, stream_id)
      );
      """),
  ]
}
