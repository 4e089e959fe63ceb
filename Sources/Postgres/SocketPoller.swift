internal import CEpoll
internal import Glibc
internal import NIOPosix
internal import Synchronization

/// Waits for libpq sockets to become readable or writable, for the whole process, on one
/// thread of its own: a statement sent without blocking is finished there when its answer
/// arrives, so no thread sleeps per connection and no event loop waits.
///
/// A socket is watched for one operation at a time (`EPOLLONESHOT`): its handler runs on the
/// poller's thread each time the socket is ready, says what to wait for next or that it is done,
/// and is forgotten when done.
final class SocketPoller: Sendable {
  /// What a handler wants after a readiness: to wait again, or to stop, then run `finish`
  /// (once the socket is no longer watched, so `finish` may watch it again).
  enum Next {
    case wait(readable: Bool, writable: Bool)
    case done(finish: @Sendable () -> Void)
  }

  typealias Handler = @Sendable () -> Next

  /// The process's poller, started on first use; `nil` when epoll is unavailable.
  static let shared: SocketPoller? = SocketPoller()

  private let epoll: Int32
  private let handlers = Mutex<[Int32: Handler]>([:])
  private let thread: NIOThreadPool

  private init?() {
    epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
    guard epoll >= 0 else { return nil }
    thread = NIOThreadPool(numberOfThreads: 1)
    thread.start()
    thread.submit { [self] _ in run() }
  }

  /// Calls `handler` on the poller's thread whenever `socket` is ready as asked, until it
  /// answers `.done`. False when the socket could not be watched (nothing will be called).
  func watch(_ socket: Int32, readable: Bool, writable: Bool, _ handler: @escaping Handler) -> Bool {
    handlers.withLock { $0[socket] = handler }
    var event = epoll_event(events: Self.mask(readable: readable, writable: writable), data: epoll_data_t(fd: socket))
    guard epoll_ctl(epoll, EPOLL_CTL_ADD, socket, &event) == 0 else {
      handlers.withLock { $0[socket] = nil }
      return false
    }
    return true
  }

  private static func mask(readable: Bool, writable: Bool) -> UInt32 {
    var mask = EPOLLONESHOT.rawValue
    if readable { mask |= EPOLLIN.rawValue }
    if writable { mask |= EPOLLOUT.rawValue }
    return mask
  }

  private func run() {
    var events = [epoll_event](repeating: epoll_event(), count: 64)
    while true {
      let count = events.withUnsafeMutableBufferPointer { epoll_wait(epoll, $0.baseAddress, Int32($0.count), -1) }
      guard count > 0 else { continue }  // EINTR
      for i in 0..<Int(count) {
        let socket = events[i].data.fd
        guard let handler = handlers.withLock({ $0[socket] }) else { continue }
        switch handler() {
        case .wait(let readable, let writable):
          var event = epoll_event(events: Self.mask(readable: readable, writable: writable), data: epoll_data_t(fd: socket))
          _ = epoll_ctl(epoll, EPOLL_CTL_MOD, socket, &event)
        case .done(let finish):
          handlers.withLock { $0[socket] = nil }
          _ = epoll_ctl(epoll, EPOLL_CTL_DEL, socket, nil)
          finish()
        }
      }
    }
  }
}
