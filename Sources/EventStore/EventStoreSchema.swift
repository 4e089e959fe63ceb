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
    Migration(version: 1003, name: "eventstore.functions", sql: """
      -- Appends one event as version p_expected + 1 of its stream (any next version when
      -- p_expected is NULL), raising QV001 when the stream is elsewhere: one statement, so a
      -- write's whole transaction can go in one round trip and still fail whole on a conflict.
      CREATE FUNCTION quad_append_event(
        p_stream_type text, p_stream_id text, p_expected bigint, p_event_type text, p_payload bytea, p_metadata bytea
      ) RETURNS bigint LANGUAGE plpgsql AS $$
      DECLARE
        -- The writer's transaction id, taken before its position: what the readers' fence waits on.
        writer xid8 := pg_current_xact_id();
        actual bigint;
        pos bigint;
      BEGIN
        SELECT COALESCE(max(stream_version), 0) INTO actual
          FROM quad_events WHERE stream_type = p_stream_type AND stream_id = p_stream_id;
        IF p_expected IS NOT NULL AND actual <> p_expected THEN
          RAISE EXCEPTION 'the stream is at version %, not the expected %', actual, p_expected
            USING ERRCODE = 'QV001', DETAIL = actual::text;
        END IF;
        pos := nextval('quad_event_position');
        INSERT INTO quad_events (writer_xid, position, stream_type, stream_id, stream_version, event_type, payload, metadata)
          VALUES (writer, pos, p_stream_type, p_stream_id, actual + 1, p_event_type, p_payload, p_metadata);
        RETURN pos;
      END $$;

      -- Records a write RPC's answer under (caller, method, key), raising QI001 when the key is
      -- already taken by a write within the retention period (an expired one is replaced).
      CREATE FUNCTION quad_claim_idempotency(
        p_caller text, p_method text, p_key text, p_hash bytea, p_response bytea, p_retention_ms bigint
      ) RETURNS void LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO quad_idempotency AS i (caller, method, key, request_hash, response)
          VALUES (p_caller, p_method, p_key, p_hash, p_response)
          ON CONFLICT (caller, method, key) DO UPDATE
            SET request_hash = EXCLUDED.request_hash, response = EXCLUDED.response, created_at = clock_timestamp()
            WHERE i.created_at < clock_timestamp() - p_retention_ms * interval '1 millisecond';
        IF NOT FOUND THEN
          RAISE EXCEPTION 'the idempotency key is already used' USING ERRCODE = 'QI001';
        END IF;
      END $$;
      """),
    Migration(version: 1004, name: "eventstore.parked", sql: """
      -- Events an in-process consumer gave up on after its retries, with the last error; an
      -- operator asks for a retry (retry_requested) or discards them.
      CREATE TABLE quad_parked_events (
        consumer text NOT NULL,
        position bigint NOT NULL REFERENCES quad_events (position),
        attempts int NOT NULL CHECK (attempts > 0),
        error text NOT NULL,
        parked_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        retry_requested bool NOT NULL DEFAULT false,
        PRIMARY KEY (consumer, position)
      );
      CREATE INDEX quad_parked_retry ON quad_parked_events (consumer) WHERE retry_requested;
      """),
  ]
}
