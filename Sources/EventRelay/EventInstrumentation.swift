package import EventStore

/// What is being done with relayed events: handled by an in-process consumer, or delivered to a
/// subscription over gRPC.
package enum EventActivity: Sendable, Hashable {
  case consume(consumer: String)
  case deliver(subscription: String)
}

/// Runs around what a consumer or a subscription does with relayed events (tracing): `body`
/// handles or delivers `events`, and the instrumentation may time it in the context each event
/// was written in.
package protocol EventInstrumentation: Sendable {
  func around<R>(_ events: [StoredEvent], _ activity: EventActivity, _ body: () async throws -> R) async throws -> R
}
