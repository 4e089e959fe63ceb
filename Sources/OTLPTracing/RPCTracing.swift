internal import GRPCWire
internal import Instrumentation
package import QuadRPC
internal import Tracing

/// Reads and writes `traceparent` / `tracestate` in gRPC metadata.
struct MetadataCarrier: Extractor, Injector {
  func extract(key: String, from carrier: Metadata) -> String? { carrier.first(key) }
  func inject(_ value: String, forKey key: String, into carrier: inout Metadata) { carrier.set(key, value) }
}

/// Starts a server span for every call, as a child of the caller's `traceparent` when it sent a
/// valid one, and makes the span the call's context: what the handler writes (events, logs,
/// downstream calls) carries the server span's `traceparent` in place of the caller's.
package struct TracingServerInterceptor: ServerInterceptor {
  let tracer: QuadTracer

  package init(tracer: QuadTracer) { self.tracer = tracer }

  package func intercept<Response: Sendable>(
    _ context: ServerContext, next: (ServerContext) async throws -> Response
  ) async throws -> Response {
    var parent = InstrumentationContext.current ?? .topLevel
    tracer.extract(context.metadata, into: &parent, using: MetadataCarrier())
    let span = RPCName(context.path).start(tracer, parent: parent, kind: .server)
    span.attributes["client.address"] = context.peer
    var traced = context
    tracer.inject(span.context, into: &traced.metadata, using: MetadataCarrier())
    // The server-side rule of OTel's gRPC conventions: only these codes are the server's fault.
    return try await RPCName.run(span, errorIf: { [.unknown, .deadlineExceeded, .unimplemented, .internal, .unavailable, .dataLoss].contains($0) }) {
      try await next(traced)
    }
  }
}

/// Starts a client span for every outgoing call, as a child of the current context, and sends
/// its `traceparent` (and `tracestate`) with the call.
package struct TracingClientInterceptor: ClientInterceptor {
  let tracer: QuadTracer

  package init(tracer: QuadTracer) { self.tracer = tracer }

  package func intercept<Response: Sendable>(
    _ context: ClientContext, next: (ClientContext) async throws -> Response
  ) async throws -> Response {
    let span = RPCName(context.path).start(tracer, parent: InstrumentationContext.current ?? .topLevel, kind: .client)
    var traced = context
    tracer.inject(span.context, into: &traced.options.metadata, using: MetadataCarrier())
    return try await RPCName.run(span, errorIf: { _ in true }) { try await next(traced) }
  }
}

/// `/pkg.Service/Method` split as OTel's RPC conventions name it.
struct RPCName {
  let service: String
  let method: String
  var spanName: String { "\(service)/\(method)" }

  init(_ path: String) {
    let parts = path.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: true)
    service = parts.first.map(String.init) ?? ""
    method = parts.count > 1 ? String(parts[1]) : ""
  }

  /// A span for this method with OTel's RPC attributes.
  func start(_ tracer: QuadTracer, parent: InstrumentationContext, kind: SpanKind) -> QuadSpan {
    let span = tracer.startSpan(spanName, context: parent, ofKind: kind)
    span.attributes["rpc.system"] = "grpc"
    span.attributes["rpc.service"] = service
    span.attributes["rpc.method"] = method
    return span
  }

  /// Runs `body` in `span`'s context and ends the span with the call's status code (an error
  /// status when `errorIf` says the code is one).
  static func run<R>(_ span: QuadSpan, errorIf: (GRPCStatus.Code) -> Bool, _ body: () async throws -> R) async throws -> R {
    defer { span.end() }
    do {
      let response = try await InstrumentationContext.withValue(span.context) { try await body() }
      span.attributes["rpc.grpc.status_code"] = 0
      return response
    } catch {
      let code = (error as? RPCError)?.code ?? .unknown
      span.attributes["rpc.grpc.status_code"] = code.rawValue
      if errorIf(code) { span.setStatus(SpanStatus(code: .error, message: "\(code)")) }
      throw error
    }
  }
}
