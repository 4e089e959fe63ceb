internal import NIOCore

/// Writes a server-streaming call's response messages. Each write suspends while more than
/// ``ServerConnectionHandler/highWatermark`` bytes of the stream wait for the client's flow-control
/// window, so a slow reader slows the handler and nothing grows without bound.
///
/// - Throws: `CancellationError` from ``write(_:)`` once the call is over (reset, deadline,
///   connection loss).
package struct ResponseWriter: Sendable {
  let connection: NIOLoopBound<ServerConnectionHandler>
  let loop: any EventLoop
  let streamID: Int32

  /// Sends one message (serialized bytes).
  package func write(_ message: [UInt8]) async throws {
    try Task.checkCancellation()
    let connection = self.connection
    let streamID = self.streamID
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
      loop.execute {
        connection.value.enqueue(streamID: streamID, message: message, continuation: continuation)
      }
    }
  }
}
