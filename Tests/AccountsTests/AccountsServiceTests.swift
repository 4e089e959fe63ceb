internal import Accounts
internal import CampusContracts
internal import EventStore
internal import GRPCWire
internal import Postgres
internal import QuadProtobuf
internal import QuadRPC
internal import Testing
internal import TestSupport

/// The accounts context over real gRPC on a real PostgreSQL: money moves only by credits,
/// charges and refunds, each once whatever the retries, and never below zero.
@Suite("Accounts")
struct AccountsServiceTests {
  static let options = CallOptions(timeout: .seconds(30))

  static func code(_ body: () async throws -> Void) async -> GRPCStatus.Code? {
    do {
      try await body()
      return .ok
    } catch let e as RPCError {
      return e.code
    } catch {
      return nil
    }
  }

  @Test("Credits, charges and refunds: balances, repeated ids answered without moving money, insufficient funds, unknown charges, bad requests, one event per movement")
  func movements() async throws {
    let pg = try await TestPostgres.start()
    let pool = PostgresPool(conninfo: pg.conninfo, maximumConnections: 4)
    let store = EventStore(pool: pool)
    try await store.migrate()
    let service = AccountsService(store: store)
    try await service.migrate()
    var router = Router()
    service.register(in: &router)
    let server = try await GRPCServer.start(router: router, host: "127.0.0.1", port: 0)
    let grpc = try GRPCClient(target: "127.0.0.1:\(server.port)")
    let accounts = Campus_Accounts_V1_Accounts.Client(grpc)

    #expect(await Self.code { _ = try await accounts.getAccount(.with("A1"), options: Self.options) } == .notFound)
    var credit = Campus_Accounts_V1_CreditAccountRequest()
    credit.studentId = "A1"
    credit.creditId = "pay-1"
    credit.amountCents = 5_000
    #expect(try await accounts.creditAccount(credit, options: Self.options).balanceCents == 5_000)
    #expect(try await accounts.creditAccount(credit, options: Self.options).balanceCents == 5_000, "the same credit id again moves nothing")
    var charge = Campus_Accounts_V1_ChargeAccountRequest()
    charge.studentId = "A1"
    charge.chargeId = "fee-1"
    charge.amountCents = 1_200
    let charged = try await accounts.chargeAccount(charge, options: Self.options)
    #expect(charged.balanceCents == 3_800 && charged.chargedCents == 1_200 && charged.version == 2)
    #expect(try await accounts.chargeAccount(charge, options: Self.options).balanceCents == 3_800, "the same charge id again charges nothing")
    var other = charge
    other.amountCents = 1
    #expect(await Self.code { _ = try await accounts.chargeAccount(other, options: Self.options) } == .alreadyExists)
    var big = charge
    big.chargeId = "fee-2"
    big.amountCents = 3_801
    #expect(await Self.code { _ = try await accounts.chargeAccount(big, options: Self.options) } == .failedPrecondition, "never below zero")
    var refund = Campus_Accounts_V1_RefundChargeRequest()
    refund.studentId = "A1"
    refund.chargeId = "fee-1"
    #expect(try await accounts.refundCharge(refund, options: Self.options).balanceCents == 5_000)
    let again = try await accounts.refundCharge(refund, options: Self.options)
    #expect(again.balanceCents == 5_000 && again.chargedCents == 0 && again.version == 3, "refunded once")
    var unknown = refund
    unknown.chargeId = "fee-9"
    #expect(await Self.code { _ = try await accounts.refundCharge(unknown, options: Self.options) } == .notFound)
    var bad = credit
    bad.amountCents = 0
    bad.studentId = "no spaces"
    #expect(await Self.code { _ = try await accounts.creditAccount(bad, options: Self.options) } == .invalidArgument)

    let events = try await store.readStream(StreamID(type: "account", id: "A1"), fromVersion: 1, limit: 100)
    #expect(events.map(\.type) == ["campus.accounts.v1.AccountCredited", "campus.accounts.v1.AccountCharged", "campus.accounts.v1.ChargeRefunded"])
    await grpc.close()
    try await server.stop()
    pool.shutdown()
    await pg.stop()
  }
}

extension Campus_Accounts_V1_GetAccountRequest {
  static func with(_ id: String) -> Self {
    var r = Self()
    r.studentId = id
    return r
  }
}
