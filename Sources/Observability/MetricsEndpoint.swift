internal import NIOCore
internal import NIOHTTP1
internal import NIOPosix
package import Prometheus

/// Serves the Prometheus text format at `GET /metrics` over HTTP/1.1 (NIOHTTP1), for scrapers
/// and the autoscaler's metrics adapter; anything else is 404.
package final class MetricsEndpoint: Sendable {
  private let channel: any Channel
  private let group: MultiThreadedEventLoopGroup
  /// The port it listens on (the one asked for, or the one picked for 0).
  package let port: Int

  private init(channel: any Channel, group: MultiThreadedEventLoopGroup, port: Int) {
    self.channel = channel
    self.group = group
    self.port = port
  }

  package static func start(registry: PrometheusCollectorRegistry, host: String, port: Int) async throws -> MetricsEndpoint {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    do {
      let channel = try await ServerBootstrap(group: group)
        .serverChannelOption(.backlog, value: 64)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelInitializer { channel in
          channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline()
            try channel.pipeline.syncOperations.addHandler(MetricsHandler(registry: registry))
          }
        }
        .bind(host: host, port: port).get()
      return MetricsEndpoint(channel: channel, group: group, port: channel.localAddress?.port ?? port)
    } catch {
      try? await group.shutdownGracefully()
      throw error
    }
  }

  package func stop() async {
    try? await channel.close()
    try? await group.shutdownGracefully()
  }
}

/// Answers each request on one connection.
final class MetricsHandler: ChannelInboundHandler, @unchecked Sendable {
  typealias InboundIn = HTTPServerRequestPart
  typealias OutboundOut = HTTPServerResponsePart

  let registry: PrometheusCollectorRegistry
  private var head: HTTPRequestHead?

  init(registry: PrometheusCollectorRegistry) {
    self.registry = registry
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    switch unwrapInboundIn(data) {
    case .head(let h):
      head = h
    case .body:
      break  // a scrape has no body; anything sent is ignored, not buffered
    case .end:
      guard let h = head else { return }
      head = nil
      let found = h.method == .GET && (h.uri == "/metrics" || h.uri.hasPrefix("/metrics?"))
      let body = found ? registry.emitToBuffer() : Array("not found: metrics are at /metrics\n".utf8)
      var headers = HTTPHeaders()
      headers.add(name: "Content-Type", value: found ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain; charset=utf-8")
      headers.add(name: "Content-Length", value: String(body.count))
      if !h.isKeepAlive { headers.add(name: "Connection", value: "close") }
      context.write(wrapOutboundOut(.head(HTTPResponseHead(version: h.version, status: found ? .ok : .notFound, headers: headers))), promise: nil)
      context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
      let keepAlive = h.isKeepAlive
      context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
        if !keepAlive { context.close(promise: nil) }
      }
    }
  }
}
