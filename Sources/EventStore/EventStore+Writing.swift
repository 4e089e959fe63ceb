package import Postgres

/// One write RPC's transaction, sent in one round trip: its state changes, its events, its
/// snapshots and the answer recorded under its idempotency key. All commit, or none does.
package struct EventWrite: Sendable {
  /// An event to append, with the version its stream must be at (`nil`: wherever it is).
  package struct Append: Sendable {
    package let event: NewEvent
    package let stream: StreamID
    package let expectedVersion: Int64?

    package init(_ event: NewEvent, to stream: StreamID, expectedVersion: Int64?) {
      self.event = event
      self.stream = stream
      self.expectedVersion = expectedVersion
    }
  }

  /// State changes (each with the name logs and errors call it), run before the events.
  package var statements: [(sql: SQL, name: String)] = []
  package var events: [Append] = []
  /// Aggregate states to keep as snapshots (a newer one replaces an older).
  package var snapshots: [Snapshot] = []
  /// The key this write answers under, and its answer (the RPC's response bytes).
  package var idempotency: (key: IdempotencyKey, response: [UInt8])?

  package init() {}
}

/// A write RPC's idempotency key, scoped to who called which method: a retry with the same key
/// and request gets the first answer; the same key with another request is refused.
package struct IdempotencyKey: Sendable, Hashable {
  package let caller: String
  package let method: String
  package let key: String
  /// A hash of the request (SHA-256 of its bytes, say): the same key with a different request is
  /// a client bug, not a retry.
  package let requestHash: [UInt8]

  package init(caller: String, method: String, key: String, requestHash: [UInt8]) {
    self.caller = caller
    self.method = method
    self.key = key
    self.requestHash = requestHash
  }
}

/// An aggregate's state as of one version of its stream.
package struct Snapshot: Sendable, Hashable {
  package let stream: StreamID
  package let version: Int64
  package let state: [UInt8]

  package init(stream: StreamID, version: Int64, state: [UInt8]) {
    self.stream = stream
    self.version = version
    self.state = state
  }
}

/// What a write did.
package enum WriteOutcome: Sendable, Hashable {
  /// It committed; the events' positions, in order.
  case committed(positions: [Int64])
  /// Its idempotency key had already answered the same request: nothing was written, and this
  /// is the first answer.
  case replayed(response: [UInt8])
}

extension EventStore {
  /// How long idempotency keys are kept (7 days unless set).
  package static let defaultIdempotencyRetention = Duration.seconds(7 * 24 * 3600)

  /// Commits `write` in one round trip (libpq pipeline mode).
  ///
  /// - Throws: ``EventStoreError`` `.versionConflict` (nothing written), `.tooLarge`,
  ///   `.idempotencyMismatch` (the key answered another request); ``PostgresError`` otherwise,
  ///   `.commitOutcomeUnknown` among them.
  package func write(_ write: EventWrite, idempotencyRetention: Duration = defaultIdempotencyRetention) async throws -> WriteOutcome {
    var statements = write.statements
    if let (key, response) = write.idempotency {
      statements.insert((
        "SELECT quad_claim_idempotency(\(key.caller), \(key.method), \(key.key), \(key.requestHash), \(response), \(Self.milliseconds(idempotencyRetention)))",
        "eventstore.idempotency.claim"), at: 0)
    }
    let firstEvent = statements.count
    for a in write.events {
      statements.append((try Self.appendStatement(a.event, to: a.stream, expectedVersion: a.expectedVersion, newStreamFastPath: true), "eventstore.append"))
    }
    for s in write.snapshots {
      statements.append(("""
        INSERT INTO quad_snapshots AS s (stream_type, stream_id, stream_version, state)
        VALUES (\(s.stream.type), \(s.stream.id), \(s.version), \(s.state))
        ON CONFLICT (stream_type, stream_id) DO UPDATE SET stream_version = EXCLUDED.stream_version, state = EXCLUDED.state
          WHERE s.stream_version < EXCLUDED.stream_version
        """, "eventstore.snapshot"))
    }
    guard !statements.isEmpty else { return .committed(positions: []) }
    let results: [PostgresRows]
    do {
      results = try await batcher.run(statements, stream: write.events.first?.stream)
    } catch let e as PostgresError where e.sqlState == "QI001" {
      guard let (key, _) = write.idempotency else { throw e }
      switch try await answered(key, retention: idempotencyRetention) {
      case .answered(let response): return .replayed(response: response)
      case .mismatch: throw EventStoreError(kind: .idempotencyMismatch(key: key.key))
      case .new: throw e  // it expired in between: the caller retries
      }
    } catch let e as PostgresError where e.sqlState == "QV001" || e.isUniqueViolation {
      // Which append failed is not in the error: the first stream not at its expected version.
      for a in write.events {
        let actual = try await pool.withConnection { db in try await Self.version(of: a.stream, db) }
        if let expected = a.expectedVersion, actual != expected {
          throw EventStoreError(kind: .versionConflict(stream: a.stream, expected: expected, actual: actual))
        }
      }
      throw e
    }
    if !write.events.isEmpty { commits.signal() }
    let positions = try results[firstEvent..<(firstEvent + write.events.count)].map { try $0[0].decode("position", as: Int64.self) }
    return .committed(positions: positions)
  }

