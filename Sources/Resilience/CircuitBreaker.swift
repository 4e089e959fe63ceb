internal import CoreMetrics
internal import Synchronization

/// A circuit breaker for one downstream target: closed while calls succeed; open (calls refused
/// at once) after ``Settings/failureThreshold`` consecutive failures, for
/// ``Settings/openDuration``; then half-open, letting ``Settings/halfOpenProbes`` calls through
/// at a time: a success closes it, a failure opens it again. Its state is the gauge
/// `quad_circuit_breaker_state{target}` (0 closed, 1 half-open, 2 open), and every breaker is
/// listed in ``CircuitBreakers/all``.
package final class CircuitBreaker: Sendable {
  package struct Settings: Sendable, Hashable {
    package var failureThreshold = 5
    package var openDuration: Duration = .seconds(5)
    package var halfOpenProbes = 1

    package init(failureThreshold: Int = 5, openDuration: Duration = .seconds(5), halfOpenProbes: Int = 1) {
      self.failureThreshold = max(failureThreshold, 1)
      self.openDuration = openDuration
      self.halfOpenProbes = max(halfOpenProbes, 1)
    }
  }

  package enum State: String, Sendable, Hashable {
    case closed, open, halfOpen = "half_open"
  }

  /// What a breaker looks like now, for metrics and the admin RPC.
  package struct Snapshot: Sendable, Hashable {
    package var target: String
    package var state: State
    package var consecutiveFailures: Int
    /// Calls refused while open.
    package var rejected: Int
    /// Times it opened.
    package var opened: Int
    package var failureThreshold: Int
    package var openSeconds: Double
  }

  /// Why a call was not let through.
  package struct Open: Error, Sendable, CustomStringConvertible {
    package let target: String
    /// When it will let a probe through.
    package let retryAfter: Duration
    package var description: String { "circuit breaker for \(target) is open" }
  }

  struct Inner {
    var state: State = .closed
    var failures = 0
    var openedAt: ContinuousClock.Instant?
    var probes = 0
    var rejected = 0
    var opened = 0
  }

  package let target: String
  package let settings: Settings
  private let inner = Mutex(Inner())
  private let gauge: Gauge

  package init(target: String, settings: Settings = Settings()) {
    self.target = target
    self.settings = settings
    gauge = Gauge(label: "quad_circuit_breaker_state", dimensions: [("target", target)])
    gauge.record(0)
    CircuitBreakers.shared.add(self)
  }

  /// Lets a call through (and counts it as a probe when half-open), or throws ``Open``.
  package func admit(now: ContinuousClock.Instant = .now) throws(Open) {
    let (refusal, changed): (Duration?, State?) = inner.withLock { s in
      switch s.state {
      case .closed:
        return (nil, nil)
      case .open:
        let until = s.openedAt! + settings.openDuration
        guard now >= until else {
          s.rejected += 1
          return (until - now, nil)
        }
        s.state = .halfOpen
        s.probes = 1
        return (nil, .halfOpen)
      case .halfOpen:
        guard s.probes < settings.halfOpenProbes else {
          s.rejected += 1
          return (settings.openDuration, nil)
        }
        s.probes += 1
        return (nil, nil)
      }
    }
    publish(changed)
    if let refusal { throw Open(target: target, retryAfter: refusal) }
  }

  /// Records the outcome of a call ``admit(now:)`` let through.
  package func record(success: Bool, now: ContinuousClock.Instant = .now) {
    let changed: State? = inner.withLock { s in
      let before = s.state
      if s.state == .halfOpen { s.probes = max(s.probes - 1, 0) }
      if success {
        s.failures = 0
        s.state = .closed
      } else {
        s.failures += 1
        if s.state == .halfOpen || s.failures >= settings.failureThreshold {
          if s.state != .open { s.opened += 1 }
          s.state = .open
          s.openedAt = now
        }
      }
      return s.state == before ? nil : s.state
    }
    publish(changed)
  }

  /// Runs `body` through the breaker; `isFailure` says which errors count against the target
  /// (by default all of them).
  package func run<R>(_ body: () async throws -> R, isFailure: (any Error) -> Bool = { _ in true }) async throws -> R {
    try admit()
    do {
      let result = try await body()
      record(success: true)
      return result
    } catch {
      // A caller's cancellation says nothing about the target.
      if error is CancellationError { record(success: true) } else { record(success: !isFailure(error)) }
      throw error
    }
  }

  package var snapshot: Snapshot {
    inner.withLock {
      Snapshot(
        target: target, state: $0.state, consecutiveFailures: $0.failures, rejected: $0.rejected, opened: $0.opened,
        failureThreshold: settings.failureThreshold, openSeconds: settings.openDuration / .seconds(1))
    }
  }

  /// Sets the gauge when the state changed (not on every call), to the state now (another
  /// thread may have changed it since).
  private func publish(_ changed: State?) {
    guard changed != nil else { return }
    let state = inner.withLock { $0.state }
    gauge.record(state == .closed ? 0 : state == .halfOpen ? 1 : 2)
  }
}

/// Every breaker of the process (weakly held), for the admin RPC.
package final class CircuitBreakers: Sendable {
  package static let shared = CircuitBreakers()

  private struct Weak: @unchecked Sendable { weak var breaker: CircuitBreaker? }
  private let entries = Mutex<[Weak]>([])

  func add(_ breaker: CircuitBreaker) {
    entries.withLock { all in
      all.removeAll { $0.breaker == nil }
      all.append(Weak(breaker: breaker))
    }
  }

  /// The live breakers' states, by target.
  package var all: [CircuitBreaker.Snapshot] {
    entries.withLock { $0.compactMap(\.breaker?.snapshot) }.sorted { $0.target < $1.target }
  }
}
