internal import Dispatch
internal import NIOPosix
internal import Synchronization

/// A bounded set of PostgreSQL connections shared by many tasks: a task leases one for the
/// length of a closure, others wait their turn (first come, first served); a connection that
/// broke is closed on return and replaced on demand.
///
/// ```swift
/// let pool = PostgresPool(conninfo: url, maximumConnections: 10)
/// let n = try await pool.withConnection { db in try await db.query("SELECT count(*) AS n FROM students", named: "students.count") }
/// ```
///
/// Decisions are made by ``PoolStateMachine``; this shell opens and closes connections on their
/// own threads (never an event loop) and resumes waiters.
package final class PostgresPool: Sendable {
  package let conninfo: String
  package let maximumConnections: Int
  /// Session parameters set on every new connection.
  package let sessionSettings: [(String, String)]

  /// What every pool sets unless told otherwise: a transaction left idle is ended after a
  /// minute, so one stuck writer cannot stall the event log's readers for ever (they wait for
  /// every transaction that holds a position below their fence).
  package static let defaultSessionSettings = [("idle_in_transaction_session_timeout", "60s")]

  private struct State {
    var machine: PoolStateMachine
    var connections: [Int: PostgresConnection] = [:]
    var waiters: [Int: CheckedContinuation<(Int, PostgresConnection), any Error>] = [:]
    var nextID = 0
  }

  private let state: Mutex<State>

  package init(conninfo: String, maximumConnections: Int = 10, sessionSettings: [(String, String)] = defaultSessionSettings) {
    self.conninfo = conninfo
    self.maximumConnections = maximumConnections
    self.sessionSettings = sessionSettings
    state = Mutex(State(machine: PoolStateMachine(maximumConnections: maximumConnections)))
  }

  /// Runs `body` with a connection of its own; the connection returns to the pool after it.
  ///
  /// - Throws: what `body` threw; ``PostgresError`` `.connection` when no connection could be
  ///   opened, `.cancelled` when the task was cancelled while waiting.
  ///
  /// - Parameter cancellable: whether cancelling the task stops the wait for a connection;
  ///   `false` for work done on behalf of other tasks too (a batch of their writes).
  package func withConnection<R: Sendable>(cancellable: Bool = true, _ body: (PostgresConnection) async throws -> R) async throws -> R {
    let (id, connection) = try await lease(cancellable: cancellable)
    let result: Result<R, any Error>
    do {
      result = .success(try await body(connection))
    } catch {
      result = .failure(error)
    }
    release(id, healthy: connection.isHealthy)
    return try result.get()
  }

  /// How many connections are open, leased, and waited for (for metrics and tests).
  package var counts: (open: Int, leased: Int, waiting: Int) {
    state.withLock { ($0.connections.count, $0.machine.leased.count, $0.machine.waiters.count) }
  }

  /// Closes idle connections, fails waiters; leased connections close as they come back.
  package func shutdown() {
    let (close, fail) = state.withLock { s -> ([PostgresConnection], [CheckedContinuation<(Int, PostgresConnection), any Error>]) in
      let (c, f) = s.machine.shutdown()
      let conns = c.compactMap { s.connections.removeValue(forKey: $0) }
      let ws = f.compactMap { s.waiters.removeValue(forKey: $0) }
      return (conns, ws)
    }
    for w in fail { w.resume(throwing: PostgresError(.connection, "the pool is shutting down")) }
    for c in close { c.closeSoon() }
  }

  // MARK: Shell

  /// Waits for a connection; `cancellable: false` waits its turn even when the task is cancelled.
  private func lease(cancellable: Bool) async throws -> (Int, PostgresConnection) {
    let waiter = state.withLock { s -> Int in
      s.nextID += 1
      return s.nextID
    }
    guard cancellable else { return try await waitForConnection(waiter, cancellable: false) }
    return try await withTaskCancellationHandler {
      try await waitForConnection(waiter, cancellable: true)
    } onCancel: {
      let cancelled = state.withLock { s -> CheckedContinuation<(Int, PostgresConnection), any Error>? in
        guard s.machine.cancel(waiter: waiter) else { return nil }
        return s.waiters.removeValue(forKey: waiter)
      }
      cancelled?.resume(throwing: PostgresError(.cancelled, "cancelled while waiting for a connection"))
    }
  }

  private func waitForConnection(_ waiter: Int, cancellable: Bool) async throws -> (Int, PostgresConnection) {
    try await withCheckedThrowingContinuation { (c: CheckedContinuation<(Int, PostgresConnection), any Error>) in
      enum Next { case use(Int, PostgresConnection), wait(connect: Bool), fail(PostgresError, connect: Bool) }
      let next = state.withLock { s -> Next in
        let action = s.machine.lease(waiter: waiter)
        switch action {
        case .use(let id): return .use(id, s.connections[id]!)
        case .fail: return .fail(PostgresError(.connection, "the pool is shutting down"), connect: false)
        case .connect, .wait:
          // Cancelled before it could wait: leave the line at once (a connection already on
          // its way still opens, for the next caller).
          if cancellable, Task.isCancelled, s.machine.cancel(waiter: waiter) {
            return .fail(PostgresError(.cancelled, "cancelled while waiting for a connection"), connect: action == .connect)
          }
          s.waiters[waiter] = c
          return .wait(connect: action == .connect)
        }
      }
      switch next {
      case .use(let id, let connection): c.resume(returning: (id, connection))
      case .fail(let e, let connect):
        c.resume(throwing: e)
        if connect { open() }
      case .wait(let connect):
        if connect { open() }
      }
    }
  }

  /// Opens one connection on a thread of its own and hands it to the first waiter.
  private func open() {
    let thread = NIOThreadPool(numberOfThreads: 1)
    thread.start()
    thread.submit { [self] _ in
      do {
        let connection = try PostgresConnection.connectBlocking(conninfo, threadPool: thread)
        do {
          try connection.configureBlocking(sessionSettings)
        } catch {
          connection.closeBlocking()
          throw error
        }
        handOff(connection)
      } catch {
        thread.shutdownGracefully(queue: .global()) { _ in }
        let failed = state.withLock { s in s.machine.connectFailed().flatMap { s.waiters.removeValue(forKey: $0) } }
        failed?.resume(throwing: error)
      }
    }
  }

  private func handOff(_ connection: PostgresConnection) {
    let (action, waiter, id) = state.withLock { s -> (PoolStateMachine.HandOffAction, CheckedContinuation<(Int, PostgresConnection), any Error>?, Int) in
      s.nextID += 1
      let id = s.nextID
      s.connections[id] = connection
      let action = s.machine.connected(id)
      if case .hand(_, let w) = action { return (action, s.waiters.removeValue(forKey: w), id) }
      if case .close = action { s.connections[id] = nil }
      return (action, nil, id)
    }
    switch action {
    case .hand: waiter?.resume(returning: (id, connection))
    case .close: connection.closeSoon()
    case .keepIdle: break
    }
  }

  private func release(_ id: Int, healthy: Bool) {
    let (action, reconnect, waiter, closing) = state.withLock { s -> (PoolStateMachine.HandOffAction, Bool, CheckedContinuation<(Int, PostgresConnection), any Error>?, PostgresConnection?) in
      let (action, reconnect) = s.machine.release(id, healthy: healthy)
      switch action {
      case .hand(_, let w): return (action, reconnect, s.waiters.removeValue(forKey: w), nil)
      case .close(let c): return (action, reconnect, nil, s.connections.removeValue(forKey: c))
      case .keepIdle: return (action, reconnect, nil, nil)
      }
    }
    if case .hand = action, let waiter, let connection = state.withLock({ $0.connections[id] }) {
      waiter.resume(returning: (id, connection))
    }
    if let closing { closing.closeSoon() }
    if reconnect { open() }
  }
}
