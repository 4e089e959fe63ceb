internal import Dispatch
internal import Synchronization

/// Wakes one waiting loop: a ring while nobody waits is kept (one), so a wake is never lost
/// between a loop's check and its wait. A wait is one continuation and, with a timeout, one
/// timer: no child tasks, so a loop woken a thousand times a second costs a thousand wake-ups,
/// not three thousand task starts.
final class Doorbell: Sendable {
  private struct Waiter {
    let id: Int
    let continuation: CheckedContinuation<Void, Never>
    let timer: Timer?
  }

  /// A dispatch timer (thread-safe, though not marked `Sendable`).
  private struct Timer: @unchecked Sendable {
    let source: any DispatchSourceTimer
    func activate() { source.activate() }
    func cancel() { source.cancel() }
  }

  private struct State {
    var rung = false
    var waiter: Waiter?
    var nextID = 0
  }

  private let state = Mutex(State())

  func ring() {
    let waiter = state.withLock { s -> Waiter? in
      if let w = s.waiter {
        s.waiter = nil
        return w
      }
      s.rung = true
      return nil
    }
    if let waiter { Self.wake(waiter) }
  }

  /// Returns when rung (at once if rung since the last wait), after `timeout` (`nil`: none),
  /// or when the task is cancelled.
  func wait(timeout: Duration?) async {
    let id = state.withLock { s -> Int? in
      if s.rung {
        s.rung = false
        return nil
      }
      s.nextID += 1
      return s.nextID
    }
    guard let id else { return }
    await withTaskCancellationHandler {
      await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
        let timer = timeout.map { timeout -> Timer in
          let source = DispatchSource.makeTimerSource(queue: .global())
          let (seconds, attoseconds) = timeout.components
          source.schedule(deadline: .now() + .nanoseconds(Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)))
          source.setEventHandler { [weak self] in self?.timeOut(id) }
          return Timer(source: source)
        }
        // Activated under the lock, once the waiter is in place: a timer that fires at once
        // finds it. (A dispatch source must be activated before it is released.)
        let resumeNow = state.withLock { s -> Bool in
          timer?.activate()
          if s.rung || Task.isCancelled {
            s.rung = false
            return true
          }
          s.waiter = Waiter(id: id, continuation: c, timer: timer)
          return false
        }
        if resumeNow {
          timer?.cancel()
          c.resume()
        }
      }
    } onCancel: {
      timeOut(id)
    }
  }

  /// Lets the wait `id` go if it is still waiting (its timer fired, or its task was cancelled).
  private func timeOut(_ id: Int) {
    let waiter = state.withLock { s -> Waiter? in
      guard let w = s.waiter, w.id == id else { return nil }
      s.waiter = nil
      return w
    }
    if let waiter { Self.wake(waiter) }
  }

  private static func wake(_ waiter: Waiter) {
    waiter.timer?.cancel()
    waiter.continuation.resume()
  }
}
