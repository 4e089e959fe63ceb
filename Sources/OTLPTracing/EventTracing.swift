package import EventRelay
package import EventStore
internal import EventsService
internal import Instrumentation
internal import QuadProtobuf
internal import Tracing

/// Restores the trace an event was written in when a consumer handles it or a subscription
/// delivers it: one span per event (consumer or producer kind), a child of the span stored in
/// the event's `traceparent`. Events written without one get no span.
package struct EventTracing: EventInstrumentation {
  let tracer: QuadTracer

  package init(tracer: QuadTracer) { self.tracer = tracer }

  package func around<R>(_ events: [StoredEvent], _ activity: EventActivity, _ body: () async throws -> R) async throws -> R {
    let spans = events.compactMap { span(for: $0, activity) }
    guard !spans.isEmpty else { return try await body() }
    do {
      // One event: its span is the context of the handling (a downstream call joins the trace).
      let result = spans.count == 1 ? try await InstrumentationContext.withValue(spans[0].context) { try await body() } : try await body()
      for s in spans { s.end() }
      return result
    } catch {
      for s in spans {
        s.recordError(error)
        s.setStatus(SpanStatus(code: .error, message: "\(error)".prefix(256).description))
        s.end()
      }
      throw error
    }
  }

  private func span(for event: StoredEvent, _ activity: EventActivity) -> QuadSpan? {
    guard !event.metadata.isEmpty, let metadata = try? Quad_Events_V1_EventMetadata(serializedBytes: event.metadata),
      let origin = SpanContext(traceparent: metadata.traceparent)
    else { return nil }
    var context = InstrumentationContext.topLevel
    context.spanContext = origin
    let span: QuadSpan
    switch activity {
    case .consume(let consumer):
      span = tracer.startSpan("process \(event.type)", context: context, ofKind: .consumer)
      span.attributes["messaging.operation.type"] = "process"
      span.attributes["messaging.consumer.group.name"] = consumer
    case .deliver(let subscription):
      span = tracer.startSpan("send \(event.type)", context: context, ofKind: .producer)
      span.attributes["messaging.operation.type"] = "send"
      if !subscription.isEmpty { span.attributes["messaging.consumer.group.name"] = subscription }
    }
    span.attributes["messaging.system"] = "quad"
    span.attributes["messaging.destination.name"] = event.stream.type
    span.attributes["messaging.message.id"] = "\(event.position)"
    span.attributes["quad.event.type"] = event.type
    span.attributes["quad.event.stream"] = "\(event.stream.type)/\(event.stream.id)"
    span.attributes["quad.event.position"] = Int64(event.position)
    return span
  }
}
