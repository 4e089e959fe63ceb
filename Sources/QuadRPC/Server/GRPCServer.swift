internal import NIOCore
internal import NIOPosix
internal import NIOSSL

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

  /// The port the server listens on (useful with port 0).
  package let port: Int

  private init(group: MultiThreadedEventLoopGroup, channel: any Channel) {
    self.group = group
    self.channel = channel
    self.port = channel.localAddress?.port ?? 0
  }

  /// Binds and starts serving.
  ///
  /// - Parameters:
  ///   - maximumMessageLength: largest request message accepted (default 4 MiB; larger ones get
  ///     RESOURCE_EXHAUSTED before they are buffered).
  ///   - tls: serve TLS (and mutual TLS with a client CA) instead of plaintext.
  /// - Throws: ``TLSSetupError`` for unusable certificates or keys; NIO's errors when binding fails.
  package static func start(
    router: Router,
    host: String = "0.0.0.0",
    port: Int,
    threads: Int = 1,
    maximumMessageLength: Int = 4 * 1024 * 1024,
    tls: ServerTLS? = nil
  ) async throws -> GRPCServer {
    let sslContext = try tls?.makeContext()
    let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
    do {
      let channel = try await ServerBootstrap(group: group)
        .serverChannelOption(.backlog, value: 256)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
        .childChannelInitializer { channel in
          channel.eventLoop.makeCompletedFuture {
            if let sslContext {
              try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext))
            }
            let handler = try ServerConnectionHandler(router: router, maximumMessageLength: maximumMessageLength)
            try channel.pipeline.syncOperations.addHandler(handler)
          }
        }
        .bind(host: host, port: port)
        .get()
      return GRPCServer(group: group, channel: channel)
    } catch {
      try? await group.shutdownGracefully()
      throw error
    }
  }

  /// Stops listening, closes connections and releases the threads.
  package func stop() async throws {
    try? await channel.close()
    try await group.shutdownGracefully()
  }
}
