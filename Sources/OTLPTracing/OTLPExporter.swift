internal import CoreMetrics
internal import GRPCWire
package import Logging
package import QuadRPC

/// Sends a ``QuadTracer``'s ended spans to an OpenTelemetry collector over OTLP/gRPC
/// (`opentelemetry.proto.collector.trace.v1.TraceService/Export`), in batches, every interval or
/// as soon as a batch is full. A failed export is retried with backoff while the buffer has room;
/// what does not fit is dropped and counted (`quad_trace_spans_dropped_total`).
package final class OTLPExporter: Sendable {
  package struct Settings: Sendable {
    /// How often buffered spans are sent at the latest.
    package var interval: Duration = .seconds(1)
    /// Spans per Export call at most.
    package var batchSize = 512
    /// How long one Export call may take.
    package var timeout: Duration = .seconds(10)
    /// The longest pause between retries of a failing collector.
    package var maximumBackoff: Duration = .seconds(30)
    package init() {}
  }

  private let tracer: QuadTracer
  private let client: GRPCClient
  private let resource: Opentelemetry_Proto_Resource_V1_Resource
  private let settings: Settings
  private let logger: Logger
  private let exported = Counter(label: "quad_trace_spans_exported_total")
  private let dropped = Counter(label: "quad_trace_spans_dropped_total")

  /// - Parameters:
  ///   - endpoint: the collector, `host:port` (plaintext) — what `GRPCClient(target:)` takes.
  ///   - resource: resource attributes besides `service.name` (for example `service.instance.id`).
  package init(
    tracer: QuadTracer, endpoint: String, serviceName: String, resource attributes: [String: String] = [:],
    tls: ClientTLS? = nil, settings: Settings = Settings(), logger: Logger
  ) throws(RPCError) {
    self.tracer = tracer
    // No tracing interceptor here: the exporter's own calls are not traced.
    client = try GRPCClient(target: endpoint, tls: tls)
    var resource = Opentelemetry_Proto_Resource_V1_Resource()
    resource.attributes = [OTLPEncoding.keyValue("service.name", serviceName)]
      + attributes.sorted { $0.key < $1.key }.map { OTLPEncoding.keyValue($0.key, $0.value) }
    self.resource = resource
    self.settings = settings
    self.logger = logger
  }

  /// Exports until the calling task is cancelled, then sends what is left (bounded by the
  /// export timeout) and closes the connection.
  package func run() async {
    var lastExport = ContinuousClock.now
    var backoff: Duration = .zero
    var failing = false
    var droppedSoFar = 0
    while !Task.isCancelled {
      try? await Task.sleep(for: .milliseconds(50))
      let due = ContinuousClock.now - lastExport >= max(settings.interval, backoff)
      guard tracer.buffer.count >= settings.batchSize && backoff == .zero || due || tracer.buffer.flushRequested else { continue }
      lastExport = ContinuousClock.now
      countDrops(&droppedSoFar)
      while tracer.buffer.count > 0, !Task.isCancelled {
        let batch = tracer.buffer.take(settings.batchSize)
        do {
          try await export(batch)
          if failing { logger.notice("trace export: the collector accepts spans again") }
          failing = false
          backoff = .zero
        } catch {
          let retryable = Self.retryable(error)
          if retryable { tracer.buffer.putBack(batch) } else { dropped.increment(by: Int64(batch.count)) }
          if !failing { logger.warning("trace export failed: \(error)\(retryable ? "; retrying with backoff" : "; spans dropped")") }
          failing = true
          backoff = min(settings.maximumBackoff, max(.seconds(1), backoff * 2))
          break
        }
      }
    }
    // Shutting down: one last try for what is buffered.
    let rest = tracer.buffer.take(Int.max)
    await Task {
      for start in stride(from: 0, to: rest.count, by: settings.batchSize) {
        try? await export(Array(rest[start..<min(rest.count, start + settings.batchSize)]))
      }
    }.value
    await client.close()
  }

  private func countDrops(_ seen: inout Int) {
    let now = tracer.buffer.dropped
    if now > seen { dropped.increment(by: Int64(now - seen)) }
    seen = now
  }

  private func export(_ spans: [Opentelemetry_Proto_Trace_V1_Span]) async throws {
    guard !spans.isEmpty else { return }
    var scope = Opentelemetry_Proto_Trace_V1_ScopeSpans()
    scope.scope.name = "quad"
    scope.spans = spans
    var resourceSpans = Opentelemetry_Proto_Trace_V1_ResourceSpans()
    resourceSpans.resource = resource
    resourceSpans.scopeSpans = [scope]
    var request = Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceRequest()
    request.resourceSpans = [resourceSpans]
    let response = try await Opentelemetry_Proto_Collector_Trace_V1_TraceService.Client(client)
      .export(request, options: CallOptions(timeout: settings.timeout))
    let rejected = Int(response.partialSuccess.rejectedSpans)
    if rejected > 0 {
      dropped.increment(by: Int64(rejected))
      logger.warning("trace export: the collector rejected \(rejected) of \(spans.count) spans: \(response.partialSuccess.errorMessage)")
    }
    exported.increment(by: Int64(spans.count - min(rejected, spans.count)))
  }

  /// OTLP's retryable statuses (the specification's list); any other failure drops the batch.
  static func retryable(_ error: any Error) -> Bool {
    guard let e = error as? RPCError else { return true }
    return [.cancelled, .deadlineExceeded, .aborted, .outOfRange, .unavailable, .dataLoss, .resourceExhausted].contains(e.code)
  }
}
