package import CampusContracts
internal import CampusSupport
package import EventStore
internal import EventsService
internal import GRPCWire
internal import Postgres
internal import QuadProtobuf
package import QuadRPC

/// `campus.accounts.v1.Accounts`: the account aggregate. Each credit, charge or refund is
/// decided on the account's current state, appended with the version it was decided on, and
/// written to the tables in the same transaction; the caller's credit and charge ids make a
/// repeated request answer without moving money again.
package struct AccountsService: Campus_Accounts_V1_Accounts.ServiceProtocol {
  package typealias Account = Campus_Accounts_V1_Account
  typealias AccountEvent = QuadEvents_campus_accounts_v1_accounts_proto

  package let store: EventStore
  let writes: WriteRPC

  /// The contract reflection serves for this context.
  package static let protoFiles = [QuadFile_campus_accounts_v1_accounts_proto.serializedDescriptor]

  /// The largest single credit or charge, in cents.
  static let maximumAmount: Int64 = 100_000_000

  package init(store: EventStore) {
    self.store = store
    writes = WriteRPC(store: store)
  }

  /// Creates or updates the context's tables (under the migration lock).
  package func migrate() async throws {
    try await store.pool.withConnection { db in _ = try await Migrator.migrate(AccountsSchema.migrations, on: db) }
  }

  // MARK: Commands

  package func creditAccount(_ request: Campus_Accounts_V1_CreditAccountRequest, context: ServerContext) async throws -> Account {
    try CampusSupport.check(Self.violations(request.studentId, id: ("credit_id", request.creditId), amount: request.amountCents, reason: request.reason))
    return try await writes.perform(request, context: context) {
      let account = try await current(request.studentId)
      if let answer = try await repeated("credit", request.creditId, student: request.studentId, amount: request.amountCents, account) { return answer }
      var e = Campus_Accounts_V1_AccountCredited()
      e.studentId = request.studentId
      e.creditId = request.creditId
      e.amountCents = request.amountCents
      e.balanceCents = (account?.balanceCents ?? 0) + request.amountCents
      e.reason = request.reason
      return change(account, studentID: request.studentId, .accountCredited(e), then: [(
        "INSERT INTO accounts.movements (movement_id, kind, student_id, amount_cents) VALUES (\(request.creditId), 'credit', \(request.studentId), \(request.amountCents))",
        "accounts.movement.insert")])
    }
  }

  package func chargeAccount(_ request: Campus_Accounts_V1_ChargeAccountRequest, context: ServerContext) async throws -> Account {
    try CampusSupport.check(Self.violations(request.studentId, id: ("charge_id", request.chargeId), amount: request.amountCents, reason: request.reason))
    return try await writes.perform(request, context: context) {
      let account = try await current(request.studentId)
      if let answer = try await repeated("charge", request.chargeId, student: request.studentId, amount: request.amountCents, account) { return answer }
      let balance = account?.balanceCents ?? 0
      guard balance >= request.amountCents else {
        throw RPCError(code: .failedPrecondition, message: "account \(request.studentId) has \(balance) cents, less than the \(request.amountCents) charged")
      }
      var e = Campus_Accounts_V1_AccountCharged()
      e.studentId = request.studentId
      e.chargeId = request.chargeId
      e.amountCents = request.amountCents
      e.balanceCents = balance - request.amountCents
      e.reason = request.reason
      return change(account, studentID: request.studentId, .accountCharged(e), then: [(
        "INSERT INTO accounts.movements (movement_id, kind, student_id, amount_cents) VALUES (\(request.chargeId), 'charge', \(request.studentId), \(request.amountCents))",
        "accounts.movement.insert")])
    }
  }

  package func refundCharge(_ request: Campus_Accounts_V1_RefundChargeRequest, context: ServerContext) async throws -> Account {
    var violations = CampusSupport.violations([("student_id", Self.studentID(request.studentId)), ("charge_id", CampusSupport.token(request.chargeId, 1...128))])
    if request.reason.count > 200 { violations.append(RPCError.FieldViolation("reason", "is longer than 200 characters")) }
    try CampusSupport.check(violations)
    return try await writes.perform(request, context: context) {
      guard let charge = try await movement("charge", request.chargeId), charge.student == request.studentId, let account = try await current(request.studentId) else {
        throw RPCError(code: .notFound, message: "no charge \(request.chargeId) on account \(request.studentId)")
      }
      if charge.refunded { return (EventWrite(), account) }
      var e = Campus_Accounts_V1_ChargeRefunded()
      e.studentId = request.studentId
      e.chargeId = request.chargeId
      e.amountCents = charge.amount
      e.balanceCents = account.balanceCents + charge.amount
      e.reason = request.reason
      return change(account, studentID: request.studentId, .chargeRefunded(e), then: [(
        "UPDATE accounts.movements SET refunded = true WHERE kind = 'charge' AND movement_id = \(request.chargeId)", "accounts.movement.refund")])
    }
  }

  // MARK: Queries

  package func getAccount(_ request: Campus_Accounts_V1_GetAccountRequest, context: ServerContext) async throws -> Account {
    try CampusSupport.check(CampusSupport.violations([("student_id", Self.studentID(request.studentId))]))
    guard let account = try await CampusSupport.mapped({ try await current(request.studentId) }) else {
      throw RPCError(code: .notFound, message: "no account \(request.studentId)")
    }
    return account
  }

  // MARK: The aggregate's write path

  static func stream(_ id: String) -> StreamID { StreamID(type: "account", id: id) }

  func current(_ id: String) async throws -> Account? {
    try await CampusSupport.mapped {
      try await store.pool.withConnection { db in
        try await db.query(
          "SELECT version, balance_cents, charged_cents FROM accounts.accounts WHERE student_id = \(id)", named: "accounts.get"
        ).first.map { row in
          var a = Account()
          a.studentId = id
          a.version = try row.decode("version")
          a.balanceCents = try row.decode("balance_cents")
          a.chargedCents = try row.decode("charged_cents")
          return a
        }
      }
    }
  }

  /// The answer to a credit or charge made already under `id`: the account unchanged; nil for
  /// a new id; ALREADY_EXISTS when the id was used for another account or amount.
  func repeated(_ kind: String, _ id: String, student: String, amount: Int64, _ account: Account?) async throws -> (EventWrite, Account)? {
    guard let seen = try await movement(kind, id) else { return nil }
    guard seen.student == student, seen.amount == amount else {
      throw RPCError(code: .alreadyExists, message: "\(kind) \(id) was for another account or amount")
    }
    return (EventWrite(), account ?? Account())
  }

  /// A credit or charge already made under `id`.
  func movement(_ kind: String, _ id: String) async throws -> (student: String, amount: Int64, refunded: Bool)? {
    try await CampusSupport.mapped {
      try await store.pool.withConnection { db in
        try await db.query(
          "SELECT student_id, amount_cents, refunded FROM accounts.movements WHERE kind = \(kind) AND movement_id = \(id)", named: "accounts.movement"
        ).first.map { (try $0.decode("student_id"), try $0.decode("amount_cents"), try $0.decode("refunded")) }
      }
    }
  }

  /// The write appending `event` to the account's stream (expecting the version it was decided
  /// on) and storing the account it leads to, with `then` after it; and that account.
  func change(_ account: Account?, studentID: String, _ event: AccountEvent, then statements: [(sql: SQL, name: String)]) -> (EventWrite, Account) {
    var next = account ?? Account()
    next.studentId = studentID
    next.version += 1
    let newEvent: NewEvent
    switch event {
    case .accountCredited(let e):
      next.balanceCents = e.balanceCents
      newEvent = NewEvent(e)
    case .accountCharged(let e):
      next.balanceCents = e.balanceCents
      next.chargedCents += e.amountCents
      newEvent = NewEvent(e)
    case .chargeRefunded(let e):
      next.balanceCents = e.balanceCents
      next.chargedCents -= e.amountCents
      newEvent = NewEvent(e)
    }
    var write = EventWrite()
    // The account row first: a movement references it.
    write.statements = [("""
      INSERT INTO accounts.accounts (student_id, version, balance_cents, charged_cents)
      VALUES (\(studentID), \(next.version), \(next.balanceCents), \(next.chargedCents))
      ON CONFLICT (student_id) DO UPDATE
        SET version = EXCLUDED.version, balance_cents = EXCLUDED.balance_cents, charged_cents = EXCLUDED.charged_cents
      """, "accounts.store")] + statements
    write.events = [EventWrite.Append(newEvent, to: Self.stream(studentID), expectedVersion: account?.version ?? 0)]
    return (write, next)
  }

  // MARK: Request checks

  static func studentID(_ v: String) -> String? { CampusSupport.code(v, 1...32) }

  static func violations(_ student: String, id: (field: String, value: String), amount: Int64, reason: String) -> [RPCError.FieldViolation] {
    var v = CampusSupport.violations([("student_id", studentID(student)), (id.field, CampusSupport.token(id.value, 1...128))])
    if !(1...maximumAmount).contains(amount) { v.append(RPCError.FieldViolation("amount_cents", "must be 1 to \(maximumAmount)")) }
    if reason.count > 200 { v.append(RPCError.FieldViolation("reason", "is longer than 200 characters")) }
    return v
  }
}
