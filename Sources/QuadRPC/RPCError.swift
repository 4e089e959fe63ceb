package import GRPCWire

/// An error a handler throws to end its call with a chosen status; any other error reaches the
/// client as UNKNOWN with a generic message, so internals never leak.
package struct RPCError: Error, Hashable, Sendable {
  package var code: GRPCStatus.Code
  package var message: String
  /// Serialized `google.rpc.Status`, sent in `grpc-status-details-bin`.
  package var details: [UInt8]?

  package init(code: GRPCStatus.Code, message: String, details: [UInt8]? = nil) {
    self.code = code
    self.message = message
    self.details = details
  }
}

/// What a handler knows about its call.
package struct ServerContext: Sendable {
  /// `/package.Service/Method`.
  package var path: String
  /// The client's custom metadata, in order.
  package var metadata: [(key: String, value: MetadataValue)]
  /// When the call must be done, if the client set `grpc-timeout`.
  package var deadline: ContinuousClock.Instant?
}

/// A unary method: one request message in, one response message out (serialized bytes).
package typealias UnaryHandler = @Sendable (_ request: [UInt8], _ context: ServerContext) async throws -> [UInt8]

/// A server-streaming method: one request message in, any number of response messages written
/// through the ``ResponseWriter`` (which suspends while the client is not reading).
package typealias ServerStreamingHandler = @Sendable (_ request: [UInt8], _ context: ServerContext, _ writer: ResponseWriter) async throws -> Void

/// Maps `:path` to handlers.
package struct Router: Sendable {
  enum Method: Sendable {
    case unary(UnaryHandler)
    case serverStreaming(ServerStreamingHandler)
  }
  private var methods: [String: Method] = [:]

  package init() {}

  /// Registers a unary method under its full path (`/pkg.Service/Method`).
  package mutating func registerUnary(_ path: String, _ handler: @escaping UnaryHandler) {
    methods[path] = .unary(handler)
  }

  /// Registers a server-streaming method under its full path.
  package mutating func registerServerStreaming(_ path: String, _ handler: @escaping ServerStreamingHandler) {
    methods[path] = .serverStreaming(handler)
  }

  func method(for path: String) -> Method? { methods[path] }
}
