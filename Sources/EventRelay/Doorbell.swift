internal import Synchronization

/// Wakes one waiting loop: a ring while nobody waits is kept (one), so a wake is never lost
/// between a loop's check and its wait.
final class Doorbell: Sendable {
  private struct State {
    var rung = false
    var waiter: CheckedContinuation<Void, Never>?
  }

  private let state = Mutex(State())

  func ring() {
    let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
      if let w = s.waiter {
        s.waiter = nil
        return w
      }
      s.rung = true
      return nil
    }
    waiter?.resume()
  }

  /// Returns when rung (at once if rung since the last wait), after `timeout`, or when the task
  /// is cancelled.
  func wait(timeout: Duration) async {
    if state.withLock({ s in
      let r = s.rung
      s.rung = false
      return r
    }) { return }
    await withTaskGroup(of: Void.self) { group in
      group.addTask { await self.waitForRing() }
      group.addTask { try? await Task.sleep(for: timeout) }
      await group.next()
      group.cancelAll()
    }
  }

  private func waitForRing() async {
    await withTaskCancellationHandler {
      await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
        let resumeNow = state.withLock { s -> Bool in
          if s.rung || Task.isCancelled {
            s.rung = false
            return true
          }
          s.waiter = c
          return false
        }
        if resumeNow { c.resume() }
      }
    } onCancel: {
      let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
        defer { s.waiter = nil }
        return s.waiter
      }
      waiter?.resume()
    }
  }
}
