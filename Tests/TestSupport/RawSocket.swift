public import Foundation
internal import Glibc

/// A blocking TCP connection for hostile-client tests: write any bytes, read what comes back
/// until the peer closes or a quiet period passes. Use it from a thread of its own
/// (``RawSocket/run(_:)``), never from the cooperative pool.
public final class RawSocket: @unchecked Sendable {
  private let fd: Int32

  /// Connects to 127.0.0.1:`port`.
  public init(port: Int) throws {
    fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &addr) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard rc == 0 else {
      close(fd)
      throw SocketError(what: "connect", code: errno)
    }
  }

  deinit { close(fd) }

  public struct SocketError: Error { public var what: String; public var code: Int32 }

  /// Writes all of `bytes`; returns false once the peer has closed.
  @discardableResult
  public func send(_ bytes: [UInt8]) -> Bool {
    var off = 0
    while off < bytes.count {
      let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
      if n <= 0 { return false }
      off += n
    }
    return true
  }

  /// Reads until the peer closes (returns `closed: true`) or nothing arrives for `quiet`.
  public func receive(quiet: Double = 0.5, limit: Int = 64 << 20) -> (bytes: [UInt8], closed: Bool) {
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65_536)
    while out.count < limit {
      var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
      let ready = poll(&p, 1, Int32(quiet * 1000))
      if ready < 0 && errno == EINTR { continue }  // a signal (a child exiting), not silence
      if ready <= 0 { return (out, false) }
      let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
      if n <= 0 { return (out, true) }
      out += buf[0..<n]
    }
    return (out, false)
  }

  /// Runs blocking socket work on a thread of its own.
  public static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { c in
      Thread.detachNewThread { c.resume(with: Result { try body() }) }
    }
  }
}

/// Hand-made HTTP/2 frames (RFC 9113) for clients that misbehave on purpose.
public enum RawFrames {
  public static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

  public static func frame(type: UInt8, flags: UInt8 = 0, stream: UInt32 = 0, _ payload: [UInt8] = []) -> [UInt8] {
    let n = payload.count
    return [UInt8(n >> 16 & 255), UInt8(n >> 8 & 255), UInt8(n & 255), type, flags,
      UInt8(stream >> 24 & 127), UInt8(stream >> 16 & 255), UInt8(stream >> 8 & 255), UInt8(stream & 255)] + payload
  }

