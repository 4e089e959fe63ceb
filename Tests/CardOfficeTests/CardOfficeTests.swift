internal import Accounts
internal import CampusContracts
internal import CardOffice
internal import EventStore
internal import Foundation
internal import GRPCWire
internal import Logging
internal import Postgres
internal import QuadProtobuf
internal import QuadRPC
internal import Students
internal import Testing
internal import TestSupport

/// The card-issuing saga on a real PostgreSQL, its contexts over real gRPC: with a failure at
/// each step (injected, and the real ones: too little money, a withdrawn student) the saga ends
/// completed or fully compensated, never half, and nothing is charged twice.
@Suite("Card office: the card-issuing saga")
struct CardOfficeTests {
  static let options = CallOptions(timeout: .seconds(30))

  struct Harness {
    let store: EventStore
    let students: Campus_Students_V1_Students.Client
    let accounts: Campus_Accounts_V1_Accounts.Client
    let office: Campus_Cards_V1_CardOffice.Client
    let runnerFor: @Sendable (SagaFaults) -> SagaRunner
  }

  struct Failure: Error, CustomStringConvertible { let description: String }

  static func withOffice(_ body: @Sendable (Harness) async throws -> Void) async throws {
    let pg = try await TestPostgres.start()
    let pool = PostgresPool(conninfo: pg.conninfo, maximumConnections: 8)
    let store = EventStore(pool: pool)
    var outcome: Result<Void, any Error> = .success(())
    do {
      try await store.migrate()
      let students = StudentsService(store: store)
      try await students.migrate()
      let accounts = AccountsService(store: store)
      try await accounts.migrate()
      let runnerFor: @Sendable (SagaFaults) -> SagaRunner = { faults in
        var settings = SagaRunner.Settings()
        settings.faults = faults
        settings.sweep = .milliseconds(100)
        return SagaRunner(store: store, accounts: accounts, students: students, settings: settings, logger: Logger(label: "test.cards"))
      }
      // The office's service only pokes its runner; the tests run runners of their own.
      let office = CardOfficeService(store: store, runner: runnerFor(SagaFaults()))
      try await office.migrate()
      var router = Router()
      students.register(in: &router)
      accounts.register(in: &router)
      office.register(in: &router)
      let server = try await GRPCServer.start(router: router, host: "127.0.0.1", port: 0)
      let grpc = try GRPCClient(target: "127.0.0.1:\(server.port)")
      do {
        try await body(Harness(
          store: store, students: .init(grpc), accounts: .init(grpc), office: .init(grpc), runnerFor: runnerFor))
      } catch { outcome = .failure(error) }
      await grpc.close()
      try await server.stop()
    } catch {
      outcome = .failure(error)
    }
    pool.shutdown()
    await pg.stop()
    try outcome.get()
  }

  /// Registers an enrolled student with `cents` on their account.
  static func student(_ h: Harness, _ id: String, cents: Int64) async throws {
    var r = Campus_Students_V1_RegisterStudentRequest()
    r.studentId = id
    r.givenName = "Card"
    r.familyName = "Holder"
    r.email = "\(id.lowercased())@uni.example.edu"
    _ = try await h.students.registerStudent(r, options: options)
    guard cents > 0 else { return }
    var credit = Campus_Accounts_V1_CreditAccountRequest()
    credit.studentId = id
    credit.creditId = "opening-\(id)"
    credit.amountCents = cents
    _ = try await h.accounts.creditAccount(credit, options: options)
  }

  /// Starts a card issue and runs a runner with `faults` until the saga ends.
  static func issue(_ h: Harness, _ saga: String, student: String, fee: Int64, faults: SagaFaults = SagaFaults()) async throws -> Campus_Cards_V1_Saga {
    let runner = h.runnerFor(faults)
    let running = Task { await runner.run() }
    defer { running.cancel() }
    var r = Campus_Cards_V1_IssueCardRequest()
    r.sagaId = saga
    r.studentId = student
    r.feeCents = fee
    let started = try await h.office.issueCard(r, options: options)
    #expect(started.state == .running || started.state == .completed || started.state == .compensated)
    var get = Campus_Cards_V1_GetSagaRequest()
    get.sagaId = saga
    let deadline = ContinuousClock.now + .seconds(60)
    while ContinuousClock.now < deadline {
      let s = try await h.office.getSaga(get, options: options)
      if s.state == .completed || s.state == .compensated {
        running.cancel()
        await running.value
        return s
      }
      try await Task.sleep(for: .milliseconds(50))
    }
    throw Failure(description: "saga \(saga) did not end: \(try await h.office.getSaga(get, options: options))")
  }

