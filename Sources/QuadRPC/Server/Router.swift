package import QuadProtobuf
internal import GRPCWire

/// A unary method: one request message in, one response message out (serialized bytes).
package typealias UnaryHandler = @Sendable (_ request: [UInt8], _ context: ServerContext) async throws -> [UInt8]

/// A server-streaming method: one request message in, any number of response messages written
/// through the ``ResponseWriter`` (which suspends while the client is not reading).
package typealias ServerStreamingHandler = @Sendable (_ request: [UInt8], _ context: ServerContext, _ writer: ResponseWriter) async throws -> Void

/// A client-streaming method: request messages in as they arrive, one response message out.
package typealias ClientStreamingHandler = @Sendable (_ requests: RequestStream<[UInt8]>, _ context: ServerContext) async throws -> [UInt8]

/// A bidirectional-streaming method: request messages in and response messages out, interleaved
/// as the handler likes.
package typealias BidirectionalStreamingHandler = @Sendable (_ requests: RequestStream<[UInt8]>, _ context: ServerContext, _ writer: ResponseWriter) async throws -> Void

/// Runs around every call a server handles (authentication, logging, metrics, tracing): it sees
/// the method, metadata, deadline and peer in the context, may change the context, throw an
/// ``RPCError`` to refuse the call, or observe the outcome of `next`.
package protocol ServerInterceptor: Sendable {
  func intercept<Response: Sendable>(
    _ context: ServerContext,
    next: (ServerContext) async throws -> Response
  ) async throws -> Response
}

/// Maps `:path` to handlers, and holds the interceptors that run around them.
package struct Router: Sendable {
  enum Method: Sendable {
    case unary(UnaryHandler)
    case serverStreaming(ServerStreamingHandler)
    case clientStreaming(ClientStreamingHandler)
    case bidirectional(BidirectionalStreamingHandler)

    /// Whether the handler starts as soon as the headers arrive (a request stream) rather than
    /// after the single request message.
    var streamsRequests: Bool {
      switch self {
      case .unary, .serverStreaming: return false
      case .clientStreaming, .bidirectional: return true
      }
    }
  }
  private var methods: [String: Method] = [:]
  private(set) var interceptors: [any ServerInterceptor] = []

  package init() {}

  /// Registers a unary method under its full path (`/pkg.Service/Method`).
  package mutating func registerUnary(_ path: String, _ handler: @escaping UnaryHandler) {
    methods[path] = .unary(handler)
  }

  /// Registers a server-streaming method under its full path.
  package mutating func registerServerStreaming(_ path: String, _ handler: @escaping ServerStreamingHandler) {
    methods[path] = .serverStreaming(handler)
  }

  /// Registers a client-streaming method under its full path.
  package mutating func registerClientStreaming(_ path: String, _ handler: @escaping ClientStreamingHandler) {
    methods[path] = .clientStreaming(handler)
  }

  /// Registers a bidirectional-streaming method under its full path.
  package mutating func registerBidirectional(_ path: String, _ handler: @escaping BidirectionalStreamingHandler) {
    methods[path] = .bidirectional(handler)
  }

  /// Adds an interceptor; the first added runs outermost.
  package mutating func intercept(with interceptor: any ServerInterceptor) {
    interceptors.append(interceptor)
  }

  /// Every registered path, sorted.
  package var paths: [String] { methods.keys.sorted() }

  /// The full names of the services with at least one registered method, sorted.
  package var serviceNames: [String] {
    Set(methods.keys.compactMap { path -> String? in
      let parts = path.split(separator: "/", omittingEmptySubsequences: false)
      return parts.count == 3 && parts[0].isEmpty ? String(parts[1]) : nil
    }).sorted()
  }

  func method(for path: String) -> Method? { methods[path] }

  /// Runs `body` inside the interceptors.
  func intercepted<R: Sendable>(_ context: ServerContext, _ body: (ServerContext) async throws -> R) async throws -> R {
    try await Self.run(interceptors[...], context, body)
  }

  private static func run<R: Sendable>(
    _ chain: ArraySlice<any ServerInterceptor>,
    _ context: ServerContext,
    _ body: (ServerContext) async throws -> R
  ) async throws -> R {
    guard let first = chain.first else { return try await body(context) }
    return try await first.intercept(context) { ctx in try await run(chain.dropFirst(), ctx, body) }
  }
}

/// Typed decoding for generated registrations: a request that does not parse is INTERNAL, as in
/// the other gRPC implementations.
package enum RequestDecoding {
  package static func decode<M: QuadProtobuf.Message>(_ type: M.Type, _ bytes: [UInt8]) throws -> M {
    do {
      return try M(serializedBytes: bytes)
    } catch {
      throw RPCError(code: .internal, message: "cannot parse \(M.protoMessageName) request: \(error)")
    }
  }
}
