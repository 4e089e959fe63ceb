internal import GRPCWire
internal import NIOCore
internal import NIOPosix
internal import NIOSSL
internal import Synchronization
internal import HTTP2Session

/// One open HTTP/2 connection to a server, usable from any task: calls hop onto its event loop.
struct ClientConnection: Sendable {
  let channel: any Channel
  let handler: NIOLoopBound<ClientConnectionHandler>
  let draining: DrainFlag

  var loop: any EventLoop { channel.eventLoop }

  /// Runs `body` on the connection's event loop with its handler.
  func onLoop<R: Sendable>(_ body: @escaping @Sendable (ClientConnectionHandler) throws -> R) async throws -> R {
    let handler = self.handler
    return try await loop.submit { try body(handler.value) }.get()
  }
}

/// Set once the connection stops taking new calls (GOAWAY or close).
final class DrainFlag: Sendable {
  private let value = Atomic(false)
  func set() { value.store(true, ordering: .relaxed) }
  var isSet: Bool { value.load(ordering: .relaxed) }
}

/// The connection to one resolved address: connects on demand, keeps the connection while it is
/// usable, and after a failure waits out an exponential backoff with jitter before trying again
/// (gRPC's connection-backoff rules: 1 s initial, ×1.6, ±20 %, at most 120 s).
final class Subchannel: Sendable {
  enum Phase {
    case idle
    case connecting([CheckedContinuation<ClientConnection, any Error>])
    case ready(ClientConnection)
    case backingOff(until: ContinuousClock.Instant, error: RPCError)
  }

  private struct State {
    var phase: Phase = .idle
    var failures = 0
  }

  let address: SocketAddress
  private let state = Mutex(State())
  private let group: any EventLoopGroup
  private let settings: ClientSettings

  init(address: SocketAddress, group: any EventLoopGroup, settings: ClientSettings) {
    self.address = address
    self.group = group
    self.settings = settings
  }

  /// The ready connection, if there is one (no connecting).
  var readyConnection: ClientConnection? {
    state.withLock { s in
      if case .ready(let c) = s.phase, !c.draining.isSet { return c }
      return nil
    }
  }

  /// A ready connection: the current one, or a new one. Fails fast with UNAVAILABLE while
  /// backing off after a failed attempt.
  func connection() async throws -> ClientConnection {
    enum Next { case have(ClientConnection), fail(RPCError), wait, connect }
    return try await withCheckedThrowingContinuation { (c: CheckedContinuation<ClientConnection, any Error>) in
      let next = state.withLock { s -> Next in
        switch s.phase {
        case .ready(let conn) where !conn.draining.isSet:
          return .have(conn)
        case .connecting(var waiters):
          waiters.append(c)
          s.phase = .connecting(waiters)
          return .wait
        case .backingOff(let until, let error) where ContinuousClock.now < until:
          return .fail(error)
        default:
          s.phase = .connecting([c])
          return .connect
        }
      }
      switch next {
      case .have(let conn): c.resume(returning: conn)
      case .fail(let e): c.resume(throwing: e)
      case .wait: break
      case .connect: startConnecting()
      }
    }
  }

  /// Starts connecting if idle (or done backing off), without waiting: round_robin keeps every
  /// address connected.
  func connectInBackground() {
    let start = state.withLock { s -> Bool in
      switch s.phase {
      case .idle:
        s.phase = .connecting([])
        return true
      case .backingOff(let until, _) where ContinuousClock.now >= until:
        s.phase = .connecting([])
        return true
      default:
        return false
      }
    }
    if start { startConnecting() }
  }

  private func startConnecting() {
    let address = self.address
    let settings = self.settings
    let bootstrap = ClientBootstrap(group: group)
      .channelOption(.socketOption(.tcp_nodelay), value: 1)
      .connectTimeout(.seconds(20))
    let draining = DrainFlag()
    weak let weakSelf = self
    let tls = settings.tls
    let connect = bootstrap.channelInitializer { channel in
      channel.eventLoop.makeCompletedFuture {
        if let tls {
          try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls.context, serverHostname: tls.serverName))
        }
        let handler = try ClientConnectionHandler(settings: settings, tls: tls != nil) {
          draining.set()
          weakSelf?.lost(draining)
        }
        try channel.pipeline.syncOperations.addHandler(handler)
      }
    }.connect(to: address)
    connect.whenComplete { [self] result in
      switch result {
      case .success(let channel):
        channel.eventLoop.execute {
          guard let handler = try? channel.pipeline.syncOperations.handler(type: ClientConnectionHandler.self),
            let ready = handler.ready
          else {
            self.failed(RPCError(code: .unavailable, message: "connection to \(address) closed at once"))
            return
          }
          let connection = ClientConnection(channel: channel, handler: NIOLoopBound(handler, eventLoop: channel.eventLoop), draining: draining)
          ready.whenComplete { result in
            switch result {
            case .success: self.connected(connection)
            case .failure(let error):
              self.failed(error as? RPCError ?? RPCError(code: .unavailable, message: "connection to \(address) failed: \(error)"))
            }
          }
        }
      case .failure(let error):
        self.failed(RPCError(code: .unavailable, message: "cannot connect to \(address): \(error)"))
      }
    }
  }

  private func connected(_ conn: ClientConnection) {
    let waiters = state.withLock { s -> [CheckedContinuation<ClientConnection, any Error>] in
      s.failures = 0
      defer { s.phase = .ready(conn) }
      if case .connecting(let w) = s.phase { return w }
      return []
    }
    for w in waiters { w.resume(returning: conn) }
  }

  private func failed(_ error: RPCError) {
    let waiters = state.withLock { s -> [CheckedContinuation<ClientConnection, any Error>] in
      s.failures += 1
      let base = min(1.0 * pow16(s.failures - 1), 120.0)
      let delay = base * Double.random(in: 0.8...1.2)
      defer { s.phase = .backingOff(until: .now + .milliseconds(Int(delay * 1000)), error: error) }
      if case .connecting(let w) = s.phase { return w }
      return []
    }
    for w in waiters { w.resume(throwing: error) }
  }

  /// The connection went away (GOAWAY or close): the next call reconnects.
  private func lost(_ flag: DrainFlag) {
    state.withLock { s in
      if case .ready(let c) = s.phase, c.draining === flag { s.phase = .idle }
    }
  }

  /// Closes the connection, if any.
  func close() async {
    let conn = state.withLock { s -> ClientConnection? in
      defer { s.phase = .idle }
      if case .ready(let c) = s.phase { return c }
      return nil
    }
    if let conn { try? await conn.channel.close() }
  }
}

private func pow16(_ n: Int) -> Double {
  var r = 1.0
  for _ in 0..<max(0, min(n, 20)) { r *= 1.6 }
  return r
}