  static func outcomes(_ s: Campus_Cards_V1_Saga) -> [Campus_Cards_V1_StepOutcome] { s.steps.map(\.outcome) }

  /// Counts `type` events on the student's account stream about the saga's charge.
  static func accountEvents(_ h: Harness, _ student: String, _ type: String) async throws -> Int {
    try await h.store.readStream(StreamID(type: "account", id: student), fromVersion: 1, limit: 1000).filter { $0.type == type }.count
  }

  static func balance(_ h: Harness, _ student: String) async throws -> Int64 {
    try await h.accounts.getAccount(.with(student), options: options).balanceCents
  }

  /// Never half: a completed saga's card is the student's and its fee charged once; a
  /// compensated saga left no card, no charge and no held number behind.
  static func whole(_ h: Harness, _ s: Campus_Cards_V1_Saga, balanceBefore: Int64) async throws {
    var get = Campus_Students_V1_GetStudentRequest()
    get.studentId = s.studentId
    let student = try await h.students.getStudent(get, options: options)
    let charged = try await accountEvents(h, s.studentId, "campus.accounts.v1.AccountCharged")
    let refunded = try await accountEvents(h, s.studentId, "campus.accounts.v1.ChargeRefunded")
    let number = s.cardId.isEmpty ? [] : try await h.store.readStream(StreamID(type: "card-number", id: s.cardId), fromVersion: 1, limit: 10).map(\.type)
    switch s.state {
    case .completed:
      #expect(student.cardId == s.cardId && !s.cardId.isEmpty)
      #expect(try await balance(h, s.studentId) == balanceBefore - s.feeCents)
      #expect(charged == (s.feeCents > 0 ? 1 : 0) && refunded == 0, "charged once")
      #expect(number == ["campus.cards.v1.CardNumberReserved"])
    case .compensated:
      #expect(student.cardId.isEmpty, "no card")
      #expect((try? await balance(h, s.studentId)) ?? 0 == balanceBefore, "nothing charged in the end")
      #expect(charged == refunded && charged <= 1, "charged at most once, and refunded if so")
      #expect(number.isEmpty || number == ["campus.cards.v1.CardNumberReserved", "campus.cards.v1.CardNumberReleased"], "\(number)")
      #expect(!s.steps.contains { $0.outcome == .done }, "every step done was undone")
    default:
      Issue.record("saga \(s.sagaId) is \(s.state)")
    }
  }

