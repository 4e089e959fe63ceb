internal import Synchronization

/// Whether the relay's reader has a reason to read now: a commit is worth a read at once only
/// while a subscriber in this process waits for one; without one, the commit is noted and read
/// when a subscriber comes to wait (or at the next poll), so writes nobody is waiting for cost
/// no reads of the log.
final class ReadDemand: Sendable {
  private struct State {
    var unread = false
    var waiting = 0
  }

  private let state = Mutex(State())

  /// Something committed; true when the reader should be woken for it now.
  func commitArrived() -> Bool {
    state.withLock { s in
      if s.waiting > 0 { return true }
      s.unread = true
      return false
    }
  }

  /// A subscriber starts waiting; true when commits it may be waiting for are still unread.
  func waiterArrived() -> Bool {
    state.withLock { s in
      s.waiting += 1
      defer { s.unread = false }
      return s.unread
    }
  }

  func waiterLeft() {
    state.withLock { $0.waiting -= 1 }
  }

  /// The reader is about to read the log: whatever committed before now is covered by it.
  func readStarted() {
    state.withLock { $0.unread = false }
  }
}
