@testable internal import Postgres
internal import Testing

/// The pool's decisions, without connections or threads.
@Suite("Pool state machine")
struct PoolStateMachineTests {
  @Test("Connections open up to the maximum, then callers wait in order and get returned ones")
  func fillAndWait() {
    var m = PoolStateMachine(maximumConnections: 2)
    #expect(m.lease(waiter: 1) == .connect)
    #expect(m.lease(waiter: 2) == .connect)
    #expect(m.lease(waiter: 3) == .wait)
    #expect(m.connected(10) == .hand(connection: 10, waiter: 1))
    #expect(m.connected(11) == .hand(connection: 11, waiter: 2))
    let (back, reconnect) = m.release(10, healthy: true)
    #expect(back == .hand(connection: 10, waiter: 3))
    #expect(!reconnect)
    #expect(m.release(10, healthy: true).0 == .keepIdle)
    #expect(m.lease(waiter: 4) == .use(10))
  }

  @Test("A broken connection is closed and replaced while someone waits")
  func brokenReplaced() {
    var m = PoolStateMachine(maximumConnections: 1)
    #expect(m.lease(waiter: 1) == .connect)
    #expect(m.connected(5) == .hand(connection: 5, waiter: 1))
    #expect(m.lease(waiter: 2) == .wait)
    let (action, reconnect) = m.release(5, healthy: false)
    #expect(action == .close(5))
    #expect(reconnect)
    #expect(m.connected(6) == .hand(connection: 6, waiter: 2))
  }

  @Test("A cancelled waiter leaves the line; a failed connect fails the first waiter")
  func cancelAndFail() {
    var m = PoolStateMachine(maximumConnections: 1)
    #expect(m.lease(waiter: 1) == .connect)
    #expect(m.lease(waiter: 2) == .wait)
    let first = m.cancel(waiter: 2)
    let again = m.cancel(waiter: 2)
    #expect(first)
    #expect(!again)
    #expect(m.connectFailed() == 1)
    #expect(m.lease(waiter: 3) == .connect)
  }

  @Test("Shutdown closes idle connections, fails waiters, and closes leased ones as they return")
  func shutdown() {
    var m = PoolStateMachine(maximumConnections: 2)
    _ = m.lease(waiter: 1)
    _ = m.connected(1)
    _ = m.lease(waiter: 2)
    _ = m.connected(2)
    _ = m.release(2, healthy: true)
    _ = m.lease(waiter: 3)  // takes 2 again
    #expect(m.lease(waiter: 4) == .wait)
    let (close, fail) = m.shutdown()
    #expect(close == [])
    #expect(fail == [4])
    #expect(m.release(1, healthy: true).0 == .close(1))
    #expect(m.lease(waiter: 5) == .fail)
  }
}
