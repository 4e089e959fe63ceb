internal import Foundation
internal import GRPCWire
internal import Instrumentation
internal import Logging
internal import OTLPTracing
internal import QuadProtobuf
internal import QuadRPC
internal import Synchronization
internal import Testing
internal import Tracing
internal import W3CTraceContext

/// An in-process collector on the generated `TraceService` server side, over real sockets.
final class SwiftCollector: Opentelemetry_Proto_Collector_Trace_V1_TraceService.ServiceProtocol {
  let requests = Mutex<[Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceRequest]>([])

  func export(
    _ request: Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceRequest, context: ServerContext
  ) async throws -> Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceResponse {
    requests.withLock { $0.append(request) }
    return Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceResponse()
  }

  var spans: [Opentelemetry_Proto_Trace_V1_Span] {
    requests.withLock { $0.flatMap { $0.resourceSpans.flatMap { $0.scopeSpans.flatMap(\.spans) } } }
  }
}

@Suite("Tracing: propagation across hops and export")
struct PropagationTests {
  static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

  @Test("A call through two servers is one trace: client span, server span, client span, server span, each the parent of the next, and a handler sees its own server span as the call's traceparent")
  func twoHops() async throws {
    let collector = SwiftCollector()
    var collectorRoutes = Router()
    collector.register(in: &collectorRoutes)
    let collectorServer = try await GRPCServer.start(router: collectorRoutes, host: "127.0.0.1", port: 0)
    let tracer = QuadTracer()
    var settings = OTLPExporter.Settings()
    settings.interval = .milliseconds(100)
    let exporter = try OTLPExporter(
      tracer: tracer, endpoint: "127.0.0.1:\(collectorServer.port)", serviceName: "hops", settings: settings, logger: .init(label: "test"))
    let exporting = Task { await exporter.run() }

    // The downstream server answers with the traceparent it received.
    var downstreamRoutes = Router()
    downstreamRoutes.intercept(with: TracingServerInterceptor(tracer: tracer))
    downstreamRoutes.registerUnary("/test.Hop/Last") { _, context in
      var seen = Google_Protobuf_StringValue()
      seen.value = context.metadata.first("traceparent") ?? ""
      return seen.serializedBytes()
    }
    let downstream = try await GRPCServer.start(router: downstreamRoutes, host: "127.0.0.1", port: 0)
    let outbound = try GRPCClient(target: "127.0.0.1:\(downstream.port)", interceptors: [TracingClientInterceptor(tracer: tracer)])

    // The first server calls the downstream one from inside its handler.
    var firstRoutes = Router()
    firstRoutes.intercept(with: TracingServerInterceptor(tracer: tracer))
    firstRoutes.registerUnary("/test.Hop/First") { _, _ in
      try await outbound.unary("/test.Hop/Last", request: Google_Protobuf_StringValue(), responseType: Google_Protobuf_StringValue.self).message.serializedBytes()
    }
    let first = try await GRPCServer.start(router: firstRoutes, host: "127.0.0.1", port: 0)
    let caller = try GRPCClient(target: "127.0.0.1:\(first.port)", interceptors: [TracingClientInterceptor(tracer: tracer)])

    // The caller's own span is the root.
    let root = tracer.startSpan("caller", context: .topLevel, ofKind: .internal)
    let seen = try await InstrumentationContext.withValue(root.context) {
      try await caller.unary("/test.Hop/First", request: Google_Protobuf_StringValue(), responseType: Google_Protobuf_StringValue.self).message.value
    }
    root.end()
    tracer.forceFlush()

    var spans: [Opentelemetry_Proto_Trace_V1_Span] = []
    let deadline = ContinuousClock.now + .seconds(30)
    while ContinuousClock.now < deadline {
      spans = collector.spans
      if spans.count >= 5 { break }
      try await Task.sleep(for: .milliseconds(50))
    }
    #expect(spans.count == 5, "\(spans.map(\.name))")
    let traceID = try #require(root.context.spanContext).trace.traceID.description
    #expect(spans.allSatisfy { Self.hex($0.traceId) == traceID }, "one trace")
    func span(_ name: String, _ kind: Opentelemetry_Proto_Trace_V1_Span.SpanKind) throws -> Opentelemetry_Proto_Trace_V1_Span {
      try #require(spans.first { $0.name == name && $0.kind == kind })
    }
    let rootSpan = try span("caller", .internal)
    let c1 = try span("test.Hop/First", .client)
    let s1 = try span("test.Hop/First", .server)
    let c2 = try span("test.Hop/Last", .client)
    let s2 = try span("test.Hop/Last", .server)
    #expect(rootSpan.parentSpanId.isEmpty)
    #expect(c1.parentSpanId == rootSpan.spanId && s1.parentSpanId == c1.spanId && c2.parentSpanId == s1.spanId && s2.parentSpanId == c2.spanId)
    #expect(s1.flags == 0x301 && c1.flags == 0x101, "server spans have a remote parent, client spans a local one")
    #expect(seen == "00-\(traceID)-\(Self.hex(s2.spanId))-01", "the downstream handler sees its server span's traceparent: \(seen)")
    #expect(s2.startTimeUnixNano >= c2.startTimeUnixNano && s2.endTimeUnixNano <= c2.endTimeUnixNano && c1.endTimeUnixNano >= s1.endTimeUnixNano)
    let request = try #require(collector.requests.withLock { $0.first })
    #expect(request.resourceSpans.first?.resource.attributes.first { $0.key == "service.name" }?.value.stringValue == "hops")

    exporting.cancel()
    await exporting.value
    await caller.close()
    await outbound.close()
    try await first.stop()
    try await downstream.stop()
    try await collectorServer.stop()
  }

