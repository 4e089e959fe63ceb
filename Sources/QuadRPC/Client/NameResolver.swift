internal import GRPCWire
internal import Foundation
internal import Glibc
internal import NIOCore

/// Turns a target into addresses: `host:port` or `dns:///host:port` through the system resolver
/// (every A and AAAA record), or a static list `ipv4:1.2.3.4:50051,5.6.7.8:50051` /
/// `ipv6:[::1]:50051`.
enum NameResolver {
  struct LookupError: Error { var reason: String }

  struct Target: Sendable, Hashable {
    /// Names to resolve (or literal addresses), with ports.
    var endpoints: [Endpoint]
    /// The `:authority` for requests.
    var authority: String
  }

  struct Endpoint: Sendable, Hashable {
    var host: String
    var port: Int
  }

  static func parse(_ target: String) throws(RPCError) -> Target {
    func endpoint(_ s: Substring) throws(RPCError) -> Endpoint {
      var host: Substring
      var port: Substring
      if s.hasPrefix("[") {
        guard let close = s.firstIndex(of: "]") else { throw bad(target) }
        host = s[s.index(after: s.startIndex)..<close]
        let rest = s[s.index(after: close)...]
        guard rest.hasPrefix(":") else { throw bad(target) }
        port = rest.dropFirst()
      } else {
        guard let colon = s.lastIndex(of: ":") else { throw bad(target) }
        host = s[..<colon]
        port = s[s.index(after: colon)...]
      }
      guard !host.isEmpty, let p = Int(port), (1...65_535).contains(p) else { throw bad(target) }
      return Endpoint(host: String(host), port: p)
    }
    for scheme in ["ipv4:", "ipv6:"] where target.hasPrefix(scheme) {
      var list: [Endpoint] = []
      for part in target.dropFirst(scheme.count).split(separator: ",") { list.append(try endpoint(part)) }
      guard let first = list.first else { throw bad(target) }
      return Target(endpoints: list, authority: first.host.contains(":") ? "[\(first.host)]:\(first.port)" : "\(first.host):\(first.port)")
    }
    var rest = Substring(target)
    if rest.hasPrefix("dns:") {
      rest = rest.dropFirst(4)
      if rest.hasPrefix("//") {
        rest = rest.dropFirst(2)
        guard let slash = rest.firstIndex(of: "/") else { throw bad(target) }
        rest = rest[rest.index(after: slash)...]  // the DNS authority part is not supported; ignored
      }
    }
    let e = try endpoint(rest)
    return Target(endpoints: [e], authority: String(rest))
  }

  private static func bad(_ target: String) -> RPCError {
    RPCError(code: .invalidArgument, message: "target \"\(target)\" is not host:port, dns:///host:port, ipv4:addr:port[,...] or ipv6:[addr]:port[,...]")
  }

  /// Resolves every endpoint (getaddrinfo, on a thread of its own), keeping order and dropping
  /// duplicates.
  static func resolve(_ target: Target) async throws(RPCError) -> [SocketAddress] {
    // Literal addresses need no lookup.
    let literal = target.endpoints.compactMap { try? SocketAddress(ipAddress: $0.host, port: $0.port) }
    if literal.count == target.endpoints.count { return literal }
    let result: Result<[SocketAddress], RPCError> = await withCheckedContinuation { c in
      // A thread of its own: getaddrinfo blocks, and must not hold up Dispatch's or Swift's pools.
      Thread.detachNewThread {
        var out: [SocketAddress] = []
        var lastError = ""
        for e in target.endpoints {
          switch lookup(e.host, e.port) {
          case .success(let addresses):
            for a in addresses where !out.contains(a) { out.append(a) }
          case .failure(let why):
            lastError = why.reason
          }
        }
        if out.isEmpty {
          c.resume(returning: .failure(RPCError(code: .unavailable, message: "cannot resolve \(target.authority): \(lastError)")))
        } else {
          c.resume(returning: .success(out))
        }
      }
    }
    return try result.get()
  }

  private static func lookup(_ host: String, _ port: Int) -> Result<[SocketAddress], LookupError> {
    var hints = addrinfo()
    hints.ai_family = AF_UNSPEC
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    var list: UnsafeMutablePointer<addrinfo>?
    let rc = getaddrinfo(host, String(port), &hints, &list)
    guard rc == 0, let list else {
      return .failure(LookupError(reason: String(cString: gai_strerror(rc))))
    }
    defer { freeaddrinfo(list) }
    var out: [SocketAddress] = []
    var p: UnsafeMutablePointer<addrinfo>? = list
    while let info = p {
      if let sa = info.pointee.ai_addr {
        switch info.pointee.ai_family {
        case AF_INET:
          let a = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee }
          out.append(SocketAddress(a, host: host))
        case AF_INET6:
          let a = sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee }
          out.append(SocketAddress(a, host: host))
        default: break
        }
      }
      p = info.pointee.ai_next
    }
    return .success(out)
  }
}
