internal import GRPCWire
internal import QuadProtobuf
internal import QuadRPC
internal import Resilience
internal import Synchronization
internal import Testing

/// Circuit breakers and bulkheads: their state machines, and a breaker in front of a real
/// server that goes away and comes back.
@Suite("Circuit breakers and bulkheads")
struct ResilienceTests {
  @Test("Closed → open after the threshold → half-open after the cool-down → closed on a good probe, open again on a bad one")
  func breakerStates() throws {
    let breaker = CircuitBreaker(target: "test:states", settings: .init(failureThreshold: 3, openDuration: .seconds(10), halfOpenProbes: 1))
    let t0 = ContinuousClock.now
    for _ in 0..<2 {
      try breaker.admit(now: t0)
      breaker.record(success: false, now: t0)
    }
    #expect(breaker.snapshot.state == .closed)
    try breaker.admit(now: t0)
    breaker.record(success: false, now: t0)
    #expect(breaker.snapshot.state == .open && breaker.snapshot.opened == 1)
    #expect(throws: CircuitBreaker.Open.self) { try breaker.admit(now: t0 + .seconds(5)) }
    #expect(breaker.snapshot.rejected == 1)
    // After the cool-down one probe goes through; a second caller meanwhile is refused.
    try breaker.admit(now: t0 + .seconds(10))
    #expect(breaker.snapshot.state == .halfOpen)
    #expect(throws: CircuitBreaker.Open.self) { try breaker.admit(now: t0 + .seconds(10)) }
    breaker.record(success: false, now: t0 + .seconds(11))
    #expect(breaker.snapshot.state == .open && breaker.snapshot.opened == 2, "a failed probe opens it again")
    try breaker.admit(now: t0 + .seconds(21))
    breaker.record(success: true, now: t0 + .seconds(21))
    #expect(breaker.snapshot.state == .closed && breaker.snapshot.consecutiveFailures == 0)
    #expect(CircuitBreakers.shared.all.contains { $0.target == "test:states" })
  }

  @Test("A bulkhead runs at most N at once, queues M, refuses the rest at once; a cancelled wait leaves the queue")
  func bulkhead() async throws {
    let bulkhead = Bulkhead(target: "test:bulkhead", maximumConcurrent: 2, maximumWaiting: 1)
    let seen = Seen()
    let gate = Gate()
    await withTaskGroup(of: Void.self) { group in
      for i in 0..<4 {
        group.addTask {
          do {
            try await bulkhead.run {
              seen.peak.withLock { $0.now += 1; $0.peak = max($0.peak, $0.now) }
              await gate.wait()
              seen.peak.withLock { $0.now -= 1 }
            }
            seen.outcomes.withLock { $0.append("ran") }
          } catch is Bulkhead.Full {
            seen.outcomes.withLock { $0.append("full \(i)") }
          } catch {
            seen.outcomes.withLock { $0.append("\(error)") }
          }
        }
      }
      // Two run, one waits, one is refused; then let them all go.
      while seen.outcomes.withLock({ $0.count }) < 1 || bulkhead.running < 2 { try? await Task.sleep(for: .milliseconds(10)) }
      gate.open()
      await group.waitForAll()
    }
    #expect(seen.peak.withLock { $0.peak } == 2)
    #expect(seen.outcomes.withLock { $0.filter { $0 == "ran" }.count } == 3 && seen.outcomes.withLock { $0.filter { $0.hasPrefix("full") }.count } == 1)
    #expect(bulkhead.running == 0)

    // A waiter cancelled while queued does not take a slot later.
    let busy = Gate()
    let holders = (0..<2).map { _ in Task { try await bulkhead.run { await busy.wait() } } }
    while bulkhead.running < 2 { try await Task.sleep(for: .milliseconds(10)) }
    let waiter = Task { try await bulkhead.run { } }
    try await Task.sleep(for: .milliseconds(50))
    waiter.cancel()
    await #expect(throws: CancellationError.self) { try await waiter.value }
    busy.open()
    for h in holders { try await h.value }
    #expect(bulkhead.running == 0)
  }

  @Test("In front of a real server: calls fail UNAVAILABLE while it is failing, the breaker opens and answers at once without calling it, and closes again when it is back")
  func breakerAgainstServer() async throws {
    let down = Gate()  // open = the server fails every call
    let served = Counter()
    var router = Router()
    router.registerUnary("/test.Echo/Say") { bytes, _ in
      served.add()
      if down.isOpen { throw RPCError(code: .unavailable, message: "the test server is down") }
      return bytes
    }
    let server = try await GRPCServer.start(router: router, host: "127.0.0.1", port: 0)
    let breaker = CircuitBreaker(target: "test:echo", settings: .init(failureThreshold: 2, openDuration: .milliseconds(500)))
    let client = try GRPCClient(
      target: "127.0.0.1:\(server.port)", interceptors: [ResilientCalls(breaker: breaker, bulkhead: Bulkhead(target: "test:echo", maximumConcurrent: 8))])
    func call() async -> RPCError? {
      do {
        _ = try await client.unary("/test.Echo/Say", request: Google_Protobuf_Duration(), responseType: Google_Protobuf_Duration.self, options: CallOptions(timeout: .seconds(30)))
        return nil
      } catch let e as RPCError {
        return e
      } catch {
        return RPCError(code: .unknown, message: "\(error)")
      }
    }
    #expect(await call() == nil)
    down.open()
    #expect(await call()?.code == .unavailable)
    #expect(await call()?.code == .unavailable)
    #expect(breaker.snapshot.state == .open)
    let before = served.value
    let refused = await call()
    #expect(refused?.code == .unavailable && refused?.message.contains("circuit breaker for test:echo is open") == true, "\(String(describing: refused))")
    #expect(served.value == before, "an open breaker does not call the server")
    down.close()
    let deadline = ContinuousClock.now + .seconds(30)
    while breaker.snapshot.state != .closed && ContinuousClock.now < deadline {
      _ = await call()
      try await Task.sleep(for: .milliseconds(100))
    }
    #expect(breaker.snapshot.state == .closed, "closed again once the server is back")
    #expect(await call() == nil)
    await client.close()
    try await server.stop()
  }
}

/// Counts calls.
final class Counter: Sendable {
  private let count = Mutex(0)
  func add() { count.withLock { $0 += 1 } }
  var value: Int { count.withLock { $0 } }
}

/// Holds tasks until opened.
final class Gate: Sendable {
  private let opened = Mutex(false)
  func open() { opened.withLock { $0 = true } }
  func close() { opened.withLock { $0 = false } }
  var isOpen: Bool { opened.withLock { $0 } }
  func wait() async {
    while !opened.withLock({ $0 }) { try? await Task.sleep(for: .milliseconds(5)) }
  }
}

/// What the bulkhead test's tasks saw.
final class Seen: Sendable {
  let peak = Mutex((now: 0, peak: 0))
  let outcomes = Mutex<[String]>([])
}
