package import CampusContracts
internal import CampusSupport
package import EventStore
internal import GRPCWire
package import Logging
internal import Postgres
internal import QuadProtobuf
package import QuadRPC
internal import Synchronization

/// Drives every unfinished card issue to its end: performs the next step, records its outcome on
/// the saga's stream, and after a step's permanent failure undoes the steps done, newest first.
/// What to do next comes from the saga's log alone, so a saga resumes after a crash (of any
/// instance); every step is idempotent (the charge by its id, the activation by its
/// idempotency key, the reservation and release in the transaction that records them), so a
/// step repeated after a crash changes nothing twice. Transient failures are retried with
/// backoff; they never start compensation.
package final class SagaRunner: Sendable {
  package struct Settings: Sendable {
    /// How often the runner looks for unfinished sagas besides being woken.
    package var sweep: Duration = .seconds(1)
    /// Sagas driven at once at most.
    package var concurrency = 16
    /// The longest pause between tries of a transiently failing step.
    package var maximumBackoff: Duration = .seconds(5)
    package var faults = SagaFaults()
    package init() {}
  }

  let store: EventStore
  let accounts: any Campus_Accounts_V1_Accounts.ServiceProtocol
  let students: any Campus_Students_V1_Students.ServiceProtocol
  let settings: Settings
  let logger: Logger
  private let wake: AsyncStream<Void>
  private let wakeUp: AsyncStream<Void>.Continuation
  private let active = Mutex<Set<String>>([])

  package init(
    store: EventStore, accounts: any Campus_Accounts_V1_Accounts.ServiceProtocol, students: any Campus_Students_V1_Students.ServiceProtocol,
    settings: Settings = Settings(), logger: Logger
  ) {
    self.store = store
    self.accounts = accounts
    self.students = students
    self.settings = settings
    self.logger = logger
    (wake, wakeUp) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
  }

  /// Tells the runner a saga was started (it finds it at its next sweep otherwise).
  package func poke() { wakeUp.yield() }

  /// Runs until cancelled: sweeps for unfinished sagas and drives them.
  package func run() async {
    await withTaskGroup(of: Void.self) { group in
      group.addTask { [wake, settings] in
        // The sweep clock: wakes the loop below at least every `sweep`.
        while !Task.isCancelled {
          try? await Task.sleep(for: settings.sweep)
          self.wakeUp.yield()
        }
        _ = wake
      }
      for await _ in wake {
        if Task.isCancelled { break }
        let ids: [String]
        do { ids = try await unfinished() } catch { continue }
        for id in ids {
          guard active.withLock({ a in a.count < settings.concurrency && a.insert(id).inserted }) else { continue }
          group.addTask {
            await self.drive(id)
            _ = self.active.withLock { $0.remove(id) }
          }
        }
      }
      group.cancelAll()
    }
  }

  func unfinished() async throws -> [String] {
    try await store.pool.withConnection { db in
      try await db.query("SELECT saga_id FROM cards.sagas WHERE state IN (1, 3) ORDER BY saga_id LIMIT 1000", named: "cards.unfinished")
        .map { try $0.decode("saga_id", as: String.self) }
    }
  }

  /// Takes one saga from wherever its log says it is to its end (or until cancelled).
  func drive(_ id: String) async {
    var backoff = Duration.milliseconds(50)
    while !Task.isCancelled {
      do {
        guard let (saga, traceparent) = try await CardOfficeService.load(id, store: store) else { return }
        switch SagaPlan.next(saga) {
        case .none: return
        case .perform(let step): try await perform(step, saga, traceparent)
        case .compensate(let step): try await compensate(step, saga, traceparent)
        case .complete:
          var e = Campus_Cards_V1_CardIssueCompleted()
          e.sagaId = id
          e.cardId = saga.cardId
          try await record(saga, .cardIssueCompleted(e), traceparent)
          logger.info("card issue completed", metadata: ["saga": "\(id)", "card": "\(saga.cardId)"])
        case .finishCompensation:
          var e = Campus_Cards_V1_CardIssueCompensated()
          e.sagaId = id
          try await record(saga, .cardIssueCompensated(e), traceparent)
          logger.notice("card issue compensated", metadata: ["saga": "\(id)"])
        }
        backoff = .milliseconds(50)
      } catch let e as EventStoreError {
        if case .versionConflict = e.kind { continue }  // another runner moved the saga on: read it again
        if Task.isCancelled { return }
        logger.warning("card issue step failed; retrying", metadata: ["saga": "\(id)", "error": "\(e)"])
        try? await Task.sleep(for: backoff * Double.random(in: 0.5...1.0))
        backoff = min(backoff * 2, settings.maximumBackoff)
      } catch {
        if Task.isCancelled { return }
        logger.warning("card issue step failed; retrying", metadata: ["saga": "\(id)", "error": "\(error)"])
        try? await Task.sleep(for: backoff * Double.random(in: 0.5...1.0))
        backoff = min(backoff * 2, settings.maximumBackoff)
      }
    }
  }

  // MARK: Steps

  /// Does `step`, then records its outcome: done, or failed for good (compensation starts).
  /// A transient failure is thrown (and the step tried again).
  func perform(_ step: String, _ saga: Saga, _ traceparent: String) async throws {
    if step == SagaPlan.reserve {
      // Local: the number, its event and the step's outcome commit together.
      if settings.faults.failing.contains(step) { return try await fail(step, saga, "injected fault", traceparent) }
      try await reserve(saga, traceparent)
      settings.faults.crash(settings.faults.crashAfterRecord, step)
      return
    }
    let detail: String
    do {
      if settings.faults.failing.contains(step) { throw RPCError(code: .failedPrecondition, message: "injected fault") }
      detail = try await call(step, saga, traceparent)
    } catch let e as RPCError where Self.permanent(e.code) {
      settings.faults.crash(settings.faults.crashBeforeRecord, step)
      return try await fail(step, saga, "\(e.code): \(e.message)", traceparent)
    }
    settings.faults.crash(settings.faults.crashBeforeRecord, step)
    var e = Campus_Cards_V1_CardIssueStepDone()
    e.sagaId = saga.sagaId
    e.step = step
    e.detail = detail
    try await record(saga, .cardIssueStepDone(e), traceparent)
    settings.faults.crash(settings.faults.crashAfterRecord, step)
  }

  /// The other contexts' steps, through their service contracts.
  func call(_ step: String, _ saga: Saga, _ traceparent: String) async throws -> String {
    switch step {
    case SagaPlan.charge:
      guard saga.feeCents > 0 else { return "no fee" }
      var r = Campus_Accounts_V1_ChargeAccountRequest()
      r.studentId = saga.studentId
      r.chargeId = Self.chargeID(saga)
      r.amountCents = saga.feeCents
      r.reason = "student card \(saga.cardId)"
      _ = try await accounts.chargeAccount(r, context: context("/campus.accounts.v1.Accounts/ChargeAccount", traceparent, key: nil))
      return r.chargeId
    case SagaPlan.activate:
      var r = Campus_Students_V1_IssueCardRequest()
      r.studentId = saga.studentId
      r.cardId = saga.cardId
      do {
        _ = try await students.issueCard(r, context: context("/campus.students.v1.Students/IssueCard", traceparent, key: "card-issue:\(saga.sagaId)"))
      } catch let e as RPCError where e.code == .failedPrecondition {
        // Activated already, by a try whose answer was lost (and whose key has expired)?
        var get = Campus_Students_V1_GetStudentRequest()
        get.studentId = saga.studentId
        let student = try await students.getStudent(get, context: context("/campus.students.v1.Students/GetStudent", traceparent, key: nil))
        guard student.cardId == saga.cardId else { throw e }
      }
      return saga.cardId
    default:
      throw RPCError(code: .internal, message: "card issue \(saga.sagaId): no step \(step)")
    }
  }

  /// Undoes a step done, then records it.
  func compensate(_ step: String, _ saga: Saga, _ traceparent: String) async throws {
    let name = "undo:" + step
    if settings.faults.failing.contains(name) { throw RPCError(code: .unavailable, message: "injected fault (compensations are retried, never given up)") }
    var e = Campus_Cards_V1_CardIssueStepCompensated()
    e.sagaId = saga.sagaId
    e.step = step
    switch step {
    case SagaPlan.reserve:
      try await release(saga, traceparent)
      settings.faults.crash(settings.faults.crashAfterRecord, name)
      return
    case SagaPlan.charge where saga.feeCents > 0:
      var r = Campus_Accounts_V1_RefundChargeRequest()
      r.studentId = saga.studentId
      r.chargeId = Self.chargeID(saga)
      r.reason = "card issue \(saga.sagaId) compensated"
      _ = try await accounts.refundCharge(r, context: context("/campus.accounts.v1.Accounts/RefundCharge", traceparent, key: nil))
    default:
      break
    }
    settings.faults.crash(settings.faults.crashBeforeRecord, name)
    try await record(saga, .cardIssueStepCompensated(e), traceparent)
    settings.faults.crash(settings.faults.crashAfterRecord, name)
  }

  func fail(_ step: String, _ saga: Saga, _ reason: String, _ traceparent: String) async throws {
    var e = Campus_Cards_V1_CardIssueStepFailed()
    e.sagaId = saga.sagaId
    e.step = step
    e.reason = String(reason.prefix(500))
    try await record(saga, .cardIssueStepFailed(e), traceparent)
    logger.notice("card issue step failed for good; compensating", metadata: ["saga": "\(saga.sagaId)", "step": "\(step)", "reason": "\(reason)"])
  }

  /// Reserves the next card number: the number row, its event and the step's outcome in one
  /// transaction.
  func reserve(_ saga: Saga, _ traceparent: String) async throws {
    let n: Int64 = try await store.pool.withConnection { db in
      try await db.query("SELECT nextval('cards.number_seq') AS n", named: "cards.next-number").first!.decode("n")
    }
    let card = "QC-" + String(repeating: "0", count: max(0, 8 - String(n).count)) + String(n)
    var reserved = Campus_Cards_V1_CardNumberReserved()
    reserved.cardId = card
    reserved.sagaId = saga.sagaId
    var done = Campus_Cards_V1_CardIssueStepDone()
    done.sagaId = saga.sagaId
    done.step = SagaPlan.reserve
    done.detail = card
    try await record(saga, .cardIssueStepDone(done), traceparent, with: [
      .init(NewEvent(reserved, metadata: Self.metadata(traceparent)), to: StreamID(type: "card-number", id: card), expectedVersion: 0),
    ], statements: [("INSERT INTO cards.numbers (card_id, saga_id) VALUES (\(card), \(saga.sagaId))", "cards.number.insert")])
  }

  /// Gives the saga's number back, with its event and the compensation's record.
  func release(_ saga: Saga, _ traceparent: String) async throws {
    var released = Campus_Cards_V1_CardNumberReleased()
    released.cardId = saga.cardId
    released.sagaId = saga.sagaId
    var undone = Campus_Cards_V1_CardIssueStepCompensated()
    undone.sagaId = saga.sagaId
    undone.step = SagaPlan.reserve
    try await record(saga, .cardIssueStepCompensated(undone), traceparent, with: [
      .init(NewEvent(released, metadata: Self.metadata(traceparent)), to: StreamID(type: "card-number", id: saga.cardId), expectedVersion: 1),
    ], statements: [("UPDATE cards.numbers SET released = true WHERE card_id = \(saga.cardId)", "cards.number.release")])
  }

  /// Appends `event` to the saga's stream (expecting the version it was decided on) with the
  /// saga row it leads to, plus `others` and `statements`, in one transaction.
  func record(
    _ saga: Saga, _ event: CardOfficeEvent, _ traceparent: String, with others: [EventWrite.Append] = [], statements: [(sql: SQL, name: String)] = []
  ) async throws {
    var next = saga
    next.apply(event, version: saga.version + 1, atMicroseconds: CampusSupport.nowMicroseconds())
    var write = EventWrite()
    write.statements = [(
      "UPDATE cards.sagas SET version = \(next.version), state = \(next.state.rawValue), record = \(next.serializedBytes()) WHERE saga_id = \(saga.sagaId)",
      "cards.saga.store")] + statements
    write.events = [EventWrite.Append(CardOfficeService.newEvent(event, metadata: Self.metadata(traceparent)), to: CardOfficeService.stream(saga.sagaId), expectedVersion: saga.version)] + others
    _ = try await store.write(write)
  }

  // MARK: Helpers

  static func chargeID(_ saga: Saga) -> String { "card-issue:" + saga.sagaId }

  /// Whether a step's failure is for good (the request cannot succeed as it is) rather than
  /// worth another try.
  static func permanent(_ code: GRPCStatus.Code) -> Bool {
    [.invalidArgument, .notFound, .alreadyExists, .permissionDenied, .failedPrecondition, .outOfRange, .unimplemented, .unauthenticated].contains(code)
  }

  /// The context a participant's method is called with: the saga's trace, and an idempotency key.
  func context(_ path: String, _ traceparent: String, key: String?) -> ServerContext {
    var metadata = Metadata()
    if !traceparent.isEmpty { metadata.add("traceparent", traceparent) }
    if let key { metadata.add("idempotency-key", key) }
    metadata.add("x-causation-id", "card-office")
    return ServerContext(path: path, metadata: metadata, peer: "card-office")
  }

  static func metadata(_ traceparent: String) -> [UInt8] {
    CardOfficeService.eventMetadata(traceparent: traceparent)
  }
}
