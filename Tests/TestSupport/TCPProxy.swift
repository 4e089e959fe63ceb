internal import Foundation
internal import Glibc

/// A TCP proxy on 127.0.0.1 that a test controls, for network faults: it forwards each
/// connection to a TCP port or a Unix socket; ``cut()`` drops every connection and refuses new
/// ones until ``restore()``. Its threads are its own, never the cooperative pool's.
public final class TCPProxy: @unchecked Sendable {
  public enum Upstream: Sendable {
    case tcp(port: Int)
    case unix(path: String)
  }

  /// The port it listens on.
  public let port: Int
  private let listener: Int32
  private let upstream: Upstream
  private let lock = NSLock()
  private var open: Set<Int32> = []
  private var isCut = false
  private var stopped = false

  public init(to upstream: Upstream) throws {
    self.upstream = upstream
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var one: Int32 = 1
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &addr) { p in
      p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
        bind(fd, sa, len) == 0 && listen(fd, 64) == 0 && getsockname(fd, sa, &len) == 0
      }
    }
    guard ok else {
      close(fd)
      throw RawSocket.SocketError(what: "proxy listen", code: errno)
    }
    listener = fd
    port = Int(UInt16(bigEndian: addr.sin_port))
    Thread.detachNewThread { [self] in acceptLoop() }
  }

  /// Drops every connection and refuses new ones (accepted, then closed at once).
  public func cut() {
    lock.lock()
    isCut = true
    for fd in open { shutdown(fd, Int32(SHUT_RDWR)) }
    lock.unlock()
  }

  /// Forwards again.
  public func restore() {
    lock.lock()
    isCut = false
    lock.unlock()
  }

  /// Stops listening and drops everything.
  public func stop() {
    cut()
    lock.lock()
    stopped = true
    lock.unlock()
  }

  private var state: (cut: Bool, stopped: Bool) {
    lock.lock()
    defer { lock.unlock() }
    return (isCut, stopped)
  }

  private func acceptLoop() {
    defer { close(listener) }
    while !state.stopped {
      var p = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
      guard poll(&p, 1, 200) > 0 else { continue }
      let client = accept(listener, nil, nil)
      guard client >= 0 else { continue }
      if state.cut {
        close(client)
        continue
      }
      let server = connectUpstream()
      guard server >= 0 else {
        close(client)
        continue
      }
      lock.lock()
      open.insert(client)
      open.insert(server)
      lock.unlock()
      Thread.detachNewThread { [self] in pump(client, server) }
    }
  }

  private func connectUpstream() -> Int32 {
    switch upstream {
    case .tcp(let port):
      let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
      var addr = sockaddr_in()
      addr.sin_family = sa_family_t(AF_INET)
      addr.sin_port = in_port_t(UInt16(port).bigEndian)
      addr.sin_addr.s_addr = inet_addr("127.0.0.1")
      let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
      if rc != 0 { close(fd); return -1 }
      return fd
    case .unix(let path):
      let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
      var addr = sockaddr_un()
      addr.sun_family = sa_family_t(AF_UNIX)
      let bytes = Array(path.utf8)
      guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { close(fd); return -1 }
      withUnsafeMutableBytes(of: &addr.sun_path) { raw in
        for (i, b) in bytes.enumerated() { raw[i] = b }
        raw[bytes.count] = 0
      }
      let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
      if rc != 0 { close(fd); return -1 }
      return fd
    }
  }

  /// Copies both ways until either side ends, then closes both.
  private func pump(_ a: Int32, _ b: Int32) {
    var buffer = [UInt8](repeating: 0, count: 65_536)
    loop: while true {
      var fds = [pollfd(fd: a, events: Int16(POLLIN), revents: 0), pollfd(fd: b, events: Int16(POLLIN), revents: 0)]
      let ready = poll(&fds, 2, 1000)
      if ready < 0 && errno == EINTR { continue }
      guard ready >= 0 else { break }
      for (i, f) in fds.enumerated() where f.revents != 0 {
        let from = i == 0 ? a : b
        let to = i == 0 ? b : a
        let n = buffer.withUnsafeMutableBytes { recv(from, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break loop }
        var sent = 0
        while sent < n {
          let m = buffer[sent..<n].withUnsafeBytes { send(to, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
          if m <= 0 { break loop }
          sent += m
        }
      }
    }
    lock.lock()
    open.remove(a)
    open.remove(b)
    close(a)
    close(b)
    lock.unlock()
  }
}
