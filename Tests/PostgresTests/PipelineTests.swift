internal import Postgres
internal import Testing
internal import TestSupport

/// Transactions sent together in one round trip (libpq pipeline mode): the first time a
/// connection sees a statement it prepares it on its own thread; after that the pipeline is sent
/// from the caller's thread and read on the socket poller. Both paths are checked here.
@Suite("PostgreSQL pipelines", .serialized)
struct PipelineTests {
  static func insert(_ id: Int) -> (sql: SQL, name: String) {
    ("INSERT INTO pipelined (id) VALUES (\(Int64(id)))", "test.insert")
  }

  @Test("Each pipelined transaction commits or fails on its own, alike on the first (preparing) call and on later (non-blocking) ones")
  func eachOnItsOwn() async throws {
    try await PostgresConnectionTests.withDatabase { db, _ in
      _ = try await db.query("CREATE TABLE pipelined (id int8 PRIMARY KEY)", named: "test.schema")
      for base in [0, 100, 200] {
        let outcomes = try await db.pipelineTransactions([
          [Self.insert(base + 1)],
          [Self.insert(base + 2), Self.insert(base + 1)],  // a duplicate: this whole transaction rolls back
          [Self.insert(base + 3), ("SELECT count(*) AS n FROM pipelined WHERE id > \(Int64(base))", "test.count")],
        ])
        #expect(outcomes.count == 3)
        #expect((try? outcomes[0].get()) != nil)
        #expect(throws: PostgresError.self) { try outcomes[1].get() }
        if case .failure(let e) = outcomes[1] {
          #expect(e.code == .server && e.isUniqueViolation && e.queryName == "test.insert")
        }
        let third = try outcomes[2].get()
        #expect(try third[1][0].decode("n", as: Int64.self) == 2)
      }
      let ids = try await db.query("SELECT id FROM pipelined ORDER BY id", named: "test.ids").map { try $0.decode("id", as: Int64.self) }
      #expect(ids == [1, 3, 101, 103, 201, 203])
      #expect(db.isHealthy)
    }
  }

  @Test("Many pipelines at once on a pool, with rows large enough to need several writes and several reads: every one is answered")
  func concurrent() async throws {
    try await TestPostgres.with { pg in
      let pool = PostgresPool(conninfo: pg.conninfo, maximumConnections: 4)
      defer { pool.shutdown() }
      try await pool.withConnection { db in
        _ = try await db.query("CREATE TABLE blobs (id int8 PRIMARY KEY, body bytea NOT NULL)", named: "test.schema")
      }
      let body = [UInt8](repeating: 0xA5, count: 1_000_000)
      try await withThrowingTaskGroup(of: Void.self) { group in
        for task in 0..<16 {
          group.addTask {
            for round in 0..<5 {
              let id = Int64(task * 100 + round)
              let outcomes = try await pool.withConnection { db in
                try await db.pipelineTransactions([[("INSERT INTO blobs (id, body) VALUES (\(id), \(body))", "test.blob")]])
              }
              _ = try outcomes[0].get()
              // A 2 MB answer (the bytea in hex), read back: it arrives in many pieces.
              let back = try await pool.withConnection { db in
                try await db.query("SELECT body FROM blobs WHERE id = \(id)", named: "test.blob.read")
              }
              #expect(try back[0].decode("body", as: [UInt8].self) == body)
            }
          }
        }
        try await group.waitForAll()
      }
      let n = try await pool.withConnection { db in
        try await db.query("SELECT count(*) AS n, min(length(body)) AS shortest FROM blobs", named: "test.count")
      }
      #expect(try n[0].decode("n", as: Int64.self) == 80)
      #expect(try n[0].decode("shortest", as: Int64.self) == 1_000_000)
    }
  }

  @Test("A connection that breaks mid-pipeline: what committed is reported committed, what was not read back is commit-outcome-unknown, never rolled back")
  func broken() async throws {
    try await PostgresConnectionTests.withDatabase { db, pg in
      _ = try await db.query("CREATE TABLE pipelined (id int8 PRIMARY KEY)", named: "test.schema")
      func kill(_ yes: Bool) -> (sql: SQL, name: String) {
        ("SELECT CASE WHEN \(yes) THEN pg_terminate_backend(pg_backend_pid()) ELSE true END AS ok", "test.kill")
      }
      // Prepares every statement, so the next call takes the non-blocking path.
      _ = try await db.pipelineTransactions([[Self.insert(1)], [kill(false)], [Self.insert(2)]])
      let outcomes = try await db.pipelineTransactions([[Self.insert(10)], [kill(true)], [Self.insert(11)]])
      #expect(outcomes.count == 3)
      #expect((try? outcomes[0].get()) != nil)
      #expect(throws: PostgresError.self) { try outcomes[1].get() }
      if case .failure(let e) = outcomes[2] {
        #expect(e.code == .commitOutcomeUnknown)
      } else {
        Issue.record("the transaction after the break was reported \(outcomes[2])")
      }
      #expect(!db.isHealthy)
      let check = try await PostgresConnection.connect(pg.conninfo)
      let ids = try await check.query("SELECT id FROM pipelined ORDER BY id", named: "test.ids").map { try $0.decode("id", as: Int64.self) }
      #expect(ids == [1, 2, 10])
      await check.close()
    }
  }
}

extension PipelineTests {
  @Test("A prepared statement runs without blocking: its rows, its errors, and cancelling the task cancels it on the server")
  func preparedQueries() async throws {
    try await PostgresConnectionTests.withDatabase { db, _ in
      for n in [Int64(1), 2, 3] {
        let rows = try await db.query("SELECT \(n) * 2 AS twice", named: "test.twice")
        #expect(try rows[0].decode("twice", as: Int64.self) == n * 2)
      }
      for _ in 0..<2 {
        await #expect { _ = try await db.query("SELECT 1 / \(Int64(0)) AS boom", named: "test.boom") } throws: {
          ($0 as? PostgresError)?.sqlState == "22012" && ($0 as? PostgresError)?.queryName == "test.boom"
        }
      }
      _ = try await db.query("SELECT pg_sleep(\(0.0))", named: "test.sleep")  // prepares it
      try await PostgresConnectionTests.expectCancellation(db)
      let after = try await db.query("SELECT \(Int64(5)) * 2 AS twice", named: "test.twice")
      #expect(try after[0].decode("twice", as: Int64.self) == 10)
      #expect(db.isHealthy)
    }
  }
}
