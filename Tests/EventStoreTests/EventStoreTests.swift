internal import EventStore
internal import Postgres
internal import Synchronization
internal import Testing
internal import TestSupport

/// The event log = the outbox, against a real PostgreSQL server.
@Suite("Event store", .serialized)
struct EventStoreTests {
  static func withStore(connections: Int = 4, writeConcurrency: Int? = nil, _ body: (EventStore, PostgresPool) async throws -> Void) async throws {
    let pg = try await TestPostgres.start()
    let pool = PostgresPool(conninfo: pg.conninfo, maximumConnections: connections)
    let store = EventStore(pool: pool, writeConcurrency: writeConcurrency)
    do {
      try await store.migrate()
      try await pool.withConnection { db in
        _ = try await db.query("CREATE TABLE students (id text PRIMARY KEY, name text NOT NULL)", named: "test.state")
      }
      try await body(store, pool)
    } catch {
      pool.shutdown()
      await pg.stop()
      throw error
    }
    pool.shutdown()
    await pg.stop()
  }

  struct Refused: Error {}

  @Test("A failed write leaves neither state nor event; a committed one leaves both")
  func atomic() async throws {
    try await Self.withStore { store, pool in
      let stream = StreamID(type: "student", id: "s-1")
      try await store.transaction { tx in
        _ = try await tx.connection.query("INSERT INTO students VALUES (\("s-1"), \("Ada"))", named: "test.insert")
        try await tx.append(NewEvent(type: "campus.students.v1.StudentRegistered", payload: [1, 2, 3]), to: stream, expectedVersion: 0)
      }
      await #expect(throws: Refused.self) {
        try await store.transaction { tx in
          _ = try await tx.connection.query("INSERT INTO students VALUES (\("s-2"), \("Bob"))", named: "test.insert")
          try await tx.append(NewEvent(type: "campus.students.v1.StudentRegistered", payload: [4]), to: StreamID(type: "student", id: "s-2"), expectedVersion: 0)
          throw Refused()
        }
      }
      let (events, through) = try await store.readCommitted(after: 0)
      #expect(events.map(\.stream) == [stream])
      #expect(events.first?.payload == [1, 2, 3])
      #expect(through >= events.last!.position)
      let names = try await pool.withConnection { db in try await db.query("SELECT id FROM students", named: "test.ids") }
      #expect(try names.map { try $0.decode("id", as: String.self) } == ["s-1"])
      #expect(try await store.identity().count == 36)
    }
  }

  @Test("A stale or skipping expected version is a conflict naming the stream's real version")
  func conflicts() async throws {
    try await Self.withStore { store, _ in
      let stream = StreamID(type: "student", id: "'; DROP TABLE quad_events; --")
      let e = NewEvent(type: "x'); DELETE FROM quad_events; --", payload: [])
      _ = try await store.transaction { tx in try await tx.append(e, to: stream, expectedVersion: 0) }
      _ = try await store.transaction { tx in try await tx.append(e, to: stream, expectedVersion: 1) }
      for stale in [Int64(0), 1, 5] {
        await #expect {
          try await store.transaction { tx in try await tx.append(e, to: stream, expectedVersion: stale) }
        } throws: { error in
          guard case .versionConflict(let s, let expected, let actual)? = (error as? EventStoreError)?.kind else { return false }
          return s == stream && expected == stale && actual == 2
        }
      }
      let (events, _) = try await store.readCommitted(after: 0)
      #expect(events.map(\.version) == [1, 2])
      #expect(events.allSatisfy { $0.stream == stream && $0.type == e.type })
      // The stream's history, by version, from any version on.
      #expect(try await store.readStream(stream).map(\.version) == [1, 2])
      #expect(try await store.readStream(stream, fromVersion: 2).map(\.position) == [events[1].position])
      #expect(try await store.readStream(StreamID(type: "student", id: "nobody")).isEmpty)
    }
  }

  @Test("Gap safety: 16 concurrent writers with out-of-order commits and aborts; the reader sees every committed event once, in order, nothing else")
  func gapSafety() async throws {
    try await Self.withStore(connections: 18) { store, pool in
      let writers = 16
      let perWriter = 120
      let shared = Shared()
      // The reader follows the log while the writers run.
      async let seen: [Int64] = {
        var positions: [Int64] = []
        var after: Int64 = 0
        var finalPass = false
        while true {
          let (events, through) = try await store.readCommitted(after: after, limit: 500)
          positions += events.map(\.position)
          after = through
          if events.isEmpty {
            if finalPass { return positions }
            if shared.done.load(ordering: .acquiring) { finalPass = true }
            try await Task.sleep(for: .milliseconds(2))
          }
        }
      }()
      // A naive reader ("position > last seen", no fence) beside it, to show what the fence is for.
      async let naive: Int = {
        var seen: Set<Int64> = []
        var last: Int64 = 0
        var finalPass = false
        while true {
          // Reads on once the writers are done: what it still misses, it skipped for good.
          let wasDone = finalPass
          if shared.done.load(ordering: .acquiring) { finalPass = true }
          let rows = try await pool.withConnection { db in
            try await db.query("SELECT position FROM quad_events WHERE position > \(last) ORDER BY position LIMIT 500", named: "test.naive")
          }
          for r in rows {
            let p = try r.decode("position", as: Int64.self)
            seen.insert(p)
            last = max(last, p)
          }
          if wasDone && rows.count < 500 { break }
          try await Task.sleep(for: .milliseconds(1))
        }
        return seen.count
      }()
      try await withThrowingTaskGroup(of: Void.self) { group in
        for w in 0..<writers {
          group.addTask {
            let stream = StreamID(type: "card", id: "w\(w)")
            var version: Int64 = 0
            for i in 0..<perWriter {
              let abort = i % 10 == 7
              do {
                let position = try await store.transaction { tx in
                  let p = try await tx.append(NewEvent(type: "campus.scans.v1.CardScanned", payload: [UInt8(w), UInt8(i & 255)]), to: stream, expectedVersion: version)
                  // Hold some transactions open so later positions commit first.
                  if (i + w) % 4 == 0 { _ = try await tx.connection.query("SELECT pg_sleep(0.003)", named: "test.hold") }
                  if abort { throw Refused() }
                  return p
                }
                version += 1
                _ = shared.committed.withLock { $0.insert(position) }
              } catch is Refused {}
            }
          }
        }
        try await group.waitForAll()
      }
      shared.done.store(true, ordering: .releasing)
      let positions = try await seen
      let expected = shared.committed.withLock { $0 }
      #expect(positions.count == expected.count, "read \(positions.count) of \(expected.count) committed events")
      #expect(Set(positions) == expected, "missing \(expected.subtracting(positions).count), unexpected \(Set(positions).subtracting(expected).count)")
      #expect(zip(positions, positions.dropFirst()).allSatisfy { $0 < $1 }, "positions strictly increasing")
      #expect(expected.count == writers * (perWriter - perWriter / 10))
      let naiveSeen = try await naive
      print("gap safety: \(expected.count) committed events of \(writers) writers read in order, none missing, none twice; \(writers * perWriter / 10) aborted; a naive reader beside it missed \(expected.count - naiveSeen)")
    }
  }
}

