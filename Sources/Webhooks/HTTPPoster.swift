package import Foundation
internal import NIOCore
internal import NIOHTTP1
internal import NIOPosix
internal import NIOSSL

/// POSTs a body to an HTTP(S) URL over HTTP/1.1 (NIOHTTP1, NIOSSL for `https`) and returns the
/// response status; the response body is read and dropped, at most 64 KiB of it.
package final class HTTPPoster: Sendable {
  package struct Failure: Error, Sendable, CustomStringConvertible {
    package let description: String
  }

  let group: MultiThreadedEventLoopGroup
  let tls: NIOSSLContext

  package init(trustRootsPath: String? = nil) throws {
    var config = TLSConfiguration.makeClientConfiguration()
    config.minimumTLSVersion = .tlsv12
    if let trustRootsPath { config.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(trustRootsPath)) }
    tls = try NIOSSLContext(configuration: config)
    group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
  }

  package func shutdown() async {
    try? await group.shutdownGracefully()
  }

  /// The response's status code, or ``Failure`` (cannot connect, timed out, bad response).
  package func post(_ url: URL, body: [UInt8], headers: [(String, String)], timeout: Duration) async throws -> Int {
    guard let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https", let host = url.host, !host.isEmpty else {
      throw Failure(description: "not an http or https URL: \(url)")
    }
    let secure = scheme == "https"
    let port = url.port ?? (secure ? 443 : 80)
    var path = url.path.isEmpty ? "/" : url.path
    if let query = url.query { path += "?" + query }
    let tls = self.tls
    let promise = group.next().makePromise(of: Int.self)
    let bootstrap = ClientBootstrap(group: group)
      .connectTimeout(TimeAmount(timeout))
      .channelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          if secure {
            try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: host))
          }
          try channel.pipeline.syncOperations.addHTTPClientHandlers()
          try channel.pipeline.syncOperations.addHandler(ResponseStatus(promise: promise))
        }
      }
    let channel: any Channel
    do {
      channel = try await bootstrap.connect(host: host, port: port).get()
    } catch {
      promise.fail(error)
      throw Failure(description: "cannot connect to \(host):\(port): \(error)")
    }
    let deadline = channel.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
      promise.fail(Failure(description: "no answer from \(host):\(port) within \(timeout)"))
      channel.close(promise: nil)
    }
    var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: path)
    head.headers.add(name: "Host", value: url.port.map { "\(host):\($0)" } ?? host)
    head.headers.add(name: "Content-Length", value: String(body.count))
    head.headers.add(name: "Connection", value: "close")
    for (name, value) in headers { head.headers.add(name: name, value: value) }
    channel.write(HTTPClientRequestPart.head(head), promise: nil)
    channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil)
    channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
    defer {
      deadline.cancel()
      channel.close(promise: nil)
    }
    do {
      return try await promise.futureResult.get()
    } catch let failure as Failure {
      throw failure
    } catch {
      throw Failure(description: "\(host):\(port): \(error)")
    }
  }
}

/// Completes with the status once the whole response has arrived (or fails when the
/// connection closes first).
final class ResponseStatus: ChannelInboundHandler, RemovableChannelHandler {
  typealias InboundIn = HTTPClientResponsePart
  let promise: EventLoopPromise<Int>
  var status: Int?
  var bodyBytes = 0

  init(promise: EventLoopPromise<Int>) { self.promise = promise }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    switch unwrapInboundIn(data) {
    case .head(let head):
      status = Int(head.status.code)
    case .body(let buffer):
      bodyBytes += buffer.readableBytes
      if bodyBytes > 64 * 1024 {
        promise.fail(HTTPPoster.Failure(description: "response body larger than 64 KiB"))
        context.close(promise: nil)
      }
    case .end:
      if let status { promise.succeed(status) }
    }
  }

  func channelInactive(context: ChannelHandlerContext) {
    promise.fail(HTTPPoster.Failure(description: "connection closed before the response ended"))
    context.fireChannelInactive()
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    promise.fail(error)
    context.close(promise: nil)
  }
}
