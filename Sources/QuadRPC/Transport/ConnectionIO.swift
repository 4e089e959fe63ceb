internal import HTTP2Session
internal import NIOCore

/// The byte path of one connection, shared by the server's and the client's handlers: socket
/// bytes into the ``HTTP2Session``, and the session's output back to the socket, flushed once per
/// event-loop turn; the connection closes when the session has nothing left to do.
final class ConnectionIO {
  let session: HTTP2Session
  private(set) var context: ChannelHandlerContext?
  private var flushScheduled = false
  /// Runs after each flush (to wake writers whose streams drained).
  var afterFlush: () -> Void = {}
  /// Receives events the session raised while writing (streams closed by the frames just sent).
  var onEvents: ([HTTP2Event]) -> Void = { _ in }

  init(session: HTTP2Session) {
    self.session = session
  }

  func attach(_ context: ChannelHandlerContext?) {
    self.context = context
  }

  /// Feeds received bytes to the session. Returns its events, or `nil` after a connection error
  /// (nghttp2 queued GOAWAY; it is sent and the connection closed).
  func receive(_ buffer: ByteBuffer) -> [HTTP2Event]? {
    do {
      return try buffer.withUnsafeReadableBytes { bytes throws(HTTP2SessionError) in try session.receive(bytes) }
    } catch {
      flush()
      context?.close(promise: nil)
      return nil
    }
  }

  /// Flushes at the end of this event-loop turn (so writes made in one turn share a socket write).
  func scheduleFlush() {
    guard !flushScheduled, let loop = context?.eventLoop else { return }
    flushScheduled = true
    loop.assumeIsolated().execute { [self] in
      flushScheduled = false
      flush()
    }
  }

  /// Writes what the session has queued.
  func flush() {
    guard let context else { return }
    var out: ByteBuffer?
    do {
      try session.outbound { chunk in
        if out == nil { out = context.channel.allocator.buffer(capacity: max(chunk.count, 1024)) }
        out!.writeBytes(chunk)
      }
    } catch {
      context.close(promise: nil)
      return
    }
    if let out {
      context.writeAndFlush(NIOAny(out), promise: nil)
    }
    let events = session.takeEvents()
    if !events.isEmpty { onEvents(events) }
    afterFlush()
    if !session.wantsRead && !session.wantsWrite {
      context.close(promise: nil)
    }
  }
}
