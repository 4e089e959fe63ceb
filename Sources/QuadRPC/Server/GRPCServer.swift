internal import NIOCore
internal import NIOPosix
internal import NIOSSL
package import Synchronization

/// A gRPC server over HTTP/2: plaintext (h2c, prior knowledge) by default, TLS 1.2/1.3 with ALPN
/// `h2` (and mutual TLS) when given ``ServerTLS``. It listens, then serves every connection on an
/// event loop of its group.
///
/// ```swift
/// var router = Router()
/// router.registerUnary("/pkg.Echo/Say") { request, _ in request }
/// let server = try await GRPCServer.start(router: router, host: "0.0.0.0", port: 50051)
/// ```
package final class GRPCServer: Sendable {
  private let group: MultiThreadedEventLoopGroup
  private let channel: any Channel
  private let connections: ConnectionRegistry

  /// The port the server listens on (useful with port 0).
  package let port: Int
  /// What the server has seen, for metrics and tests.
  package let stats: ServerStats

  private let tls: ServerTLS?
  /// The TLS context new connections get; replaced by ``reloadTLS()``.
  private let contexts: TLSContexts

  private init(
    group: MultiThreadedEventLoopGroup, channel: any Channel, connections: ConnectionRegistry, stats: ServerStats,
    tls: ServerTLS?, contexts: TLSContexts
  ) {
    self.group = group
    self.channel = channel
    self.connections = connections
    self.stats = stats
    self.port = channel.localAddress?.port ?? 0
    self.tls = tls
    self.contexts = contexts
  }

  /// Reads the certificate, key and client CA files again; connections accepted from now on use
  /// them, connections already open keep theirs (no call is dropped). On failure nothing changes.
  package func reloadTLS() throws(TLSSetupError) {
    guard let tls else { return }
    let context = try tls.makeContext()
    contexts.current.withLock { $0 = context }
  }

  /// Binds and starts serving.
  ///
  /// - Parameters:
  ///   - settings: limits, keepalive, idle and age bounds, flood allowances.
  ///   - tls: serve TLS (and mutual TLS with a client CA) instead of plaintext.
  /// - Throws: ``TLSSetupError`` for unusable certificates or keys; NIO's errors when binding fails.
  package static func start(
    router: Router,
    host: String = "0.0.0.0",
    port: Int,
    threads: Int = 1,
    settings: ServerSettings = ServerSettings(),
    tls: ServerTLS? = nil
  ) async throws -> GRPCServer {
    let contexts = TLSContexts(try tls?.makeContext())
    let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
    let connections = ConnectionRegistry()
    let stats = ServerStats()
    do {
      let channel = try await ServerBootstrap(group: group)
        .serverChannelOption(.backlog, value: 256)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
        .childChannelOption(.maxMessagesPerRead, value: 1)
        .childChannelInitializer { channel in
          channel.eventLoop.makeCompletedFuture {
            if let sslContext = contexts.current.withLock({ $0 }) {
              try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext))
            }
            let handler = try ServerConnectionHandler(router: router, settings: settings, stats: stats)
            try channel.pipeline.syncOperations.addHandler(handler)
            connections.add(channel, NIOLoopBound(handler, eventLoop: channel.eventLoop))
            stats.connectionsAccepted.add(1, ordering: .relaxed)
            channel.closeFuture.whenComplete { _ in connections.remove(channel) }
          }
        }
        .bind(host: host, port: port)
        .get()
      return GRPCServer(group: group, channel: channel, connections: connections, stats: stats, tls: tls, contexts: contexts)
    } catch {
      try? await group.shutdownGracefully()
      throw error
    }
  }

  /// Stops gracefully: stops listening, tells every connection to go away (GOAWAY), lets the calls
  /// in flight finish for up to `grace`, then closes what is left and releases the threads.
  package func stop(grace: Duration = .seconds(10)) async throws {
    try? await channel.close()
    for (_, handler) in connections.all {
      handler.eventLoop.execute { handler.value.beginShutdown() }
    }
    let until = ContinuousClock.now + grace
    while !connections.all.isEmpty && ContinuousClock.now < until {
      try? await Task.sleep(for: .milliseconds(20))
    }
    for (channel, _) in connections.all { try? await channel.close() }
    try await group.shutdownGracefully()
  }

  /// The number of open connections.
  package var connectionCount: Int { connections.all.count }
}

/// The TLS context a server hands new connections (nil: plaintext).
final class TLSContexts: Sendable {
  let current: Mutex<NIOSSLContext?>
  init(_ context: NIOSSLContext?) { current = Mutex(context) }
}

/// Counters of a server's connections and of the clients it closed for abuse.
package final class ServerStats: Sendable {
  package let connectionsAccepted = Atomic(0)
  /// Connections closed with ENHANCE_YOUR_CALM (floods, broken keepalive).
  package let connectionsClosedForAbuse = Atomic(0)
  /// Connections closed because a keepalive PING went unanswered.
  package let keepaliveTimeouts = Atomic(0)
  /// Calls ended with RESOURCE_EXHAUSTED because their connection buffered too much.
  package let callsOverBudget = Atomic(0)
}

/// The server's open connections, so that a stop can reach them.
final class ConnectionRegistry: Sendable {
  private let entries = Mutex<[ObjectIdentifier: (any Channel, NIOLoopBound<ServerConnectionHandler>)]>([:])

  func add(_ channel: any Channel, _ handler: NIOLoopBound<ServerConnectionHandler>) {
    entries.withLock { $0[ObjectIdentifier(channel)] = (channel, handler) }
  }

  func remove(_ channel: any Channel) {
    _ = entries.withLock { $0.removeValue(forKey: ObjectIdentifier(channel)) }
  }

  var all: [(any Channel, NIOLoopBound<ServerConnectionHandler>)] { entries.withLock { Array($0.values) } }
}
