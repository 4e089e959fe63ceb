/// The connection pool's decisions, pure: who gets which connection, when to open or close one,
/// who waits. No locks, no I/O, no clocks; ``PostgresPool`` executes its actions.
///
/// Connections and waiters are named by the integers the shell gives them.
struct PoolStateMachine {
  /// What the shell does after a lease request.
  enum LeaseAction: Equatable {
    /// Use this idle connection.
    case use(Int)
    /// Open a new connection for this waiter (the pool has room).
    case connect
    /// Wait: every connection is in use and the pool is full.
    case wait
    /// The pool is shutting down.
    case fail
  }

  /// What the shell does after a connection comes back or a new one opens.
  enum HandOffAction: Equatable {
    /// Give connection `connection` to waiter `waiter`.
    case hand(connection: Int, waiter: Int)
    /// Keep it idle.
    case keepIdle
    /// Close it (unhealthy, or the pool is shutting down).
    case close(Int)
  }

  let maximumConnections: Int
  private(set) var idle: [Int] = []
  private(set) var leased: Set<Int> = []
  /// Connections being opened.
  private(set) var connecting = 0
  /// Waiters in arrival order.
  private(set) var waiters: [Int] = []
  private(set) var shuttingDown = false

  init(maximumConnections: Int) {
    precondition(maximumConnections >= 1, "a pool needs room for one connection")
    self.maximumConnections = maximumConnections
  }

  private var total: Int { idle.count + leased.count + connecting }

  /// Waiter `waiter` wants a connection.
  mutating func lease(waiter: Int) -> LeaseAction {
    guard !shuttingDown else { return .fail }
    if let c = idle.popLast() {
      leased.insert(c)
      return .use(c)
    }
    waiters.append(waiter)
    if total < maximumConnections {
      connecting += 1
      return .connect
    }
    return .wait
  }

  /// A connection opened: the first waiter gets it, or it stays idle.
  mutating func connected(_ connection: Int) -> HandOffAction {
    connecting -= 1
    return offer(connection)
  }

  /// Opening a connection failed: returns the waiter that should fail with the error (the first
  /// in line), if any.
  mutating func connectFailed() -> Int? {
    connecting -= 1
    return waiters.isEmpty ? nil : waiters.removeFirst()
  }

  /// A leased connection comes back; `healthy` false means it broke and must be closed (and a
  /// waiter gets a new one: the second action, `connect`, when someone still waits).
  mutating func release(_ connection: Int, healthy: Bool) -> (HandOffAction, connectForWaiter: Bool) {
    leased.remove(connection)
    guard healthy else {
      var reconnect = false
      if !shuttingDown, !waiters.isEmpty, total < maximumConnections {
        connecting += 1
        reconnect = true
      }
      return (.close(connection), reconnect)
    }
    return (offer(connection), false)
  }

  private mutating func offer(_ connection: Int) -> HandOffAction {
    if shuttingDown { return .close(connection) }
    if !waiters.isEmpty {
      let w = waiters.removeFirst()
      leased.insert(connection)
      return .hand(connection: connection, waiter: w)
    }
    idle.append(connection)
    return .keepIdle
  }

  /// Waiter `waiter` gave up (cancelled or past its deadline): true when it was still waiting.
  mutating func cancel(waiter: Int) -> Bool {
    guard let i = waiters.firstIndex(of: waiter) else { return false }
    waiters.remove(at: i)
    return true
  }

  /// Stops the pool: returns the idle connections to close and the waiters to fail; leased
  /// connections close as they come back.
  mutating func shutdown() -> (close: [Int], fail: [Int]) {
    shuttingDown = true
    let out = (idle, waiters)
    idle = []
    waiters = []
    return out
  }
}
