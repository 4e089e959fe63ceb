/// What failed talking to PostgreSQL, and why: the query's name, the server's SQLSTATE and
/// message, or the connection problem.
///
/// `description` carries the server's message, which may quote data; it is for logs, not for
/// RPC callers (map errors to a gRPC status where they are used).
package struct PostgresError: Error, CustomStringConvertible, Sendable {
  /// The kind of failure.
  package struct Code: Hashable, Sendable, CustomStringConvertible {
    private let name: String
    private init(_ name: String) { self.name = name }
    /// The connection could not be made (bad URL, server down, authentication).
    package static let connection = Code("connection")
    /// The server refused or failed a statement (see ``PostgresError/sqlState``).
    package static let server = Code("server")
    /// The connection broke while a statement ran.
    package static let connectionLost = Code("connection lost")
    /// COMMIT was sent but its outcome is unknown (the connection broke): the transaction may
    /// or may not have committed. Never reported as a rollback.
    package static let commitOutcomeUnknown = Code("commit outcome unknown")
    /// A value could not be read as the Swift type asked for.
    package static let decoding = Code("decoding")
    /// The statement was cancelled (task cancellation).
    package static let cancelled = Code("cancelled")
    /// The statement's deadline passed (it was cancelled on the server, or never sent).
    package static let deadlineExceeded = Code("deadline exceeded")
    package var description: String { name }
  }

  package var code: Code
  /// What went wrong, in the server's or libpq's words.
  package var message: String
  /// The five-character SQLSTATE the server reported (`23505` unique violation, …).
  package var sqlState: String?
  /// The name of the query that failed (`"eventstore.append"`), never its text.
  package var queryName: String?
  /// The server's DETAIL field, when it sent one.
  package var detail: String?

  package init(_ code: Code, _ message: String, sqlState: String? = nil, queryName: String? = nil, detail: String? = nil) {
    self.code = code
    self.message = message
    self.sqlState = sqlState
    self.queryName = queryName
    self.detail = detail
  }

  package var description: String {
    var s = "\(code)"
    if let queryName { s += " in \(queryName)" }
    if let sqlState { s += " (SQLSTATE \(sqlState))" }
    return s + ": " + message
  }

  /// SQLSTATE 23505.
  package var isUniqueViolation: Bool { sqlState == "23505" }
  /// SQLSTATE 40001 or 40P01: safe to retry the whole transaction.
  package var isSerializationFailure: Bool { sqlState == "40001" || sqlState == "40P01" }
}