  @Test("Completed, and compensated after a failure at each step (injected, too little money, a withdrawn student): never half, never charged twice; IssueCard is idempotent by saga id")
  func failures() async throws {
    try await Self.withOffice { h in
      typealias O = Campus_Cards_V1_StepOutcome
      // Completed.
      try await Self.student(h, "C1", cents: 5_000)
      let ok = try await Self.issue(h, "issue-ok", student: "C1", fee: 1_500)
      #expect(ok.state == .completed && Self.outcomes(ok) == [.done, .done, .done], "\(ok)")
      #expect(ok.cardId.hasPrefix("QC-") && ok.steps[1].detail == "card-issue:issue-ok")
      try await Self.whole(h, ok, balanceBefore: 5_000)
      // The same saga id again: the saga as it is; with another fee: ALREADY_EXISTS.
      var again = Campus_Cards_V1_IssueCardRequest()
      again.sagaId = "issue-ok"
      again.studentId = "C1"
      again.feeCents = 1_500
      #expect(try await h.office.issueCard(again, options: Self.options).state == .completed)
      again.feeCents = 1
      await #expect(throws: RPCError.self) { _ = try await h.office.issueCard(again, options: Self.options) }
      try await Self.whole(h, ok, balanceBefore: 5_000)

      // A failure at each step, injected.
      let cases: [(String, [O])] = [
        ("reserve_card_number", [.failed, .skipped, .skipped]),
        ("charge_card_fee", [.compensated, .failed, .skipped]),
        ("activate_card", [.compensated, .compensated, .failed]),
      ]
      for (i, (step, expected)) in cases.enumerated() {
        let id = "F\(i)"
        try await Self.student(h, id, cents: 5_000)
        var faults = SagaFaults()
        faults.failing = [step]
        let s = try await Self.issue(h, "issue-fail-\(step)", student: id, fee: 1_500, faults: faults)
        #expect(s.state == .compensated && Self.outcomes(s) == expected, "\(step): \(s)")
        try await Self.whole(h, s, balanceBefore: 5_000)
      }

      // Real failures: too little money (at the charge), a withdrawn student (at activation).
      try await Self.student(h, "P1", cents: 1_000)
      let poor = try await Self.issue(h, "issue-poor", student: "P1", fee: 1_500)
      #expect(poor.state == .compensated && Self.outcomes(poor) == [.compensated, .failed, .skipped])
      #expect(poor.steps[1].detail.hasPrefix("FAILED_PRECONDITION"), "\(poor.steps[1].detail)")
      try await Self.whole(h, poor, balanceBefore: 1_000)
      try await Self.student(h, "W1", cents: 5_000)
      var withdraw = Campus_Students_V1_ChangeStudentStatusRequest()
      withdraw.studentId = "W1"
      withdraw.status = .withdrawn
      _ = try await h.students.changeStudentStatus(withdraw, options: Self.options)
      let gone = try await Self.issue(h, "issue-withdrawn", student: "W1", fee: 1_500)
      #expect(gone.state == .compensated && Self.outcomes(gone) == [.compensated, .compensated, .failed], "\(gone)")
      try await Self.whole(h, gone, balanceBefore: 5_000)

      // No fee: no account movement at all.
      try await Self.student(h, "Z1", cents: 0)
      let free = try await Self.issue(h, "issue-free", student: "Z1", fee: 0)
      #expect(free.state == .completed && free.steps[1].detail == "no fee")
      #expect(try await Self.accountEvents(h, "Z1", "campus.accounts.v1.AccountCharged") == 0)

      // Bad requests.
      var bad = Campus_Cards_V1_IssueCardRequest()
      bad.sagaId = ""
      bad.studentId = "C1"
      bad.feeCents = -1
      await #expect(throws: RPCError.self) { _ = try await h.office.issueCard(bad, options: Self.options) }
      var unknown = Campus_Cards_V1_GetSagaRequest()
      unknown.sagaId = "nope"
      await #expect(throws: RPCError.self) { _ = try await h.office.getSaga(unknown, options: Self.options) }
    }
  }

  @Test("Two runners (two instances) driving one saga at once: each step done by both takes effect once: one charge, one activation")
  func repeatedSteps() async throws {
    try await Self.withOffice { h in
      try await Self.student(h, "R1", cents: 5_000)
      // Two runners at once on the same saga: both do each step; the log takes one outcome.
      let a = h.runnerFor(SagaFaults()), b = h.runnerFor(SagaFaults())
      let ra = Task { await a.run() }, rb = Task { await b.run() }
      var r = Campus_Cards_V1_IssueCardRequest()
      r.sagaId = "issue-twice"
      r.studentId = "R1"
      r.feeCents = 700
      _ = try await h.office.issueCard(r, options: Self.options)
      a.poke()
      b.poke()
      var get = Campus_Cards_V1_GetSagaRequest()
      get.sagaId = "issue-twice"
      var s = try await h.office.getSaga(get, options: Self.options)
      let deadline = ContinuousClock.now + .seconds(60)
      while s.state != .completed && ContinuousClock.now < deadline {
        try await Task.sleep(for: .milliseconds(50))
        s = try await h.office.getSaga(get, options: Self.options)
      }
      ra.cancel()
      rb.cancel()
      await ra.value
      await rb.value
      #expect(s.state == .completed)
      try await Self.whole(h, s, balanceBefore: 5_000)
    }
  }
}

extension Campus_Accounts_V1_GetAccountRequest {
  static func with(_ id: String) -> Self {
    var r = Self()
    r.studentId = id
    return r
  }
}
