internal import Postgres

extension EventStore {
  /// Committed events after `position`, in position order, up to `limit`, and the position the
  /// caller has now seen everything up to (its next `after`).
  ///
  /// Never returns an uncommitted event, never skips one that commits later: it reads only up
  /// to a fence every writer below which has finished (GapSafety.md). The wait for that is as
  /// long as the oldest transaction that holds a position below the fence, bounded by
  /// PostgreSQL's `idle_in_transaction_session_timeout` and by `deadline`.
  ///
  /// Between attempts it waits with `pause` (given a growing duration): a caller that hears of
  /// commits can end the wait at the next one, when the fence is most likely to have settled.
  ///
  /// - Throws: ``PostgresError`` `.deadlineExceeded` when the fence does not settle in time.
  package func readCommitted(
    after position: Int64,
    limit: Int = 1000,
    deadline: ContinuousClock.Instant? = nil,
    pause: (Duration) async -> Void = sleep
  ) async throws -> (events: [StoredEvent], through: Int64) {
    try await pool.withConnection { db in
      // One round trip: the fence's mark (S, then R, in a transaction that ends at once; kept
      // in the session for the read) and, in the pipeline's next transaction, so under a newer
      // snapshot, the first attempt at the read.
      let outcomes = try await db.pipelineTransactions([
        [(Self.fenceMark, "eventstore.fence.mark")],
        [(Self.fencedRead(after: position, limit: limit), "eventstore.fence.read")],
      ])
      let last = try outcomes[0].get()[0][0].decode("s", as: Int64.self)
      guard last > position else { return ([], position) }
      let limit = limit
      let upcasters = upcasters
      // Round trip 2 on, until settled: in one statement, whether every transaction up to R has
      // ended (this statement's snapshot's xmin is past R) and, if so, the events up to S as
      // that same snapshot sees them.
      func settled(_ rows: PostgresRows) throws -> (events: [StoredEvent], through: Int64)? {
        guard try rows[0].decode("settled", as: Bool.self) else { return nil }
        let events = try rows.compactMap { r -> StoredEvent? in
          try r.decode("position", as: Int64?.self) == nil ? nil : try upcasters.upcast(Self.event(r))
        }
        return (events, events.count == limit ? events[events.count - 1].position : last)
      }
      var first: PostgresRows? = try outcomes[1].get()[0]
      return try await Self.untilSettled(last: last, deadline: deadline, pause: pause) {
        if let rows = first.take() { return try settled(rows) }
        return try settled(try await db.query(Self.fencedRead(after: position, limit: limit), named: "eventstore.fence.read"))
      }
    }
  }

  /// The fence's mark: S, the sequence's last value (read by the scan), then R, a transaction
  /// id of this statement's own (assigned as the row is projected, so after S), both kept in
  /// the session (`quad.fence_s`, `quad.fence_r`) for ``fencedRead(after:limit:)``.
  static let fenceMark: SQL = """
    SELECT set_config('quad.fence_s', (CASE WHEN is_called THEN last_value ELSE 0 END)::text, false)::int8 AS s,
           set_config('quad.fence_r', pg_current_xact_id()::text, false)::int8 AS r
    FROM quad_event_position
    """

  /// Whether the session's fence has settled (every transaction up to R has ended: this
  /// statement's snapshot's xmin is past it) and, if so, the events after `position` up to S.
  static func fencedRead(after position: Int64, limit: Int) -> SQL {
    """
    SELECT f.settled, e.* FROM (
      SELECT pg_snapshot_xmin(pg_current_snapshot())::text::int8 > current_setting('quad.fence_r')::int8 AS settled,
             current_setting('quad.fence_s')::int8 AS s
    ) f
    LEFT JOIN LATERAL (
      SELECT \(literal: columns) FROM quad_events
      WHERE f.settled AND position > \(position) AND position <= f.s ORDER BY position LIMIT \(Int64(limit))
    ) e ON true
    """
  }

  /// Events in `(position, through]`, a range a fence has already settled (every event in it
  /// has committed), that match `filter`, up to `limit`; and how far the read got (`through`
  /// unless the page filled up).
  package func read(
    after position: Int64,
    through: Int64,
    limit: Int = 1000,
    filter: EventFilter = .all
  ) async throws -> (events: [StoredEvent], through: Int64) {
    guard through > position else { return ([], position) }
    return try await pool.withConnection { db in
      try await Self.read(db, after: position, through: through, limit: limit, filter: filter, upcasters: upcasters)
    }
  }

  /// Reads a page of at most `limit` events and about `byteBudget` bytes (always at least one
  /// event), so a subscriber's page stays small whatever the payloads; `filter` names types as
  /// read (after `upcasters`), which match their superseded types in the log too.
  static func read(
    _ db: PostgresConnection, after position: Int64, through: Int64, limit: Int, filter: EventFilter,
    upcasters: EventUpcasters, byteBudget: Int64 = 4 * 1024 * 1024
  ) async throws -> (events: [StoredEvent], through: Int64) {
    let filter = upcasters.normalized(filter)
    let types = PostgresTextArray(filter.eventTypes.sorted()), streams = PostgresTextArray(filter.streamTypes.sorted())
    // The running size is computed over the ordered rows as they stream (the window stops
    // with the LIMIT); the outer filter cuts the page where it passes the budget.
    let rows = try await db.query("""
      SELECT * FROM (
        SELECT \(literal: columns),
          sum(octet_length(payload) + octet_length(metadata)) OVER (ORDER BY position) AS running,
          octet_length(payload) + octet_length(metadata) AS size
        FROM quad_events WHERE position > \(position) AND position <= \(through)
          AND (cardinality(\(types)::text[]) = 0 OR event_type = ANY(\(types)::text[]))
          AND (cardinality(\(streams)::text[]) = 0 OR stream_type = ANY(\(streams)::text[]))
        ORDER BY position LIMIT \(Int64(limit))
      ) page WHERE running - size < \(byteBudget) ORDER BY position
      """, named: "eventstore.read")
    let events = try rows.map { try upcasters.upcast(Self.event($0)) }
    // A full page, or one cut by the budget (its last row's running total reached it), ends
    // at its last event; otherwise the whole range was read.
    let cut = try rows.last.map { try $0.decode("running", as: Int64.self) >= byteBudget } ?? false
    let reached = events.count == limit || cut ? events[events.count - 1].position : through
    return (events, reached)
  }

