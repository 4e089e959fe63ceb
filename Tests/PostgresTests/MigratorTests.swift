internal import Postgres
internal import Testing
internal import TestSupport

/// Schema migrations: once each, all or nothing, safe when instances start together.
@Suite("Migrations", .serialized)
struct MigratorTests {
  static let v1 = Migration(version: 1, name: "students", sql: """
    CREATE TABLE students (id text PRIMARY KEY, name text NOT NULL);
    CREATE INDEX students_name ON students (name);
    """)
  static let v2 = Migration(version: 2, name: "students.email", sql: "ALTER TABLE students ADD COLUMN email text;")

  @Test("Eight instances migrating at once apply each migration once; a second run applies nothing")
  func concurrent() async throws {
    let pg = try await TestPostgres.start()
    let results = try await withThrowingTaskGroup(of: [Int64].self) { group in
      for _ in 0..<8 {
        group.addTask {
          let db = try await PostgresConnection.connect(pg.conninfo)
          let applied = try await Migrator.migrate([Self.v2, Self.v1], on: db)
          await db.close()
          return applied
        }
      }
      var all: [[Int64]] = []
      for try await r in group { all.append(r) }
      return all
    }
    #expect(results.filter { !$0.isEmpty } == [[1, 2]], "\(results)")
    let db = try await PostgresConnection.connect(pg.conninfo)
    #expect(try await Migrator.migrate([Self.v1, Self.v2], on: db) == [])
    let rows = try await db.query("SELECT version FROM quad_schema_migrations ORDER BY version", named: "test.versions")
    #expect(try rows.map { try $0.decode("version", as: Int64.self) } == [1, 2])
    _ = try await db.query("INSERT INTO students (id, name, email) VALUES (\("s1"), \("Ada"), \("ada@campus"))", named: "test.insert")
    await db.close()
    await pg.stop()
  }

  @Test("A failing migration leaves nothing behind; an edited applied migration is refused")
  func failures() async throws {
    let pg = try await TestPostgres.start()
    let db = try await PostgresConnection.connect(pg.conninfo)
    try await Migrator.migrate([Self.v1], on: db)
    let broken = Migration(version: 3, name: "half", sql: "CREATE TABLE half (x int); SELECT no_such_function();")
    await #expect(throws: PostgresError.self) { try await Migrator.migrate([Self.v1, broken], on: db) }
    let half = try await db.query("SELECT to_regclass('half') IS NULL AS gone", named: "test.half")
    #expect(try half[0].decode("gone", as: Bool.self))
    let recorded = try await db.query("SELECT count(*) AS n FROM quad_schema_migrations", named: "test.count")
    #expect(try recorded[0].decode("n", as: Int.self) == 1)
    let edited = Migration(version: 1, name: "students", sql: Self.v1.sql + "\n-- edited")
    await #expect { try await Migrator.migrate([edited], on: db) } throws: { ($0 as? PostgresError)?.sqlState == "QM001" }
    let twice = [Self.v2, Migration(version: 2, name: "again", sql: "SELECT 1")]
    await #expect { try await Migrator.migrate(twice, on: db) } throws: { ($0 as? PostgresError)?.sqlState == "QM001" }
    await db.close()
    await pg.stop()
  }
}
