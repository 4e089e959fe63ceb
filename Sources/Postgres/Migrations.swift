/// One versioned schema change: SQL shipped with the module that owns the tables.
///
/// Write migrations expand-then-contract: add columns, tables and indexes first (the old
/// version of `quad` keeps working beside the new one during a rolling upgrade), and drop what
/// the old version used only in a later migration, once no old instance runs.
package struct Migration: Sendable, Hashable {
  /// Applied in increasing order; never reused, never edited once released.
  package let version: Int64
  package let name: String
  package let sql: String

  package init(version: Int64, name: String, sql: String) {
    self.version = version
    self.name = name
    self.sql = sql
  }

  /// A fingerprint of the text (FNV-1a, 64 bits): an edited, already applied migration is
  /// refused instead of silently diverging.
  package var checksum: String {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in sql.utf8 {
      h ^= UInt64(b)
      h = h &* 0x100_0000_01b3
    }
    return String(h, radix: 16)
  }
}

/// Brings a database's schema up to date at start-up.
///
/// Every migration runs in a transaction of its own together with its row in
/// `quad_schema_migrations`, so it is applied entirely or not at all. The whole run holds a
/// PostgreSQL advisory lock, so several instances starting at once apply each migration once;
/// the others wait, then find nothing left to do.
package enum Migrator {
  /// The advisory-lock key every Quad migrator takes (arbitrary, fixed: "quadmigr").
  static let lockKey: Int64 = 0x7175_6164_6d69_6772

  /// Applies the `migrations` not applied yet, in version order, and returns the versions it
  /// applied (empty when the schema was up to date).
  ///
  /// - Throws: ``PostgresError`` from a failing migration (nothing of it stays), or `.server`
  ///   with SQLSTATE `QM001` when an applied migration's text changed or versions repeat.
  @discardableResult
  package static func migrate(_ migrations: [Migration], on db: PostgresConnection) async throws -> [Int64] {
    let sorted = migrations.sorted { $0.version < $1.version }
    for (a, b) in zip(sorted, sorted.dropFirst()) where a.version == b.version {
      throw PostgresError(.server, "two migrations have version \(a.version) (\(a.name), \(b.name))", sqlState: "QM001")
    }
    _ = try await db.query("SELECT pg_advisory_lock(\(lockKey))", named: "migrations.lock")
    do {
      let applied = try await run(sorted, db)
      _ = try await db.query("SELECT pg_advisory_unlock(\(lockKey))", named: "migrations.unlock")
      return applied
    } catch {
      _ = try? await db.query("SELECT pg_advisory_unlock(\(lockKey))", named: "migrations.unlock")
      throw error
    }
  }

  private static func run(_ migrations: [Migration], _ db: PostgresConnection) async throws -> [Int64] {
    _ = try await db.query("""
      CREATE TABLE IF NOT EXISTS quad_schema_migrations (
        version int8 PRIMARY KEY,
        name text NOT NULL,
        checksum text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
      )
      """, named: "migrations.table")
    let rows = try await db.query("SELECT version, checksum FROM quad_schema_migrations", named: "migrations.applied")
    var done: [Int64: String] = [:]
    for r in rows { done[try r.decode("version", as: Int64.self)] = try r.decode("checksum", as: String.self) }
    var applied: [Int64] = []
    for m in migrations {
      if let checksum = done[m.version] {
        guard checksum == m.checksum else {
          throw PostgresError(.server, "migration \(m.version) (\(m.name)) was changed after it was applied", sqlState: "QM001")
        }
        continue
      }
      try await db.transaction { tx in
        try await tx.execute(script: m.sql, named: "migrations.\(m.version)")
        _ = try await tx.query(
          "INSERT INTO quad_schema_migrations (version, name, checksum) VALUES (\(m.version), \(m.name), \(m.checksum))",
          named: "migrations.record")
      }
      applied.append(m.version)
    }
    return applied
  }
}
