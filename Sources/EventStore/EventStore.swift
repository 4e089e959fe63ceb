internal import Synchronization
package import Postgres
package import QuadProtobuf

/// Where an event belongs: an aggregate's type and id (`student`, `s-1042`).
package struct StreamID: Sendable, Hashable, CustomStringConvertible {
  package let type: String
  package let id: String

  package init(type: String, id: String) {
    self.type = type
    self.id = id
  }

  package var description: String { "\(type)/\(id)" }
}

/// An event to append: its type (the protobuf message's full name), payload and metadata bytes.
package struct NewEvent: Sendable, Hashable {
  package let type: String
  package let payload: [UInt8]
  package let metadata: [UInt8]

  package init(type: String, payload: [UInt8], metadata: [UInt8] = []) {
    self.type = type
    self.payload = payload
    self.metadata = metadata
  }

  /// A generated domain event: its full protobuf name as the type, its bytes as the payload.
  package init<Event: DomainEvent>(_ event: Event, metadata: [UInt8] = []) {
    self.init(type: Event.protoMessageName, payload: event.serializedBytes(), metadata: metadata)
  }
}

/// An event as the log holds it.
package struct StoredEvent: Sendable, Hashable {
  package let position: Int64
  package let stream: StreamID
  package let version: Int64
  package let type: String
  package let payload: [UInt8]
  package let metadata: [UInt8]
  /// When the write appended it, in microseconds since 1970 (`clock_timestamp()`).
  package let recordedAtMicroseconds: Int64
}

/// Which events a reader wants: empty lists match everything.
package struct EventFilter: Sendable, Hashable {
  package var eventTypes: Set<String>
  package var streamTypes: Set<String>

  package init(eventTypes: Set<String> = [], streamTypes: Set<String> = []) {
    self.eventTypes = eventTypes
    self.streamTypes = streamTypes
  }

  package static let all = EventFilter()

  package var matchesAll: Bool { eventTypes.isEmpty && streamTypes.isEmpty }

  package func matches(_ event: StoredEvent) -> Bool {
    (eventTypes.isEmpty || eventTypes.contains(event.type)) && (streamTypes.isEmpty || streamTypes.contains(event.stream.type))
  }
}

/// Why the event store refused a write; a service maps it to a gRPC status (a version conflict
/// is ABORTED).
package struct EventStoreError: Error, CustomStringConvertible, Sendable {
  package enum Kind: Sendable, Hashable {
    /// The stream is not at the version the writer expected (another write came first).
    case versionConflict(stream: StreamID, expected: Int64, actual: Int64)
    /// The event's payload and metadata are larger than one event may be.
    case tooLarge(bytes: Int, limit: Int)
    /// The idempotency key already answered a different request.
    case idempotencyMismatch(key: String)
  }

  package let kind: Kind

  package var description: String {
    switch kind {
    case .versionConflict(let stream, let expected, let actual):
      return "stream \(stream) is at version \(actual), not the expected \(expected)"
    case .tooLarge(let bytes, let limit):
      return "the event is \(bytes) bytes, more than the \(limit) an event may be"
    case .idempotencyMismatch(let key):
      return "idempotency key \(key) was already used for a different request"
    }
  }
}