  @Test("A failing call's server span carries its status code and, for a server fault, an error status; a client's refused call is an error on its span")
  func failures() async throws {
    let collector = SwiftCollector()
    var collectorRoutes = Router()
    collector.register(in: &collectorRoutes)
    let collectorServer = try await GRPCServer.start(router: collectorRoutes, host: "127.0.0.1", port: 0)
    let tracer = QuadTracer()
    let exporter = try OTLPExporter(tracer: tracer, endpoint: "127.0.0.1:\(collectorServer.port)", serviceName: "failures", logger: .init(label: "test"))
    let exporting = Task { await exporter.run() }
    var routes = Router()
    routes.intercept(with: TracingServerInterceptor(tracer: tracer))
    routes.registerUnary("/test.Fail/NotFound") { _, _ in throw RPCError(code: .notFound, message: "no such thing") }
    routes.registerUnary("/test.Fail/Internal") { _, _ in throw RPCError(code: .internal, message: "broken") }
    let server = try await GRPCServer.start(router: routes, host: "127.0.0.1", port: 0)
    let client = try GRPCClient(target: "127.0.0.1:\(server.port)", interceptors: [TracingClientInterceptor(tracer: tracer)])
    for path in ["/test.Fail/NotFound", "/test.Fail/Internal"] {
      await #expect(throws: RPCError.self) {
        _ = try await client.unary(path, request: Google_Protobuf_StringValue(), responseType: Google_Protobuf_StringValue.self)
      }
    }
    exporting.cancel()  // the exporter sends what is left as it stops
    await exporting.value
    let spans = collector.spans
    func attribute(_ s: Opentelemetry_Proto_Trace_V1_Span, _ key: String) -> Int64? { s.attributes.first { $0.key == key }?.value.intValue }
    let notFound = try #require(spans.first { $0.name == "test.Fail/NotFound" && $0.kind == .server })
    #expect(attribute(notFound, "rpc.grpc.status_code") == 5 && notFound.status.code == .unset, "NOT_FOUND is the caller's problem")
    let broken = try #require(spans.first { $0.name == "test.Fail/Internal" && $0.kind == .server })
    #expect(attribute(broken, "rpc.grpc.status_code") == 13 && broken.status.code == .error)
    #expect(spans.filter { $0.kind == .client }.allSatisfy { $0.status.code == .error } && spans.filter { $0.kind == .client }.count == 2)
    await client.close()
    try await server.stop()
    try await collectorServer.stop()
  }
}
