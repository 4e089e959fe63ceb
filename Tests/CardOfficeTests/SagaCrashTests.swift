internal import CampusContracts
internal import CardOffice
internal import EventStore
internal import Foundation
internal import GRPCWire
internal import Postgres
internal import QuadRPC
internal import Testing
internal import TestSupport

/// The card-issuing saga in `quad serve`, killed (SIGKILL, by an injected fault) just before or
/// just after a step's outcome is recorded, then started again: the saga resumes from its log
/// and ends completed or fully compensated, with nothing charged or refunded twice.
@Suite("Card office: a process kill between the saga's steps")
struct SagaCrashTests {
  @Test("Killed before and after recording each step and each compensation: resumed after restart, completed or compensated, charged at most once")
  func killed() async throws {
    let pg = try await TestPostgres.start()
    let pool = PostgresPool(conninfo: pg.conninfo, maximumConnections: 2)
    let store = EventStore(pool: pool)
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quad-saga-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let log = dir.appendingPathComponent("serve.log").path
    let points: [(faults: String, ends: Campus_Cards_V1_SagaState)] = [
      ("crash-after-record=reserve_card_number", .completed),
      ("crash-before-record=charge_card_fee", .completed),
      ("crash-after-record=charge_card_fee", .completed),
      ("crash-before-record=activate_card", .completed),
      ("fail=activate_card;crash-before-record=undo:charge_card_fee", .compensated),
      ("fail=charge_card_fee;crash-after-record=undo:reserve_card_number", .compensated),
    ]
    for (i, point) in points.enumerated() {
      let student = "K\(i)"
      let sagaID = "crash-\(i)"
      // The instance that dies.
      let (doomed, port) = try await QuadServe.start(["--database-url", pg.conninfo], log: log, environment: ["QUAD_SAGA_FAULTS=\(point.faults)"])
      let client = try GRPCClient(target: "127.0.0.1:\(port)")
      var h = CardOfficeTests.Harness(
        store: store, students: .init(client), accounts: .init(client), office: .init(client), runnerFor: { _ in fatalError("not used") })
      try await CardOfficeTests.student(h, student, cents: 5_000)
      var r = Campus_Cards_V1_IssueCardRequest()
      r.sagaId = sagaID
      r.studentId = student
      r.feeCents = 1_500
      do {
        _ = try await h.office.issueCard(r, options: CardOfficeTests.options)
      } catch let e as RPCError where e.code == .unavailable {
        // The runner starts the saga's first step as soon as IssueCard commits, beside its
        // answer: a fault at that step can kill the instance before the answer leaves. The saga
        // was committed all the same (a fault fires only in a step); its successor shows it.
      }
      let status = await doomed.waitForExit(seconds: 60)
      #expect(status == SIGKILL, "\(point.faults): the instance was to kill itself (\(String(describing: status)))")
      if status == nil { await doomed.kill(signal: SIGKILL) }
      await client.close()

      // Its successor, with no fault, resumes the saga from its log.
      let (successor, port2) = try await QuadServe.start(["--database-url", pg.conninfo], log: log)
      let client2 = try GRPCClient(target: "127.0.0.1:\(port2)")
      h = CardOfficeTests.Harness(
        store: store, students: .init(client2), accounts: .init(client2), office: .init(client2), runnerFor: { _ in fatalError("not used") })
      var get = Campus_Cards_V1_GetSagaRequest()
      get.sagaId = sagaID
      var saga = try await h.office.getSaga(get, options: CardOfficeTests.options)
      let deadline = ContinuousClock.now + .seconds(60)
      while saga.state != .completed && saga.state != .compensated && ContinuousClock.now < deadline {
        try await Task.sleep(for: .milliseconds(100))
        saga = try await h.office.getSaga(get, options: CardOfficeTests.options)
      }
      #expect(saga.state == point.ends, "\(point.faults): \(saga)")
      try await CardOfficeTests.whole(h, saga, balanceBefore: 5_000)
      await client2.close()
      await successor.kill()
    }
    pool.shutdown()
    await pg.stop()
    try? FileManager.default.removeItem(at: dir)
  }
}
