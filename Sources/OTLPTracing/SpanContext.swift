package import Instrumentation
package import W3CTraceContext

/// Where a span sits in its trace (W3C trace id, span id, flags and state), and whether it was
/// received from another process; carried in an `InstrumentationContext`.
package struct SpanContext: Sendable {
  package var trace: TraceContext
  package var isRemote: Bool

  package init(trace: TraceContext, isRemote: Bool) {
    self.trace = trace
    self.isRemote = isRemote
  }

  /// The context a `traceparent` (and `tracestate`) header names, or nil when it is malformed.
  package init?(traceparent: String, tracestate: String? = nil) {
    guard let trace = try? TraceContext(traceParentHeaderValue: traceparent, traceStateHeaderValue: tracestate) else { return nil }
    self.init(trace: trace, isRemote: true)
  }

  /// The `traceparent` header naming this span as the parent.
  package var traceparent: String { trace.traceParentHeaderValue }
}

enum SpanContextKey: InstrumentationContextKey {
  typealias Value = SpanContext
  static var nameOverride: String? { "span-context" }
}

extension InstrumentationContext {
  /// The span this context belongs to, if any.
  package var spanContext: SpanContext? {
    get { self[SpanContextKey.self] }
    set { self[SpanContextKey.self] = newValue }
  }
}
