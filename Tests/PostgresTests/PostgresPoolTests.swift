internal import Postgres
internal import Synchronization
internal import Testing
internal import TestSupport

/// The pool against a real server: bounded, fair, cancellable, self-healing.
@Suite("PostgreSQL pool", .serialized)
struct PostgresPoolTests {
  @Test("200 concurrent callers share 4 connections; the server never sees more")
  func bounded() async throws {
    let pg = try await TestPostgres.start()
    let pool = PostgresPool(conninfo: pg.conninfo, maximumConnections: 4)
    let peak = Peak()
    try await withThrowingTaskGroup(of: Int.self) { group in
      for i in 0..<200 {
        group.addTask {
          try await pool.withConnection { db in
            let rows = try await db.query("SELECT \(i)::int8 AS i, (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS n", named: "test.pool")
            let n = try rows[0].decode("n", as: Int.self)
            peak.raise(to: n)
            return try rows[0].decode("i", as: Int.self)
          }
        }
      }
      var sum = 0
      for try await v in group { sum += v }
      #expect(sum == 199 * 200 / 2)
    }
    #expect(peak.value.load(ordering: .relaxed) <= 4)
    #expect(pool.counts.open <= 4)
    #expect(pool.counts.leased == 0)
    pool.shutdown()
    await pg.stop()
  }

  @Test("A caller cancelled while waiting leaves; the pool goes on")
  func cancelledWaiter() async throws {
    let pg = try await TestPostgres.start()
    let pool = PostgresPool(conninfo: pg.conninfo, maximumConnections: 1)
    let holder = Task {
      try await pool.withConnection { db in try await db.query("SELECT pg_sleep(1)", named: "test.hold") }
    }
    try await Task.sleep(for: .milliseconds(300))
    let waiter = Task { try await pool.withConnection { _ in 1 } }
    try await Task.sleep(for: .milliseconds(100))
    #expect(pool.counts.waiting == 1)
    waiter.cancel()
    await #expect { _ = try await waiter.value } throws: { ($0 as? PostgresError)?.code == .cancelled }
    _ = try await holder.value
    #expect(try await pool.withConnection { _ in 2 } == 2)
    pool.shutdown()
    await pg.stop()
  }

  @Test("A connection the server killed is closed on return and replaced")
  func healing() async throws {
    let pg = try await TestPostgres.start()
    let pool = PostgresPool(conninfo: pg.conninfo, maximumConnections: 1)
    await #expect(throws: PostgresError.self) {
      try await pool.withConnection { db in
        _ = try await db.query("SELECT pg_terminate_backend(pg_backend_pid())", named: "test.suicide")
      }
    }
    let one = try await pool.withConnection { db in try await db.query("SELECT 1 AS one", named: "test.after")[0].decode("one", as: Int.self) }
    #expect(one == 1)
    pool.shutdown()
    await #expect { try await pool.withConnection { _ in 0 } } throws: { ($0 as? PostgresError)?.code == .connection }
    await pg.stop()
  }
}

/// The highest value seen, from many tasks.
final class Peak: Sendable {
  let value = Atomic<Int>(0)

  func raise(to v: Int) {
    var current = value.load(ordering: .relaxed)
    while v > current {
      let (exchanged, original) = value.compareExchange(expected: current, desired: v, ordering: .relaxed)
      if exchanged { return }
      current = original
    }
  }
}
