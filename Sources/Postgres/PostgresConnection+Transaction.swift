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
