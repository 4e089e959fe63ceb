extension PostgresConnection {
  /// Runs `body` in a transaction: COMMIT when it returns, ROLLBACK when it throws.
  ///
  /// - Throws: what `body` threw (after the rollback); ``PostgresError`` `.commitOutcomeUnknown`
  ///   when the connection broke during COMMIT (it may have committed: callers must not report
  ///   a rollback); the BEGIN or COMMIT error otherwise.
  package func transaction<R: Sendable>(
    _ body: (PostgresConnection) async throws -> R
  ) async throws -> R {
    _ = try await query("BEGIN", named: "transaction.begin")
    let result: R
    do {
      result = try await body(self)
    } catch {
      _ = try? await query("ROLLBACK", named: "transaction.rollback")
      throw error
    }
    do {
      _ = try await query("COMMIT", named: "transaction.commit")
    } catch let e as PostgresError where e.code == .connectionLost {
      throw PostgresError(.commitOutcomeUnknown, e.message, sqlState: e.sqlState, queryName: "transaction.commit")
    }
    return result
  }
}

extension PostgresConnection {
  /// Inside a transaction, runs `body` under a savepoint: its work stays when it returns, and
  /// only its work is undone when it throws (the transaction goes on, usable).
  ///
  /// ```swift
  /// try await db.transaction { tx in
  ///   _ = try await tx.query("INSERT INTO imports VALUES (\(batch))", named: "imports.insert")
  ///   for row in rows {
  ///     do { try await tx.savepoint { sp in try await upsert(row, sp) } } catch { rejected.append(row) }
  ///   }
  /// }
  /// ```
  ///
  /// - Throws: what `body` threw (after rolling back to the savepoint).
  package func savepoint<R: Sendable>(_ body: (PostgresConnection) async throws -> R) async throws -> R {
    _ = try await query("SAVEPOINT quad_savepoint", named: "transaction.savepoint")
    let result: R
    do {
      result = try await body(self)
    } catch {
      _ = try? await query("ROLLBACK TO SAVEPOINT quad_savepoint", named: "transaction.savepoint.rollback")
      _ = try? await query("RELEASE SAVEPOINT quad_savepoint", named: "transaction.savepoint.release")
      throw error
    }
    _ = try await query("RELEASE SAVEPOINT quad_savepoint", named: "transaction.savepoint.release")
    return result
  }
}
