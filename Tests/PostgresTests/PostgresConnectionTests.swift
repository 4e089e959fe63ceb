internal import Postgres
internal import Testing
internal import TestSupport

/// The libpq layer against a real PostgreSQL server started for the suite.
@Suite("PostgreSQL connection", .serialized)
struct PostgresConnectionTests {
  /// Runs `body` with a fresh cluster and one connection to it.
  static func withDatabase(_ body: (PostgresConnection, TestPostgres) async throws -> Void) async throws {
    let pg = try await TestPostgres.start()
    do {
      let db = try await PostgresConnection.connect(pg.conninfo)
      try await body(db, pg)
      await db.close()
    } catch {
      await pg.stop()
      throw error
    }
    await pg.stop()
  }

  @Test("Values of every supported type travel as binds and come back equal; NULL is nil")
  func roundTrip() async throws {
    try await Self.withDatabase { db, _ in
      let bytes: [UInt8] = [0, 1, 2, 0xFF, 0x7F]
      let text = "Ünïcode ✓ \"quoted\" 'single' \\ back"
      let none: String? = nil
      let rows = try await db.query(
        "SELECT \(Int64.max)::int8 AS big, \(Int32.min)::int4 AS small, \(text)::text AS t, \(true)::bool AS yes, \(2.5e-300)::float8 AS d, \(bytes)::bytea AS b, \(none)::text AS n, \(Int(-7))::int8 AS i",
        named: "test.roundTrip")
      #expect(rows.count == 1)
      let row = rows[0]
      #expect(try row.decode("big", as: Int64.self) == Int64.max)
      #expect(try row.decode("small", as: Int32.self) == Int32.min)
      #expect(try row.decode("t", as: String.self) == text)
      #expect(try row.decode("yes", as: Bool.self))
      #expect(try row.decode("d", as: Double.self) == 2.5e-300)
      #expect(try row.decode("b", as: [UInt8].self) == bytes)
      #expect(try row.decode("n", as: String?.self) == nil)
      #expect(try row.decode("i", as: Int.self) == -7)
      #expect(throws: PostgresError.self) { try row.decode("n", as: String.self) }
      #expect(throws: PostgresError.self) { try row.decode("nope", as: String.self) }
    }
  }

