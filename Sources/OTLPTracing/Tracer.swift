package import Instrumentation
internal import Synchronization
package import Tracing
internal import W3CTraceContext

/// The tracer of a `quad` process: starts spans as children of the span in their context (or a
/// remote `traceparent` extracted from metadata), keeps the ended ones in a bounded buffer, and
/// hands them to the ``OTLPExporter``. Unsampled traces (flag `00`) are propagated, not recorded.
package final class QuadTracer: Tracer {
  package typealias Span = QuadSpan

  /// Ended spans waiting for export; the oldest are dropped (and counted) when it is full.
  let buffer: SpanBuffer

  /// - Parameter capacity: ended spans kept at most while the collector is slow or away.
  package init(capacity: Int = 8_192) {
    buffer = SpanBuffer(capacity: capacity)
  }

  package func startSpan<Instant: TracerInstant>(
    _ operationName: String,
    context: @autoclosure () -> InstrumentationContext,
    ofKind kind: SpanKind,
    at instant: @autoclosure () -> Instant,
    function: String,
    file fileID: String,
    line: UInt
  ) -> QuadSpan {
    var context = context()
    let parent = context.spanContext
    let trace = TraceContext(
      traceID: parent?.trace.traceID ?? .random(), spanID: .random(), flags: parent?.trace.flags ?? .sampled,
      state: parent?.trace.state ?? TraceState())
    context.spanContext = SpanContext(trace: trace, isRemote: false)
    return QuadSpan(
      name: operationName, context: context, parent: parent, kind: kind, start: instant().nanosecondsSinceEpoch,
      recording: trace.flags.contains(.sampled), tracer: self)
  }

  /// Asks the exporter to send what is buffered now rather than at its next interval.
  package func forceFlush() { buffer.requestFlush() }

  package func extract<Carrier, Extract: Extractor>(
    _ carrier: Carrier, into context: inout InstrumentationContext, using extractor: Extract
  ) where Extract.Carrier == Carrier {
    guard let parent = extractor.extract(key: "traceparent", from: carrier),
      let span = SpanContext(traceparent: parent, tracestate: extractor.extract(key: "tracestate", from: carrier))
    else { return }
    context.spanContext = span
  }

  package func inject<Carrier, Inject: Injector>(
    _ context: InstrumentationContext, into carrier: inout Carrier, using injector: Inject
  ) where Inject.Carrier == Carrier {
    guard let span = context.spanContext else { return }
    injector.inject(span.traceparent, forKey: "traceparent", into: &carrier)
    if let state = span.trace.traceStateHeaderValue { injector.inject(state, forKey: "tracestate", into: &carrier) }
  }

  /// Called by a span as it ends.
  func record(_ span: Opentelemetry_Proto_Trace_V1_Span) { buffer.append(span) }
}

/// Ended spans in arrival order, at most `capacity` of them.
final class SpanBuffer: Sendable {
  struct State {
    var spans: [Opentelemetry_Proto_Trace_V1_Span] = []
    var dropped = 0
    var flushRequested = false
  }
  let capacity: Int
  private let state = Mutex(State())

  init(capacity: Int) { self.capacity = max(1, capacity) }

  func append(_ span: Opentelemetry_Proto_Trace_V1_Span) {
    state.withLock { s in
      if s.spans.count >= capacity {
        s.spans.removeFirst()
        s.dropped += 1
      }
      s.spans.append(span)
    }
  }

  /// Puts spans whose export failed back in front, as far as they fit.
  func putBack(_ spans: [Opentelemetry_Proto_Trace_V1_Span]) {
    state.withLock { s in
      let room = max(0, capacity - s.spans.count)
      s.dropped += max(0, spans.count - room)
      s.spans.insert(contentsOf: spans.suffix(room), at: 0)
    }
  }

  /// Up to `limit` of the oldest spans, removed from the buffer.
  func take(_ limit: Int) -> [Opentelemetry_Proto_Trace_V1_Span] {
    state.withLock { s in
      s.flushRequested = false
      let n = min(limit, s.spans.count)
      defer { s.spans.removeFirst(n) }
      return Array(s.spans.prefix(n))
    }
  }

  func requestFlush() { state.withLock { $0.flushRequested = true } }

  var count: Int { state.withLock { $0.spans.count } }
  var flushRequested: Bool { state.withLock { $0.flushRequested } }
  /// Spans dropped so far because the buffer was full.
  var dropped: Int { state.withLock { $0.dropped } }
}

/// A span of a ``QuadTracer``: its name, attributes, events, links and status until it ends,
/// then one OTLP span in the tracer's buffer.
package final class QuadSpan: Tracing.Span {
  package let context: InstrumentationContext
  package let isRecording: Bool
  private let tracer: QuadTracer
  private let parent: SpanContext?
  private let kind: SpanKind
  private let start: UInt64
  private let state: Mutex<State>

  struct State {
    var name: String
    var attributes = SpanAttributes()
    var events: [SpanEvent] = []
    var links: [SpanLink] = []
    var status: SpanStatus?
    var ended = false
  }

  /// Attributes, events and links kept per span; more are counted as dropped.
  static let limit = 128

  init(name: String, context: InstrumentationContext, parent: SpanContext?, kind: SpanKind, start: UInt64, recording: Bool, tracer: QuadTracer) {
    self.context = context
    self.parent = parent
    self.kind = kind
    self.start = start
    self.isRecording = recording
    self.tracer = tracer
    state = Mutex(State(name: name))
  }

  package var operationName: String {
    get { state.withLock { $0.name } }
    set { state.withLock { $0.name = newValue } }
  }

  package var attributes: SpanAttributes {
    get { state.withLock { $0.attributes } }
    set { state.withLock { $0.attributes = newValue } }
  }

  package func setStatus(_ status: SpanStatus) {
    state.withLock { s in
      // OK is final; an error does not override it (the OTel API's rule).
      if s.status?.code != .ok { s.status = status }
    }
  }

  package func addEvent(_ event: SpanEvent) {
    state.withLock { $0.events.append(event) }
  }

  package func recordError<Instant: TracerInstant>(_ error: any Error, attributes: SpanAttributes, at instant: @autoclosure () -> Instant) {
    var attributes = attributes
    attributes["exception.type"] = String(describing: type(of: error))
    attributes["exception.message"] = String(describing: error)
    addEvent(SpanEvent(name: "exception", at: instant(), attributes: attributes))
  }

  package func addLink(_ link: SpanLink) {
    state.withLock { $0.links.append(link) }
  }

  package func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {
    let end = instant().nanosecondsSinceEpoch
    guard let s = state.withLock({ s -> State? in
      guard !s.ended else { return nil }
      s.ended = true
      return s
    }), isRecording, let own = context.spanContext else { return }
    tracer.record(OTLPEncoding.span(own, parent: parent, kind: kind, start: start, end: end, state: s))
  }
}