  /// The columns ``event(_:)`` decodes.
  static let columns: StaticString = """
    position, stream_type, stream_id, stream_version, event_type, payload, metadata,
    (extract(epoch FROM recorded_at) * 1000000)::int8 AS recorded_us
    """

  static func event(_ r: PostgresRow) throws -> StoredEvent {
    StoredEvent(
      position: try r.decode("position"), stream: StreamID(type: try r.decode("stream_type"), id: try r.decode("stream_id")),
      version: try r.decode("stream_version"), type: try r.decode("event_type"),
      payload: try r.decode("payload"), metadata: try r.decode("metadata"), recordedAtMicroseconds: try r.decode("recorded_us"))
  }

  /// The highest position handed out so far (committed or not): a cursor beyond it is from
  /// the future (or from another log).
  package func head() async throws -> Int64 {
    try await pool.withConnection { db in try await Self.lastPosition(db) }
  }

  static func lastPosition(_ db: PostgresConnection) async throws -> Int64 {
    try await db.query(
      "SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS s FROM quad_event_position", named: "eventstore.head"
    )[0].decode("s", as: Int64.self)
  }

  /// The highest position below which the log is final, waiting (up to `deadline`) for the
  /// writers below it to finish.
  package func fence(deadline: ContinuousClock.Instant? = nil) async throws -> Int64 {
    try await pool.withConnection { db in try await Self.fence(db, deadline: deadline) }
  }

  /// The highest position below which the log is final: S, the sequence's last value read
  /// first; then R, a transaction id taken after it; once every transaction up to R has
  /// finished, every writer that took a position up to S (its xid is below R) is done.
  static func fence(_ db: PostgresConnection, deadline: ContinuousClock.Instant?) async throws -> Int64 {
    let (last, mine) = try await fenceStart(db)
    guard last > 0 else { return 0 }
    return try await untilSettled(last: last, deadline: deadline) { () -> Int64? in
      let x = try await db.query("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::int8 AS xmin", named: "eventstore.fence.xmin")
      return try x[0].decode("xmin", as: Int64.self) > mine ? last : nil
    }
  }

  /// The fence's first round trip, ``fenceMark`` alone: S, then R.
  static func fenceStart(_ db: PostgresConnection) async throws -> (last: Int64, mine: Int64) {
    let start = try await db.query(fenceMark, named: "eventstore.fence.mark")
    return (try start[0].decode("s", as: Int64.self), try start[0].decode("r", as: Int64.self))
  }

  /// The pause between fence attempts when nothing can end it early.
  static func sleep(_ pause: Duration) async { try? await Task.sleep(for: pause) }

  /// Repeats `attempt` (nil: not settled yet) with a growing pause until it answers.
  ///
  /// - Throws: ``PostgresError`` `.deadlineExceeded` once `deadline` passes unsettled.
  static func untilSettled<T>(
    last: Int64, deadline: ContinuousClock.Instant?, pause wait: (Duration) async -> Void = sleep,
    _ attempt: () async throws -> T?
  ) async throws -> T {
    var pause = Duration.microseconds(200)
    while true {
      if let settled = try await attempt() { return settled }
      if let deadline, ContinuousClock.now >= deadline {
        throw PostgresError(.deadlineExceeded, "a transaction holding a position up to \(last) is still open", queryName: "eventstore.fence")
      }
      try Task.checkCancellation()
      await wait(pause)
      pause = min(pause * 2, .milliseconds(20))
    }
  }
}

extension EventStore {
  /// One stream's committed events from version `fromVersion` on, in version order: an
  /// aggregate's history (what `ReadStream` and rebuilding state read). With
  /// `recordedUpToMicroseconds`, only what had been recorded by then: the stream as it was.
  package func readStream(
    _ stream: StreamID, fromVersion: Int64 = 1, limit: Int = 1000, recordedUpToMicroseconds: Int64? = nil
  ) async throws -> [StoredEvent] {
    try await pool.withConnection { db in
      let rows = try await db.query("""
        SELECT \(literal: Self.columns) FROM quad_events
        WHERE stream_type = \(stream.type) AND stream_id = \(stream.id) AND stream_version >= \(fromVersion)
          AND (\(recordedUpToMicroseconds)::int8 IS NULL OR recorded_at <= to_timestamp(\(recordedUpToMicroseconds)::int8 / 1000000.0))
        ORDER BY stream_version LIMIT \(Int64(limit))
        """, named: "eventstore.readStream")
      return try rows.map { try upcasters.upcast(Self.event($0)) }
    }
  }
}
