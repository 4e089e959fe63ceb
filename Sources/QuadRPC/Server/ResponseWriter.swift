internal import NIOCore
package import QuadProtobuf

/// Writes a streaming call's response messages (serialized bytes). Each write suspends while more
/// than ``ServerConnectionHandler/highWatermark`` bytes of the stream wait for the client's
/// flow-control window, so a slow reader slows the handler and nothing grows without bound.
///
/// - Throws: `CancellationError` from ``write(_:compressed:)`` once the call is over (reset,
///   deadline, connection loss).
package struct ResponseWriter: Sendable {
  let connection: NIOLoopBound<ServerConnectionHandler>
  let loop: any EventLoop
  let streamID: Int32

  /// Sends one message. `compressed` overrides ``ServerContext/setCompression(_:)`` for this
  /// message (it is only compressed when the client accepts gzip).
  package func write(_ message: [UInt8], compressed: Bool? = nil) async throws {
    try Task.checkCancellation()
    let connection = self.connection
    let streamID = self.streamID
    let loop = self.loop
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
      if loop.inEventLoop {
        connection.value.enqueue(streamID: streamID, message: message, compressed: compressed, continuation: continuation)
      } else {
        loop.execute {
          connection.value.enqueue(streamID: streamID, message: message, compressed: compressed, continuation: continuation)
        }
      }
    }
  }
}

extension ResponseWriter {
  /// What ``offer(_:)`` did.
  package enum Offer: Sendable, Equatable {
    /// Sent; more may follow.
    case sent
    /// Sent, and the stream now holds more than the client's window takes: send the next
    /// with ``write(_:compressed:)``, which waits for it to drain.
    case sentAndFull
    /// Not sent: the call is over, the stream is full, or the message needs
    /// ``write(_:compressed:)`` (which says why).
    case notSent
  }

  /// Tells the connections' event loops apart: writers with the same one run their
  /// ``onEventLoop(_:)`` work on one thread.
  package var eventLoopID: ObjectIdentifier { ObjectIdentifier(loop) }

  /// Runs `work` on the connection's event loop, after what is queued there (always later,
  /// never inline): where ``offer(_:)`` is called.
  package func onEventLoop(_ work: @escaping @Sendable () -> Void) {
    loop.execute(work)
  }

  /// Sends one message now, without waiting, on the event loop only: for a producer that feeds
  /// many streams from one loop turn (the event relay's live subscribers) and falls back to
  /// ``write(_:compressed:)`` when this says `.notSent` or `.sentAndFull`. Compressed as the
  /// call's default says.
  package func offer(_ message: [UInt8]) -> Offer {
    loop.preconditionInEventLoop()
    return connection.value.offer(streamID: streamID, message: message)
  }
}

/// Writes typed response messages of a server-streaming or bidirectional call.
package struct ResponseStreamWriter<Message: QuadProtobuf.Message>: Sendable {
  package let raw: ResponseWriter

  package init(_ raw: ResponseWriter) { self.raw = raw }

  /// Sends one message; see ``ResponseWriter/write(_:compressed:)``.
  package func write(_ message: Message, compressed: Bool? = nil) async throws {
    try await raw.write(message.serializedBytes(), compressed: compressed)
  }

  /// Sends messages in order.
  package func write(contentsOf messages: some Sequence<Message>) async throws {
    for m in messages { try await raw.write(m.serializedBytes()) }
  }
}
