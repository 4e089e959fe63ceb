package import Postgres

extension EventStore {
  /// Committed events after `position`, in position order, up to `limit`, and the position the
  /// caller has now seen everything up to (its next `after`).
  ///
  /// Never returns an uncommitted event, never skips one that commits later: it reads only up
  /// to a fence every writer below which has finished (GapSafety.md). The wait for that is as
  /// long as the oldest transaction that holds a position below the fence, bounded by
  /// PostgreSQL's `idle_in_transaction_session_timeout` and by `deadline`.
  ///
  /// - Throws: ``PostgresError`` `.deadlineExceeded` when the fence does not settle in time.
  package func readCommitted(
    after position: Int64,
    limit: Int = 1000,
    deadline: ContinuousClock.Instant? = nil
  ) async throws -> (events: [StoredEvent], through: Int64) {
    try await pool.withConnection { db in
      let fence = try await Self.fence(db, deadline: deadline)
      guard fence > position else { return ([], position) }
      let rows = try await db.query("""
        SELECT position, stream_type, stream_id, stream_version, event_type, payload, metadata
        FROM quad_events WHERE position > \(position) AND position <= \(fence)
        ORDER BY position LIMIT \(Int64(limit))
        """, named: "eventstore.read")
      var events: [StoredEvent] = []
      events.reserveCapacity(rows.count)
      for r in rows {
        events.append(StoredEvent(
          position: try r.decode("position"), stream: StreamID(type: try r.decode("stream_type"), id: try r.decode("stream_id")),
          version: try r.decode("stream_version"), type: try r.decode("event_type"),
          payload: try r.decode("payload"), metadata: try r.decode("metadata")))
      }
      let through = events.count == limit ? events[events.count - 1].position : fence
      return (events, through)
    }
  }

  /// The highest position below which the log is final: S, the sequence's last value read
  /// first; then R, a transaction id taken after it; once every transaction up to R has
  /// finished, every writer that took a position up to S (its xid is below R) is done.
  static func fence(_ db: PostgresConnection, deadline: ContinuousClock.Instant?) async throws -> Int64 {
    let s = try await db.query(
      "SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS s FROM quad_event_position", named: "eventstore.fence.sequence")
    let last = try s[0].decode("s", as: Int64.self)
    guard last > 0 else { return 0 }
    let r = try await db.query("SELECT pg_current_xact_id()::text::int8 AS r", named: "eventstore.fence.xid")
    let mine = try r[0].decode("r", as: Int64.self)
    var pause = Duration.microseconds(200)
    while true {
      let x = try await db.query("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::int8 AS xmin", named: "eventstore.fence.xmin")
      if try x[0].decode("xmin", as: Int64.self) > mine { return last }
      if let deadline, ContinuousClock.now >= deadline {
        throw PostgresError(.deadlineExceeded, "a transaction holding a position up to \(last) is still open", queryName: "eventstore.fence")
      }
      try await Task.sleep(for: pause)
      pause = min(pause * 2, .milliseconds(20))
    }
  }
}

extension EventStore {
  /// One stream's committed events from version `fromVersion` on, in version order: an
  /// aggregate's history (what `ReadStream` and rebuilding state read).
  package func readStream(_ stream: StreamID, fromVersion: Int64 = 1, limit: Int = 1000) async throws -> [StoredEvent] {
    try await pool.withConnection { db in
      let rows = try await db.query("""
        SELECT position, stream_version, event_type, payload, metadata FROM quad_events
        WHERE stream_type = \(stream.type) AND stream_id = \(stream.id) AND stream_version >= \(fromVersion)
        ORDER BY stream_version LIMIT \(Int64(limit))
        """, named: "eventstore.readStream")
      return try rows.map { r in
        StoredEvent(
          position: try r.decode("position"), stream: stream, version: try r.decode("stream_version"),
          type: try r.decode("event_type"), payload: try r.decode("payload"), metadata: try r.decode("metadata"))
      }
    }
  }
}
