internal import Postgres

/// An event an in-process consumer gave up on: the event, how often it was tried, the last error.
package struct ParkedEvent: Sendable, Hashable {
  package let consumer: String
  package let event: StoredEvent
  package let attempts: Int32
  package let error: String
  package let parkedAtMicroseconds: Int64
  package let retryRequested: Bool
}

extension EventStore {
  /// Parks `position` for `consumer` with its error (or updates the error and attempts of one
  /// already parked, clearing a retry request).
  package func park(consumer: String, position: Int64, attempts: Int32, error: String) async throws {
    try await pool.withConnection { db in
      _ = try await db.query("""
        INSERT INTO quad_parked_events AS p (consumer, position, attempts, error) VALUES (\(consumer), \(position), \(attempts), \(error))
        ON CONFLICT (consumer, position) DO UPDATE
          SET attempts = p.attempts + EXCLUDED.attempts, error = EXCLUDED.error, retry_requested = false, parked_at = clock_timestamp()
        """, named: "parked.park")
    }
  }

  /// Parked events, oldest position first, after `after`, for one consumer or all (`nil`).
  package func parked(consumer: String?, after: Int64 = 0, limit: Int = 100, retryRequestedOnly: Bool = false) async throws -> [ParkedEvent] {
    try await pool.withConnection { db in
      let rows = try await db.query("""
        SELECT p.consumer, p.attempts, p.error, p.retry_requested, (extract(epoch FROM p.parked_at) * 1000000)::int8 AS parked_us,
          e.position, e.stream_type, e.stream_id, e.stream_version, e.event_type, e.payload, e.metadata,
          (extract(epoch FROM e.recorded_at) * 1000000)::int8 AS recorded_us
        FROM quad_parked_events p JOIN quad_events e USING (position)
        WHERE (\(consumer)::text IS NULL OR p.consumer = \(consumer)::text) AND p.position > \(after)
          AND (NOT \(retryRequestedOnly) OR p.retry_requested)
        ORDER BY p.position, p.consumer LIMIT \(Int64(limit))
        """, named: "parked.list")
      return try rows.map { r in
        ParkedEvent(
          consumer: try r.decode("consumer"), event: try upcasters.upcast(Self.event(r)), attempts: try r.decode("attempts"),
          error: try r.decode("error"), parkedAtMicroseconds: try r.decode("parked_us"), retryRequested: try r.decode("retry_requested"))
      }
    }
  }

  /// Asks `consumer` to try these parked events again; returns how many were parked.
  package func requestRetry(consumer: String, positions: [Int64]) async throws -> Int {
    try await pool.withConnection { db in
      try await db.query("""
        UPDATE quad_parked_events SET retry_requested = true
        WHERE consumer = \(consumer) AND position = ANY(\(PostgresTextArray(positions.map(String.init)))::int8[])
        """, named: "parked.retry").affectedRows
    }
  }

  /// Drops these parked events of `consumer` (they will not be handled); returns how many.
  package func discardParked(consumer: String, positions: [Int64]) async throws -> Int {
    try await pool.withConnection { db in
      try await db.query("""
        DELETE FROM quad_parked_events WHERE consumer = \(consumer) AND position = ANY(\(PostgresTextArray(positions.map(String.init)))::int8[])
        """, named: "parked.discard").affectedRows
    }
  }

  /// Removes a parked event its consumer has now handled.
  package func unpark(consumer: String, position: Int64) async throws {
    try await pool.withConnection { db in
      _ = try await db.query("DELETE FROM quad_parked_events WHERE consumer = \(consumer) AND position = \(position)", named: "parked.unpark")
    }
  }
}