/// What the gap-safety test's writers and reader share.
final class Shared: Sendable {
  let committed = Mutex<Set<Int64>>([])
  let done = Atomic<Bool>(false)
}

extension EventStoreTests {
  @Test("A writer that stalls inside its transaction holds readers back only until idle_in_transaction_session_timeout ends it")
  func stalledWriter() async throws {
    let pg = try await TestPostgres.start()
    let pool = PostgresPool(conninfo: pg.conninfo, maximumConnections: 4, sessionSettings: [("idle_in_transaction_session_timeout", "1s")])
    let store = EventStore(pool: pool)
    try await store.migrate()
    _ = try await store.transaction { tx in
      try await tx.append(NewEvent(type: "t", payload: []), to: StreamID(type: "s", id: "ok"), expectedVersion: 0)
    }
    // Takes a position, then sits idle in its transaction.
    let stuck = Task {
      try await store.transaction { tx in
        try await tx.append(NewEvent(type: "t", payload: []), to: StreamID(type: "s", id: "stuck"), expectedVersion: 0)
        try await Task.sleep(for: .seconds(5))
        _ = try await tx.connection.query("SELECT 1", named: "test.after-stall")
      }
    }
    try await Task.sleep(for: .milliseconds(200))
    let start = ContinuousClock.now
    let (events, _) = try await store.readCommitted(after: 0, deadline: .now + .seconds(30))
    let waited = ContinuousClock.now - start
    #expect(events.map(\.stream.id) == ["ok"], "the stalled writer's event never appears")
    // Without the timeout the fence would not settle before the 30 s deadline (deadline exceeded).
    await #expect(throws: PostgresError.self) { try await stuck.value }
    print("stalled writer: the reader waited \(waited) for idle_in_transaction_session_timeout (1 s)")
    pool.shutdown()
    await pg.stop()
  }
}
