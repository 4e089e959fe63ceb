internal import CEpoll
internal import Glibc
internal import NIOPosix
internal import Synchronization

/// Waits for libpq sockets to become readable or writable, for the whole process, on one
/// thread of its own: a task that sent statements without blocking waits here for the answer
/// and then reads it on its own executor, so no thread sleeps per connection and no event loop
/// blocks.
///
/// Each wait is one-shot: the socket is watched until it is ready once, then forgotten.
final class SocketPoller: Sendable {
  /// The process's poller, started on first use; `nil` when epoll is unavailable.
  static let shared: SocketPoller? = SocketPoller()

  private let epoll: Int32
  private let waiters = Mutex<[Int32: CheckedContinuation<Bool, Never>]>([:])
  private let thread: NIOThreadPool

  private init?() {
    epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
    guard epoll >= 0 else { return nil }
    thread = NIOThreadPool(numberOfThreads: 1)
    thread.start()
    thread.submit { [self] _ in run() }
  }

  /// Returns once `socket` is ready as asked (or has failed or hung up: the next libpq call
  /// says which): true; false at once when it could not be watched.
  ///
  /// - Important: one wait per socket at a time (a connection is used by one task at a time).
  func ready(_ socket: Int32, readable: Bool, writable: Bool) async -> Bool {
    await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
      waiters.withLock { $0[socket] = c }
      var mask = EPOLLONESHOT.rawValue
      if readable { mask |= EPOLLIN.rawValue }
      if writable { mask |= EPOLLOUT.rawValue }
      var event = epoll_event(events: mask, data: epoll_data_t(fd: socket))
      if epoll_ctl(epoll, EPOLL_CTL_ADD, socket, &event) != 0 {
        waiters.withLock { $0.removeValue(forKey: socket) }?.resume(returning: false)
      }
    }
  }

  private func run() {
    var events = [epoll_event](repeating: epoll_event(), count: 256)
    while true {
      let count = events.withUnsafeMutableBufferPointer { epoll_wait(epoll, $0.baseAddress, Int32($0.count), -1) }
      guard count > 0 else { continue }  // EINTR
      for i in 0..<Int(count) {
        let socket = events[i].data.fd
        // Forgotten before the waiter resumes, so its next wait can watch the socket again.
        _ = epoll_ctl(epoll, EPOLL_CTL_DEL, socket, nil)
        waiters.withLock { $0.removeValue(forKey: socket) }?.resume(returning: true)
      }
    }
  }
}
