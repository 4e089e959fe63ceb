internal import Synchronization

/// A concurrency limit for one downstream target, so a slow neighbour cannot take every task
/// and connection: at most ``maximumConcurrent`` calls at once and ``maximumWaiting`` waiting
/// (in order); beyond that a call is refused at once with ``Full``.
package final class Bulkhead: Sendable {
  package struct Full: Error, Sendable, CustomStringConvertible {
    package let target: String
    package var description: String { "bulkhead for \(target) is full" }
  }

  struct Inner {
    var running = 0
    var waiting: [(id: Int, continuation: CheckedContinuation<Void, any Error>)] = []
    var nextID = 0
  }

  package let target: String
  package let maximumConcurrent: Int
  package let maximumWaiting: Int
  private let inner = Mutex(Inner())

  package init(target: String, maximumConcurrent: Int, maximumWaiting: Int = 0) {
    self.target = target
    self.maximumConcurrent = max(maximumConcurrent, 1)
    self.maximumWaiting = max(maximumWaiting, 0)
  }

  /// Runs `body` when a slot is free; a cancelled wait leaves the queue with CancellationError.
  package func run<R>(_ body: () async throws -> R) async throws -> R {
    try await acquire()
    defer { release() }
    return try await body()
  }

  package var running: Int { inner.withLock { $0.running } }

  private func acquire() async throws {
    enum Now { case go, wait(Int), full }
    let id = inner.withLock { s -> Now in
      if s.running < maximumConcurrent {
        s.running += 1
        return .go
      }
      guard s.waiting.count < maximumWaiting else { return .full }
      s.nextID += 1
      return .wait(s.nextID)
    }
    switch id {
    case .go: return
    case .full: throw Full(target: target)
    case .wait(let ticket):
      try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
          let cancelled = inner.withLock { s -> Bool in
            if Task.isCancelled { return true }
            s.waiting.append((ticket, c))
            return false
          }
          if cancelled { c.resume(throwing: CancellationError()) }
        }
      } onCancel: {
        let waiter = inner.withLock { s -> CheckedContinuation<Void, any Error>? in
          guard let i = s.waiting.firstIndex(where: { $0.id == ticket }) else { return nil }
          return s.waiting.remove(at: i).continuation
        }
        waiter?.resume(throwing: CancellationError())
      }
    }
  }

  private func release() {
    let next = inner.withLock { s -> CheckedContinuation<Void, any Error>? in
      if s.waiting.isEmpty {
        s.running -= 1
        return nil
      }
      return s.waiting.removeFirst().continuation  // the slot passes to the next in line
    }
    next?.resume()
  }
}
