internal import EventStore
internal import Postgres
internal import Testing
internal import TestSupport

/// Writes in one round trip (pipeline mode), idempotency keys and snapshots, against a real
/// PostgreSQL server.
@Suite("Event store writes", .serialized)
struct EventWriteTests {
  static func insertStudent(_ id: String, _ name: String) -> (sql: SQL, name: String) {
    ("INSERT INTO students VALUES (\(id), \(name))", "test.insert")
  }

  static func write(_ id: String, expected: Int64?, key: IdempotencyKey? = nil, response: [UInt8] = []) -> EventWrite {
    var w = EventWrite()
    w.statements = [insertStudent(id, "Ada")]
    w.events = [EventWrite.Append(NewEvent(type: "campus.students.v1.StudentRegistered", payload: Array(id.utf8)), to: StreamID(type: "student", id: id), expectedVersion: expected)]
    if let key { w.idempotency = (key, response) }
    return w
  }

  static func count(_ pool: PostgresPool, _ table: String) async throws -> Int64 {
    try await pool.withConnection { db in
      try await db.query(SQL(unsafeRaw: "SELECT count(*) AS n FROM \(table)"), named: "test.count")[0].decode("n", as: Int64.self)
    }
  }

  @Test("A write commits state and events together in one round trip; a conflict or a failing statement leaves nothing")
  func atomicPipeline() async throws {
    try await EventStoreTests.withStore { store, pool in
      guard case .committed(let positions) = try await store.write(Self.write("s-1", expected: 0)) else {
        Issue.record("not committed")
        return
      }
      #expect(positions.count == 1)
      // A stale version: the state row of the same write must not stay.
      await #expect {
        _ = try await store.write(Self.write("s-2", expected: 3))
      } throws: { error in
        guard case .versionConflict(_, let expected, let actual)? = (error as? EventStoreError)?.kind else { return false }
        return expected == 3 && actual == 0
      }
      // A failing state statement (duplicate key): the events of the same write must not stay.
      await #expect(throws: PostgresError.self) { _ = try await store.write(Self.write("s-1", expected: 1)) }
      #expect(try await Self.count(pool, "students") == 1)
      #expect(try await Self.count(pool, "quad_events") == 1)
      // Two events of one write, to two streams, and a conflict on the second: neither stays.
      var two = EventWrite()
      two.events = [
        EventWrite.Append(NewEvent(type: "t", payload: []), to: StreamID(type: "student", id: "s-3"), expectedVersion: 0),
        EventWrite.Append(NewEvent(type: "t", payload: []), to: StreamID(type: "student", id: "s-1"), expectedVersion: 0),
      ]
      await #expect(throws: EventStoreError.self) { _ = try await store.write(two) }
      #expect(try await Self.count(pool, "quad_events") == 1)
      // The connection that saw the failures is as good as new.
      guard case .committed(let more) = try await store.write(Self.write("s-4", expected: 0)) else { return }
      #expect(more.count == 1 && more[0] > positions[0])
    }
  }

  @Test("An idempotency key answers a retry with the first response and writes nothing; the same key with another request is refused; keys are scoped to caller and method")
  func idempotency() async throws {
    try await EventStoreTests.withStore { store, pool in
      let key = IdempotencyKey(caller: "registrar", method: "/campus.students.v1.Students/RegisterStudent", key: "k-1", requestHash: [1, 2, 3])
      #expect(try await store.answered(key) == .new)
      guard case .committed = try await store.write(Self.write("s-1", expected: 0, key: key, response: [42])) else {
        Issue.record("not committed")
        return
      }
      #expect(try await store.answered(key) == .answered([42]))
      // The retry (even if it raced past the lookup) gets the first answer and writes nothing.
      #expect(try await store.write(Self.write("s-1b", expected: 0, key: key, response: [43])) == .replayed(response: [42]))
      #expect(try await Self.count(pool, "quad_events") == 1)
      #expect(try await Self.count(pool, "students") == 1)
      let other = IdempotencyKey(caller: key.caller, method: key.method, key: key.key, requestHash: [9])
      #expect(try await store.answered(other) == .mismatch)
      await #expect {
        _ = try await store.write(Self.write("s-1c", expected: 0, key: other))
      } throws: { error in
        if case .idempotencyMismatch? = (error as? EventStoreError)?.kind { return true }
        return false
      }
      // Another caller, or another method, with the same key is another key.
      let otherCaller = IdempotencyKey(caller: "someone-else", method: key.method, key: key.key, requestHash: [7])
      guard case .committed = try await store.write(Self.write("s-2", expected: 0, key: otherCaller, response: [1])) else {
        Issue.record("another caller's key was refused")
        return
      }
      // An expired key is forgotten, and its slot can answer again.
      #expect(try await store.answered(key, retention: .zero) == .new)
      guard case .committed = try await store.write(Self.write("s-3", expected: 0, key: key, response: [44]), idempotencyRetention: .zero) else {
        Issue.record("an expired key was not replaced")
        return
      }
      #expect(try await store.expireIdempotencyKeys(olderThan: .zero) == 2)
      #expect(try await Self.count(pool, "quad_idempotency") == 0)
    }
  }

  @Test("Concurrent writes with one idempotency key: exactly one commits, the others get its answer")
  func concurrentIdempotency() async throws {
    try await EventStoreTests.withStore(connections: 8) { store, pool in
      let key = IdempotencyKey(caller: "door-7", method: "/campus.scans.v1.Scans/RecordScan", key: "scan-99", requestHash: [5])
      let outcomes = try await withThrowingTaskGroup(of: WriteOutcome.self) { group in
        for i in 0..<8 {
          group.addTask { try await store.write(Self.write("s-\(i)", expected: 0, key: key, response: [UInt8(i)])) }
        }
        var all: [WriteOutcome] = []
        for try await o in group { all.append(o) }
        return all
      }
      let committed = outcomes.filter { if case .committed = $0 { return true } else { return false } }
      #expect(committed.count == 1)
      let answer = try #require(try await store.answered(key).answer)
      #expect(outcomes.allSatisfy { $0 == committed[0] || $0 == .replayed(response: answer) })
      #expect(try await Self.count(pool, "quad_events") == 1)
    }
  }

  @Test("Writes waiting together commit in one transaction; one that fails there leaves the others committed and gets its own error")
  func groupCommit() async throws {
    // One group in flight at a time: the writes beyond it queue and go together.
    try await EventStoreTests.withStore(connections: 4, writeConcurrency: 1) { store, pool in
      // Writes that all succeed commit together: some transactions hold several writes' events.
      try await withThrowingTaskGroup(of: Void.self) { group in
        for i in 0..<40 { group.addTask { _ = try await store.write(Self.write("together-\(i)", expected: 0)) } }
        try await group.waitForAll()
      }
      let shared = try await pool.withConnection { db in
        try await db.query("SELECT count(*) AS n FROM (SELECT writer_xid FROM quad_events GROUP BY writer_xid HAVING count(*) > 1) t", named: "test.groups")[0].decode("n", as: Int64.self)
      }
      #expect(shared > 0)
      #expect(try await Self.count(pool, "quad_events") == 40)
      // A group in which some fail (every fifth write, each way in turn).
      _ = try await store.write(Self.write("taken", expected: 0))
      let key = IdempotencyKey(caller: "door-7", method: "/campus.scans.v1.Scans/RecordScan", key: "scan-1", requestHash: [1])
      _ = try await store.write(Self.write("keyed", expected: 0, key: key, response: [42]))
      enum Kind: Sendable { case fresh, duplicateRow, staleVersion, knownKey }
      let kinds: [Kind] = (0..<60).map { i in i % 5 != 4 ? .fresh : [.duplicateRow, .staleVersion, .knownKey][(i / 5) % 3] }
      let outcomes = try await withThrowingTaskGroup(of: (Int, Result<WriteOutcome, any Error>).self) { group in
        for (i, kind) in kinds.enumerated() {
          group.addTask {
            let write: EventWrite
            switch kind {
            case .fresh: write = Self.write("g-\(i)", expected: 0)
            case .duplicateRow: write = Self.write("taken", expected: nil)
            case .staleVersion: write = Self.write("g-\(i)", expected: 7)
            case .knownKey: write = Self.write("other-\(i)", expected: 0, key: key, response: [42])
            }
            do { return (i, .success(try await store.write(write))) } catch { return (i, .failure(error)) }
          }
        }
        var all: [Int: Result<WriteOutcome, any Error>] = [:]
        for try await (i, o) in group { all[i] = o }
        return all
      }
      var positions: [Int64] = []
      for (i, kind) in kinds.enumerated() {
        let outcome = try #require(outcomes[i])
        switch (kind, outcome) {
        case (.fresh, .success(.committed(let p))): positions += p
        case (.duplicateRow, .failure(let e)): #expect((e as? PostgresError)?.isUniqueViolation == true, "write \(i): \(e)")
        case (.staleVersion, .failure(let e)):
          guard case .versionConflict(_, 7, 0)? = (e as? EventStoreError)?.kind else {
            Issue.record("write \(i): \(e)")
            continue
          }
        case (.knownKey, .success(.replayed(let response))): #expect(response == [42])
        default: Issue.record("write \(i) (\(kind)): \(outcome)")
        }
      }
      #expect(positions.count == 48 && Set(positions).count == 48)
      #expect(try await Self.count(pool, "students") == 42 + 48)
      #expect(try await Self.count(pool, "quad_events") == 42 + 48)
    }
  }

  @Test("An aggregate loads from its newest snapshot plus the events after it; an older snapshot never replaces a newer")
  func snapshots() async throws {
    try await EventStoreTests.withStore { store, _ in
      let stream = StreamID(type: "student", id: "s-1")
      var version: Int64 = 0
      for i in 1...25 {
        var w = EventWrite()
        w.events = [EventWrite.Append(NewEvent(type: "t", payload: [UInt8(i)]), to: stream, expectedVersion: version)]
        if EventStore.snapshotDue(from: version, to: version + 1, every: 10) {
          w.snapshots = [Snapshot(stream: stream, version: version + 1, state: [UInt8(version + 1)])]
        }
        _ = try await store.write(w)
        version += 1
      }
      let (snapshot, events) = try await store.load(stream)
      #expect(snapshot?.version == 20 && snapshot?.state == [20])
      #expect(events.map(\.version) == [21, 22, 23, 24, 25])
      var old = EventWrite()
      old.snapshots = [Snapshot(stream: stream, version: 10, state: [10])]
      _ = try await store.write(old)
      #expect(try await store.load(stream).snapshot?.version == 20)
      let (none, all) = try await store.load(StreamID(type: "student", id: "new"))
      #expect(none == nil && all.isEmpty)
    }
  }
}

extension EventStore.IdempotencyLookup {
  var answer: [UInt8]? {
    if case .answered(let a) = self { return a }
    return nil
  }
}
