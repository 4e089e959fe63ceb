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