/// The event log, which is also the outbox: state changes and their events commit together, and
/// readers see committed events in position order without ever skipping one (GapSafety.md).
///
/// ```swift
/// try await store.transaction { tx in
///   _ = try await tx.connection.query("UPDATE students SET name = \(name) WHERE id = \(id)", named: "students.rename")
///   try await tx.append(NewEvent(type: "campus.students.v1.StudentRenamed", payload: bytes), to: stream, expectedVersion: v)
/// }
/// ```
package struct EventStore: Sendable {
  package let pool: PostgresPool
  /// Told after every transaction that appended an event commits (the relay listens, so
  /// subscribers in this process see a write at once).
  package let commits = CommitSignal()

  /// The largest payload plus metadata one event may carry: an envelope must fit in a gRPC
  /// message under the 4 MiB every client accepts by default.
  package static let maximumEventBytes = 4 * 1024 * 1024 - 64 * 1024

  /// Concurrent ``write(_:idempotencyRetention:)``s share round trips through it.
  let batcher: WriteBatcher

  /// Applied to every event the store reads (``EventUpcasters``).
  package let upcasters: EventUpcasters

  /// - Parameters:
  ///   - writeConcurrency: groups of writes in flight at once, each one transaction on one
  ///     connection (default: 4, at most three quarters of the pool, the rest left to readers).
  ///     Writes beyond it wait for a group and commit together, so fewer groups mean larger ones:
  ///     measured here (bench-outbox-server, h2load, 32 clients), 60 groups in flight (the old
  ///     default of three quarters of an 80-connection pool, nearly every write its own
  ///     transaction) ran 4.4k–5.0k writes/s, 8 ran 7.5k, 4 ran 7.6k–9.0k, 2 ran 8.6k–9.5k; 4
  ///     leaves room for a group waiting on a row lock.
  ///   - upcasters: how superseded event types are read (as their successors).
  package init(pool: PostgresPool, writeConcurrency: Int? = nil, upcasters: EventUpcasters = .none) {
    self.pool = pool
    self.upcasters = upcasters
    batcher = WriteBatcher(pool: pool, concurrency: writeConcurrency ?? min(4, max(1, pool.maximumConnections * 3 / 4)))
  }

  /// Creates or updates the log's tables (under the migration lock).
  package func migrate() async throws {
    try await pool.withConnection { db in _ = try await Migrator.migrate(EventStoreSchema.migrations, on: db) }
  }

  /// The log's identity (part of every resume token).
  package func identity() async throws -> String {
    try await pool.withConnection { db in
      try await db.query("SELECT identity FROM quad_event_log", named: "eventstore.identity")[0].decode("identity", as: String.self)
    }
  }

  /// Runs `body` in one transaction: every event it appends commits with its state changes, or
  /// none does.
  package func transaction<R: Sendable>(_ body: (EventTransaction) async throws -> R) async throws -> R {
    let appended = AppendCount()
    let result = try await pool.withConnection { db in
      try await db.transaction { tx in try await body(EventTransaction(connection: tx, appended: appended)) }
    }
    if appended.value > 0 { commits.signal() }
    return result
  }
}

/// The transaction a write runs in: its state changes go through ``connection``, its events
/// through ``append(_:to:expectedVersion:)`` (the only way to add to the log).
package struct EventTransaction: Sendable {
  /// For the write's state changes, in the same transaction.
  package let connection: PostgresConnection
  let appended: AppendCount

  /// Appends `event` as version `expectedVersion + 1` of `stream`, in one round trip.
  ///
  /// - Parameter expectedVersion: the stream's current version (0 for a new stream; `nil`
  ///   appends after whatever is there).
  /// - Returns: the event's position in the log.
  /// - Throws: ``EventStoreError`` `.versionConflict` when the stream is elsewhere, `.tooLarge`
  ///   for an oversized event (the transaction is then rolled back by
  ///   ``EventStore/transaction(_:)``).
  @discardableResult
  package func append(_ event: NewEvent, to stream: StreamID, expectedVersion: Int64?) async throws -> Int64 {
    let statement = try EventStore.appendStatement(event, to: stream, expectedVersion: expectedVersion)
    do {
      let rows = try await connection.query(statement, named: "eventstore.append")
      appended.increment()
      return try rows[0].decode("position", as: Int64.self)
    } catch let e as PostgresError {
      throw EventStore.conflict(e, stream: stream, expectedVersion: expectedVersion)
    }
  }
}

/// How many events a transaction appended (so only writes that appended wake the relay).
final class AppendCount: Sendable {
  private let count = Atomic<Int>(0)
  func increment() { count.add(1, ordering: .relaxed) }
  var value: Int { count.load(ordering: .relaxed) }
}

/// Tells observers that a write with events committed; cheap enough to call on every commit.
package final class CommitSignal: Sendable {
  private let observers = Mutex<[@Sendable () -> Void]>([])

  /// Calls `observer` after every commit from now on.
  package func observe(_ observer: @escaping @Sendable () -> Void) {
    observers.withLock { $0.append(observer) }
  }

  func signal() {
    for o in observers.withLock({ $0 }) { o() }
  }
}