  @Test("SQL-looking strings are stored verbatim, never executed")
  func injection() async throws {
    try await Self.withDatabase { db, _ in
      _ = try await db.query("CREATE TABLE notes (id int8 PRIMARY KEY, body text NOT NULL)", named: "test.create")
      let hostile = ["'); DROP TABLE notes; --", "1; DELETE FROM notes", "$1", "\\x00", "' OR '1'='1", "; COMMIT; --"]
      for (i, h) in hostile.enumerated() {
        let inserted = try await db.query("INSERT INTO notes (id, body) VALUES (\(i), \(h))", named: "test.insert")
        #expect(inserted.affectedRows == 1)
      }
      let rows = try await db.query("SELECT body FROM notes ORDER BY id", named: "test.select")
      #expect(try rows.map { try $0.decode("body", as: String.self) } == hostile)
      // A NUL cannot be stored in text: refused before it reaches the server, precisely.
      await #expect { _ = try await db.query("SELECT \("a\u{0}b")::text", named: "test.nul") } throws: {
        ($0 as? PostgresError)?.sqlState == "22021"
      }
    }
  }

  @Test("Server errors carry SQLSTATE and the query's name; the connection stays usable")
  func errors() async throws {
    try await Self.withDatabase { db, _ in
      await #expect { _ = try await db.query("SELEKT 1", named: "test.typo") } throws: {
        let e = $0 as? PostgresError
        return e?.code == .server && e?.sqlState == "42601" && e?.queryName == "test.typo" && "\($0)".contains("test.typo")
      }
      _ = try await db.query("CREATE TABLE u (k text PRIMARY KEY)", named: "test.create")
      _ = try await db.query("INSERT INTO u VALUES (\("a"))", named: "test.insert")
      await #expect { _ = try await db.query("INSERT INTO u VALUES (\("a"))", named: "test.insert") } throws: {
        ($0 as? PostgresError)?.isUniqueViolation == true
      }
      let one = try await db.query("SELECT 1 AS one", named: "test.after")
      #expect(try one[0].decode("one", as: Int.self) == 1)
    }
  }

  @Test("A transaction commits both writes or, when its body throws, neither")
  func transactions() async throws {
    struct Refused: Error {}
    try await Self.withDatabase { db, _ in
      _ = try await db.query("CREATE TABLE state (id int8 PRIMARY KEY)", named: "test.create")
      _ = try await db.query("CREATE TABLE events (id int8 PRIMARY KEY, state_id int8 NOT NULL)", named: "test.create")
      try await db.transaction { tx in
        _ = try await tx.query("INSERT INTO state VALUES (\(1))", named: "test.state")
        _ = try await tx.query("INSERT INTO events VALUES (\(1), \(1))", named: "test.event")
      }
      await #expect(throws: Refused.self) {
        try await db.transaction { tx in
          _ = try await tx.query("INSERT INTO state VALUES (\(2))", named: "test.state")
          throw Refused()
        }
      }
      await #expect(throws: PostgresError.self) {
        try await db.transaction { tx in
          _ = try await tx.query("INSERT INTO state VALUES (\(3))", named: "test.state")
          _ = try await tx.query("INSERT INTO events VALUES (\(1), \(3))", named: "test.event")  // duplicate key
        }
      }
      let states = try await db.query("SELECT id FROM state ORDER BY id", named: "test.states")
      let events = try await db.query("SELECT count(*) AS n FROM events", named: "test.events")
      #expect(try states.map { try $0.decode("id", as: Int.self) } == [1])
      #expect(try events[0].decode("n", as: Int.self) == 1)
    }
  }

  @Test("A savepoint undoes only its own work when it throws; nested savepoints; the transaction commits the rest")
  func savepoints() async throws {
    struct Refused: Error {}
    try await Self.withDatabase { db, _ in
      _ = try await db.query("CREATE TABLE rows (id int8 PRIMARY KEY)", named: "test.create")
      try await db.transaction { tx in
        _ = try await tx.query("INSERT INTO rows VALUES (\(1))", named: "test.insert")
        // A failing statement inside a savepoint: the transaction is not aborted.
        await #expect(throws: PostgresError.self) {
          try await tx.savepoint { sp in _ = try await sp.query("INSERT INTO rows VALUES (\(1))", named: "test.duplicate") }
        }
        try await tx.savepoint { sp in
          _ = try await sp.query("INSERT INTO rows VALUES (\(2))", named: "test.insert")
          await #expect(throws: Refused.self) {
            try await sp.savepoint { inner in
              _ = try await inner.query("INSERT INTO rows VALUES (\(3))", named: "test.insert")
              throw Refused()
            }
          }
        }
        _ = try await tx.query("INSERT INTO rows VALUES (\(4))", named: "test.insert")
      }
      let ids = try await db.query("SELECT id FROM rows ORDER BY id", named: "test.ids")
      #expect(try ids.map { try $0.decode("id", as: Int.self) } == [1, 2, 4])
    }
  }

  @Test("TLS through libpq's own settings: verify-full with the right CA connects encrypted; a foreign CA or a wrong host name is refused")
  func tls() async throws {
    let certificates = try await TestCertificates.make()
    let pg = try await TestPostgres.start(tls: certificates)
    let port = try #require(pg.tlsPort)
    let url = "postgresql://postgres@localhost:\(port)/postgres?sslmode=verify-full&sslrootcert=\(certificates.caCertificate)"
    let db = try await PostgresConnection.connect(url)
    let ssl = try await db.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", named: "test.ssl")
    #expect(try ssl[0].decode("ssl", as: Bool.self))
    await db.close()
    for refused in [
      "postgresql://postgres@localhost:\(port)/postgres?sslmode=verify-full&sslrootcert=\(certificates.strangerCA)",
      "host=elsewhere.campus hostaddr=127.0.0.1 port=\(port) user=postgres dbname=postgres sslmode=verify-full sslrootcert=\(certificates.caCertificate)",
    ] {
      do {
        _ = try await PostgresConnection.connect(refused)
        Issue.record("connected with \(refused)")
      } catch let e as PostgresError {
        #expect(e.code == .connection, "\(e)")
        #expect(e.message.contains("certificate") || e.message.contains("server name") || e.message.contains("does not match"), "\(e)")
      }
    }
    await pg.stop()
  }

  @Test("Cancelling the task cancels the statement on the server")
  func cancellation() async throws {
    try await Self.withDatabase { db, _ in
      try await Self.expectCancellation(db)
      let one = try await db.query("SELECT 1 AS one", named: "test.after")
      #expect(try one[0].decode("one", as: Int.self) == 1)
    }
  }

  @Test("A cancel request never stops the statement after the one it was for: the next statement starts once the server has the request")
  func cancelThenNext() async throws {
    try await Self.withDatabase { db, _ in
      for _ in 0..<40 {
        db.cancel()  // nothing runs: the server ignores the request when it comes
        let rows = try await db.query("SELECT pg_sleep(0.01), 1 AS one", named: "test.next")
        #expect(try rows[0].decode("one", as: Int.self) == 1)
      }
      try await Self.expectCancellation(db)
    }
  }

  /// Starts a 30 s statement, cancels its task, and expects `.cancelled` within seconds.
  static func expectCancellation(_ db: PostgresConnection) async throws {
    let start = ContinuousClock.now
    let sleeper = Task { try await db.query("SELECT pg_sleep(\(30.0))", named: "test.sleep") }
    try await Task.sleep(for: .milliseconds(300))
    sleeper.cancel()
    await #expect { _ = try await sleeper.value } throws: { ($0 as? PostgresError)?.code == .cancelled }
    #expect(ContinuousClock.now - start < .seconds(10))
  }

  @Test("A bad address or a stopped server is a connection error naming the cause")
  func connectionErrors() async throws {
    await #expect { _ = try await PostgresConnection.connect("host=/nonexistent/socket user=postgres connect_timeout=2") } throws: {
      ($0 as? PostgresError)?.code == .connection && "\($0)".contains("/nonexistent/socket")
    }
    let pg = try await TestPostgres.start()
    let db = try await PostgresConnection.connect(pg.conninfo)
    await pg.stop()
    await #expect { _ = try await db.query("SELECT 1", named: "test.gone") } throws: {
      let code = ($0 as? PostgresError)?.code
      return code == .connectionLost || code == .server
    }
    #expect(!db.isHealthy)
  }
}

extension PostgresConnectionTests {
  @Test("A statement past its deadline is cancelled on the server: DEADLINE EXCEEDED, connection usable")
  func deadline() async throws {
    try await Self.withDatabase { db, _ in
      let start = ContinuousClock.now
      await #expect {
        _ = try await db.query("SELECT pg_sleep(20)", named: "test.slow", deadline: .now + .milliseconds(300))
      } throws: { ($0 as? PostgresError)?.code == .deadlineExceeded && ($0 as? PostgresError)?.queryName == "test.slow" }
      #expect(ContinuousClock.now - start < .seconds(10))
      let fast = try await db.query("SELECT 1 AS one", named: "test.fast", deadline: .now + .seconds(10))
      #expect(try fast[0].decode("one", as: Int.self) == 1)
      await #expect {
        _ = try await db.query("SELECT 1", named: "test.late", deadline: .now - .seconds(1))
      } throws: { ($0 as? PostgresError)?.code == .deadlineExceeded }
    }
  }
}