  /// What an idempotency key has answered, if it is known and not expired.
  package enum IdempotencyLookup: Sendable, Hashable {
    case new
    case answered([UInt8])
    /// The key answered a different request.
    case mismatch
  }

  /// Looks `key` up before a write does its work, so a retry is answered without redoing it.
  package func answered(_ key: IdempotencyKey, retention: Duration = defaultIdempotencyRetention) async throws -> IdempotencyLookup {
    let rows = try await pool.withConnection { db in
      try await db.query("""
        SELECT request_hash, response FROM quad_idempotency
        WHERE caller = \(key.caller) AND method = \(key.method) AND key = \(key.key)
          AND created_at >= clock_timestamp() - \(Self.milliseconds(retention)) * interval '1 millisecond'
        """, named: "eventstore.idempotency.lookup")
    }
    guard let row = rows.first else { return .new }
    guard try row.decode("request_hash", as: [UInt8].self) == key.requestHash else { return .mismatch }
    return .answered(try row.decode("response"))
  }

  /// Deletes idempotency keys older than `retention`; returns how many.
  @discardableResult
  package func expireIdempotencyKeys(olderThan retention: Duration = defaultIdempotencyRetention) async throws -> Int {
    try await pool.withConnection { db in
      try await db.query(
        "DELETE FROM quad_idempotency WHERE created_at < clock_timestamp() - \(Self.milliseconds(retention)) * interval '1 millisecond'",
        named: "eventstore.idempotency.expire"
      ).affectedRows
    }
  }

  /// An aggregate's newest snapshot and the events after it, in version order: what loading
  /// a long history costs only since the snapshot.
  package func load(_ stream: StreamID) async throws -> (snapshot: Snapshot?, events: [StoredEvent]) {
    let snapshot = try await pool.withConnection { db in
      try await db.query(
        "SELECT stream_version, state FROM quad_snapshots WHERE stream_type = \(stream.type) AND stream_id = \(stream.id)",
        named: "eventstore.snapshot.load"
      ).first.map { Snapshot(stream: stream, version: try $0.decode("stream_version"), state: try $0.decode("state")) }
    }
    var events: [StoredEvent] = []
    var from = (snapshot?.version ?? 0) + 1
    while true {
      let page = try await readStream(stream, fromVersion: from, limit: 1000)
      events += page
      guard page.count == 1000, let last = page.last else { break }
      from = last.version + 1
    }
    return (snapshot, events)
  }

  /// Whether a write taking a stream from version `old` to `new` crosses a multiple of
  /// `every`, the point at which to keep a snapshot.
  package static func snapshotDue(from old: Int64, to new: Int64, every: Int64) -> Bool {
    every > 0 && new / every > old / every
  }

  // MARK: Shared by the two write paths

  /// - Parameter newStreamFastPath: append to a new stream (`expectedVersion` 0) with a plain
  ///   INSERT, for callers that look the stream's real version up after a conflict (``write(_:idempotencyRetention:)``).
  static func appendStatement(_ event: NewEvent, to stream: StreamID, expectedVersion: Int64?, newStreamFastPath: Bool = false) throws -> SQL {
    guard event.payload.count + event.metadata.count <= maximumEventBytes else {
      throw EventStoreError(kind: .tooLarge(bytes: event.payload.count + event.metadata.count, limit: maximumEventBytes))
    }
    if newStreamFastPath && expectedVersion == 0 {
      // A new stream: its first version, with no lookup and no function call; a stream that
      // already exists fails the (stream_type, stream_id, stream_version) unique constraint,
      // which rolls the write back as a conflict. The transaction id is evaluated before the
      // position, as in `quad_append_event` (GapSafety.md).
      return """
        INSERT INTO quad_events (writer_xid, position, stream_type, stream_id, stream_version, event_type, payload, metadata)
        VALUES (pg_current_xact_id(), nextval('quad_event_position'), \(stream.type), \(stream.id), 1, \(event.type), \(event.payload), \(event.metadata))
        RETURNING position
        """
    }
    return """
      SELECT quad_append_event(\(stream.type), \(stream.id), \(expectedVersion), \(event.type), \(event.payload), \(event.metadata)) AS position
      """
  }

  /// The error to report for a failed append: a conflict naming the stream's real version when
  /// it was one (the function's DETAIL; a concurrent writer's unique violation means at least
  /// the next version exists), `error` itself otherwise.
  static func conflict(_ error: PostgresError, stream: StreamID, expectedVersion: Int64?) -> any Error {
    let expected = expectedVersion ?? -1
    if error.sqlState == "QV001", let actual = error.detail.flatMap({ Int64($0) }) {
      return EventStoreError(kind: .versionConflict(stream: stream, expected: expected, actual: actual))
    }
    if error.isUniqueViolation {
      return EventStoreError(kind: .versionConflict(stream: stream, expected: expected, actual: expected + 1))
    }
    return error
  }

  static func versionStatement(_ stream: StreamID) -> SQL {
    "SELECT COALESCE(max(stream_version), 0) AS v FROM quad_events WHERE stream_type = \(stream.type) AND stream_id = \(stream.id)"
  }

  static func version(of stream: StreamID, _ db: PostgresConnection) async throws -> Int64 {
    try await db.query(versionStatement(stream), named: "eventstore.version")[0].decode("v", as: Int64.self)
  }
}
