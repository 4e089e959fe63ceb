package import QuadProtobuf
package import QuadRPC

/// One event of a typed subscription: its envelope (cursor, stream, metadata) and its payload
/// decoded into the contract's type.
package struct TypedEvent<Events: DomainEventSet>: Sendable {
  package let envelope: Quad_Events_V1_EventEnvelope
  package let event: Events
}

/// The events of a typed subscription, in log order; iteration throws the call's status when
/// it ends with an error, and a payload that does not decode as its declared type.
package struct TypedEventStream<Events: DomainEventSet>: AsyncSequence, Sendable {
  let stream: ResponseStream<Quad_Events_V1_EventEnvelope>

  package struct AsyncIterator: AsyncIteratorProtocol {
    var base: ResponseStream<Quad_Events_V1_EventEnvelope>.AsyncIterator

    package mutating func next() async throws -> TypedEvent<Events>? {
      while let envelope = try await base.next() {
        // The server filters by type; an event the set does not know is skipped, never guessed.
        if let event = try Events(eventType: envelope.eventType, payload: envelope.payload.value) {
          return TypedEvent(envelope: envelope, event: event)
        }
      }
      return nil
    }
  }

  package func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: stream.makeAsyncIterator()) }
}

extension Quad_Events_V1_Events.Client {
  /// Subscribes to the events of one generated ``DomainEventSet`` (every message of a `.proto`
  /// file marked `option (quad.v1.event)`): the server sends only those types, and each arrives
  /// decoded.
  ///
  /// ```swift
  /// try await events.subscribe(QuadEvents_campus_scans_v1_scans_proto.self, from: request) { stream in
  ///   for try await e in stream {
  ///     if case .cardScanned(let scan) = e.event { … }
  ///   }
  /// }
  /// ```
  package func subscribe<Events: DomainEventSet, R: Sendable>(
    _ events: Events.Type,
    from request: Quad_Events_V1_SubscribeRequest = Quad_Events_V1_SubscribeRequest(),
    options: CallOptions = CallOptions(),
    _ body: (TypedEventStream<Events>) async throws -> R
  ) async throws -> R {
    var request = request
    request.eventTypes = Events.eventTypes
    return try await subscribe(request, options: options) { stream in try await body(TypedEventStream(stream: stream)) }
  }
}