  public static func u32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)] }

  public static let settings = frame(type: 4)
  public static let settingsAck = frame(type: 4, flags: 1)
  public static func ping(_ n: UInt8 = 0) -> [UInt8] { frame(type: 6, [UInt8](repeating: n, count: 8)) }
  public static func reset(_ stream: UInt32) -> [UInt8] { frame(type: 3, stream: stream, u32(8)) }
  public static func windowUpdate(_ stream: UInt32 = 0, _ increment: UInt32 = 1) -> [UInt8] { frame(type: 8, stream: stream, u32(increment)) }
  public static func data(_ stream: UInt32, _ payload: [UInt8], end: Bool = false) -> [UInt8] { frame(type: 0, flags: end ? 1 : 0, stream: stream, payload) }

  /// HPACK integer with an `n`-bit prefix.
  static func integer(_ value: Int, prefix n: Int, flags: UInt8 = 0) -> [UInt8] {
    let max = (1 << n) - 1
    if value < max { return [flags | UInt8(value)] }
    var out = [flags | UInt8(max)]
    var v = value - max
    while v >= 128 {
      out.append(UInt8(v & 127) | 128)
      v >>= 7
    }
    return out + [UInt8(v)]
  }

  /// A HEADERS frame (END_HEADERS) with literal, unindexed, non-Huffman fields.
  public static func headers(_ stream: UInt32, _ fields: [(String, String)], end: Bool = false) -> [UInt8] {
    var block: [UInt8] = []
    for (name, value) in fields {
      block.append(0)
      block += integer(name.utf8.count, prefix: 7) + Array(name.utf8)
      block += integer(value.utf8.count, prefix: 7) + Array(value.utf8)
    }
    return frame(type: 1, flags: 4 | (end ? 1 : 0), stream: stream, block)
  }

  /// A gRPC POST to `path`.
  public static func request(_ stream: UInt32, path: String, extra: [(String, String)] = [], end: Bool = false) -> [UInt8] {
    headers(stream, [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "localhost"),
      ("content-type", "application/grpc"), ("te", "trailers")] + extra, end: end)
  }

  /// The frames in `bytes`: type, flags, stream and payload of each complete one.
  public static func parse(_ bytes: [UInt8]) -> [(type: UInt8, flags: UInt8, stream: UInt32, payload: [UInt8])] {
    var out: [(UInt8, UInt8, UInt32, [UInt8])] = []
    var i = 0
    while i + 9 <= bytes.count {
      let n = Int(bytes[i]) << 16 | Int(bytes[i + 1]) << 8 | Int(bytes[i + 2])
      guard i + 9 + n <= bytes.count else { break }
      let stream = UInt32(bytes[i + 5] & 127) << 24 | UInt32(bytes[i + 6]) << 16 | UInt32(bytes[i + 7]) << 8 | UInt32(bytes[i + 8])
      out.append((bytes[i + 3], bytes[i + 4], stream, Array(bytes[i + 9..<i + 9 + n])))
      i += 9 + n
    }
    return out
  }

  /// The error code of the GOAWAY among `bytes`, if one came.
  public static func goAwayCode(_ bytes: [UInt8]) -> UInt32? {
    for f in parse(bytes) where f.type == 7 && f.payload.count >= 8 {
      return UInt32(f.payload[4]) << 24 | UInt32(f.payload[5]) << 16 | UInt32(f.payload[6]) << 8 | UInt32(f.payload[7])
    }
    return nil
  }
}

/// This process's resident memory, in bytes (Linux /proc/self/statm).
public func residentMemory() -> Int {
  guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
  let fields = text.split(separator: " ")
  guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
  return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// A TCP listener on 127.0.0.1 that accepts one connection and only reads: a peer that went
/// silent, for keepalive tests. Use it from a thread of its own (``RawSocket/run(_:)``).
public final class RawListener: @unchecked Sendable {
  private let fd: Int32
  /// The port it listens on.
  public let port: Int

  public init() throws {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    self.fd = fd
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &addr) { p in
      p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
        bind(fd, sa, len) == 0 && listen(fd, 4) == 0 && getsockname(fd, sa, &len) == 0
      }
    }
    guard ok else {
      close(fd)
      throw RawSocket.SocketError(what: "listen", code: errno)
    }
    port = Int(UInt16(bigEndian: addr.sin_port))
  }

  deinit { close(fd) }

  /// Accepts one connection and reads until the peer closes it or `seconds` pass; returns what
  /// arrived and whether the peer closed.
  public func acceptAndRead(seconds: Double) -> (bytes: [UInt8], closed: Bool) {
    // The wait for the connection is generous: on a loaded machine the client's task may start
    // connecting many seconds late.
    var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    var ready: Int32
    repeat { ready = poll(&p, 1, Int32(max(seconds, 120) * 1000)) } while ready < 0 && errno == EINTR
    guard ready > 0 else { return ([], false) }
    let c = accept(fd, nil, nil)
    guard c >= 0 else { return ([], false) }
    defer { close(c) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65_536)
    let end = Date().addingTimeInterval(max(seconds, 60))
    while Date() < end {
      var q = pollfd(fd: c, events: Int16(POLLIN), revents: 0)
      let ready = poll(&q, 1, 50)
      if ready < 0 && errno == EINTR { continue }  // a signal (a child exiting), not an error
      guard ready >= 0 else { break }
      if q.revents == 0 { continue }
      let n = buf.withUnsafeMutableBytes { recv(c, $0.baseAddress, $0.count, 0) }
      if n <= 0 { return (out, true) }
      out += buf[0..<n]
    }
    return (out, false)
  }
}
