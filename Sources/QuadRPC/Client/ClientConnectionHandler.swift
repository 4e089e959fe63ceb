internal import GRPCWire
internal import HTTP2Session
internal import NIOCore
internal import NIOTLS

/// Drives one client connection on its event loop: opens a stream per call, sends request
/// messages, and hands response headers, messages and status to each call's ``ClientCall``.
final class ClientConnectionHandler: ChannelInboundHandler {
  typealias InboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer

  private let io: ConnectionIO
  private var session: HTTP2Session { io.session }
  private let maximumMessageLength: Int
  private var streams: [Int32: StreamState] = [:]
  private var context: ChannelHandlerContext? { io.context }
  /// GOAWAY arrived or the connection closed: no new calls here.
  private(set) var isDraining = false
  /// Why the connection failed (a TLS handshake error, say), for the calls it ends.
  private var closeReason: String?
  /// Told (once) when the connection stops taking calls.
  private let onDrain: @Sendable () -> Void

  private struct StreamState {
    let call: ClientCall
    var deframer: MessageDeframer
    var encoding: String?
    var headersSeen = false
    var heldCredit = 0
    var parkedWriter: CheckedContinuation<Void, any Error>?
    var deadlineTimer: Scheduled<Void>?
  }

  /// Completed when the connection can take calls: at once for plaintext, after the handshake
  /// for TLS; failed with the reason when the connection closes first.
  private(set) var ready: EventLoopFuture<Void>?
  private var readyPromise: EventLoopPromise<Void>?
  private let waitsForTLS: Bool

  /// Keepalive (``ClientSettings/keepaliveInterval``): when a frame last arrived, the periodic
  /// check, and the wait for a PING's acknowledgement.
  private let keepalive: (interval: Duration, timeout: Duration, withoutCalls: Bool)?
  private var lastFrameAt = NIODeadline.now()
  private var keepaliveCheck: Scheduled<Void>?
  private var pingTimeout: Scheduled<Void>?

  init(settings: ClientSettings, tls: Bool, onDrain: @escaping @Sendable () -> Void) throws {
    self.io = ConnectionIO(session: try HTTP2Session(role: .client))
    self.maximumMessageLength = settings.maximumMessageLength
    self.keepalive = settings.keepaliveInterval.map { ($0, settings.keepaliveTimeout, settings.keepaliveWithoutCalls) }
    self.waitsForTLS = tls
    self.onDrain = onDrain
  }

  private func becameReady() {
    readyPromise?.succeed(())
    readyPromise = nil
  }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    if case TLSUserEvent.handshakeCompleted = event { becameReady() }
    context.fireUserInboundEventTriggered(event)
  }

  var activeStreams: Int { streams.count }

  func handlerAdded(context: ChannelHandlerContext) {
    let promise = context.eventLoop.makePromise(of: Void.self)
    readyPromise = promise
    ready = promise.futureResult
    io.attach(context)
    io.afterFlush = { [unowned self] in resumeDrainedWriters() }
    io.onEvents = { [unowned self] events in for e in events { handle(e) } }
    if context.channel.isActive { flush() }
  }

  func channelActive(context: ChannelHandlerContext) {
    if !waitsForTLS { becameReady() }
    flush()  // preface and SETTINGS
    lastFrameAt = .now()
    scheduleKeepaliveCheck()
    context.fireChannelActive()
  }

  // MARK: Keepalive

  /// Looks for silence every quarter interval (at least every 10 ms).
  private func scheduleKeepaliveCheck() {
    guard let keepalive, let loop = context?.eventLoop else { return }
    let step = TimeAmount.nanoseconds(max(keepalive.interval.saturatingNanoseconds / 4, 10_000_000))
    keepaliveCheck = loop.assumeIsolated().scheduleTask(in: step) { [self] in
      keepaliveTick()
      scheduleKeepaliveCheck()
    }
  }

  private func keepaliveTick() {
    guard let keepalive, pingTimeout == nil, context != nil else { return }
    guard keepalive.withoutCalls || !streams.isEmpty else { return }
    guard NIODeadline.now() - lastFrameAt >= TimeAmount(keepalive.interval) else { return }
    try? session.ping()
    flush()
    pingTimeout = context?.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(keepalive.timeout)) { [self] in
      closeReason = "keepalive timeout: no PING acknowledgement within \(keepalive.timeout)"
      context?.close(promise: nil)
    }
  }

  func channelInactive(context: ChannelHandlerContext) {
    readyPromise?.fail(RPCError(code: .unavailable, message: "connection closed before it was ready: \(closeReason ?? "closed by the peer")"))
    readyPromise = nil
    drain()
    let open = streams
    streams.removeAll()
    for (_, s) in open {
      s.deadlineTimer?.cancel()
      let why = closeReason.map { ": \($0)" } ?? ""
      s.parkedWriter?.resume(throwing: RPCError(code: .unavailable, message: "connection closed\(why)"))
      s.call.finish(.failure(RPCError(code: .unavailable, message: "connection closed before the call ended\(why)")))
    }
    keepaliveCheck?.cancel()
    pingTimeout?.cancel()
    io.attach(nil)
    context.fireChannelInactive()
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    if closeReason == nil { closeReason = "\(error)" }
    context.close(promise: nil)
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    lastFrameAt = .now()
    guard let events = io.receive(unwrapInboundIn(data)) else { return }
    for event in events { handle(event) }
    flush()
  }

  private func drain() {
    guard !isDraining else { return }
    isDraining = true
    onDrain()
  }

  // MARK: Calls (on the event loop)

  /// Refused before the stream existed: safe to send again on another connection.
  static let goingAway = RPCError(code: .unavailable, message: "connection is going away")

  /// Opens a stream for `call`; with `message`, sends it, and with `end`, half-closes.
  func open(call: ClientCall, headers: [HTTP2Header], message: [UInt8]?, end: Bool, timeout: Duration?) throws(RPCError) -> Int32 {
    guard !isDraining, context != nil else { throw Self.goingAway }
    let id: Int32
    do {
      id = try session.startRequest(headers: headers)
      if let message { try session.send(streamID: id, bytes: message) }
      if end { try session.finish(streamID: id) }
    } catch {
      throw RPCError(code: .unavailable, message: "cannot open a stream: \(error)")
    }
    var state = StreamState(call: call, deframer: MessageDeframer(maximumMessageLength: maximumMessageLength))
    if let timeout, let loop = context?.eventLoop {
      state.deadlineTimer = loop.assumeIsolated().scheduleTask(in: TimeAmount(timeout)) { [self] in
        cancel(streamID: id, RPCError(code: .deadlineExceeded, message: "deadline exceeded"))
      }
    }
    streams[id] = state
    scheduleFlush()
    return id
  }

  /// Queues a framed request message; holds the writer while the stream's window is full.
  func write(streamID id: Int32, framed: [UInt8], continuation: CheckedContinuation<Void, any Error>) {
    guard streams[id] != nil else {
      continuation.resume(throwing: RPCError(code: .cancelled, message: "call is over"))
      return
    }
    do {
      try session.send(streamID: id, bytes: framed)
    } catch {
      continuation.resume(throwing: RPCError(code: .cancelled, message: "call is over"))
      return
    }
    scheduleFlush()
    if session.pendingOutbound(streamID: id) > ServerConnectionHandler.highWatermark {
      streams[id]?.parkedWriter = continuation
    } else {
      continuation.resume()
    }
  }

  /// Ends the request stream (END_STREAM).
  func halfClose(streamID id: Int32) {
    guard streams[id] != nil else { return }
    try? session.finish(streamID: id)
    scheduleFlush()
  }

  /// Ends a call early (cancellation, deadline): RST_STREAM(CANCEL) and `status` to the caller.
  func cancel(streamID id: Int32, _ status: RPCError) {
    guard let s = streams.removeValue(forKey: id) else { return }
    s.deadlineTimer?.cancel()
    s.parkedWriter?.resume(throwing: status)
    try? session.resetStream(streamID: id, errorCode: 8)
    if s.heldCredit > 0 { try? session.consume(streamID: id, count: s.heldCredit) }
    s.call.finish(.failure(status))
    scheduleFlush()
  }

  /// The reader drained its response messages: return the credit held back.
  func returnCredit(streamID id: Int32) {
    guard let held = streams[id]?.heldCredit, held > 0 else { return }
    streams[id]?.heldCredit = 0
    try? session.consume(streamID: id, count: held)
    flush()
  }

  // MARK: Events

  private func handle(_ event: HTTP2Event) {
    switch event {
    case .headers(let id, let headers, let endStream):
      guard var s = streams[id] else { return }
      let fields = headers.map { HeaderField($0.name, $0.value) }
      if !s.headersSeen && !endStream {
        if let error = Self.checkResponseHead(fields) {
          fail(streamID: id, error)
          return
        }
        s.headersSeen = true
        for f in fields where f.name == "grpc-encoding" {
          let e = f.value.lowercased()
          if e != "identity" { s.encoding = e }
        }
        streams[id] = s
        s.call.received(headers: CallHead.customMetadata(fields))
      } else if endStream {
        end(streamID: id, trailers: fields, trailersOnly: !s.headersSeen)
      }
    case .data(let id, let bytes):
      received(streamID: id, bytes: bytes)
    case .endStream(let id):
      // END_STREAM on DATA without trailers: the spec requires a status.
      if streams[id] != nil {
        fail(streamID: id, RPCError(code: .internal, message: "server ended the stream without a grpc-status"))
      }
    case .reset(let id, let code):
      let status: RPCError
      switch code {
      case 7: status = RPCError(code: .unavailable, message: "stream refused by the server (REFUSED_STREAM)")
      case 8: status = RPCError(code: .cancelled, message: "stream cancelled by the server (RST_STREAM CANCEL)")
      case 11: status = RPCError(code: .resourceExhausted, message: "server said ENHANCE_YOUR_CALM")
      case 12: status = RPCError(code: .permissionDenied, message: "server said INADEQUATE_SECURITY")
      default: status = RPCError(code: .internal, message: "stream reset by the server (HTTP/2 error \(code))")
      }
      fail(streamID: id, status)
    case .streamClosed(let id, _):
      if streams[id] != nil {
        fail(streamID: id, RPCError(code: .unavailable, message: "stream closed before a status arrived"))
      }
    case .pingAcknowledged:
      pingTimeout?.cancel()
      pingTimeout = nil
    case .goAway(let last, _):
      drain()
      for id in streams.keys where id > last {
        fail(streamID: id, RPCError(code: .unavailable, message: "server is going away (GOAWAY) before this call started"))
      }
    }
  }

  /// A response head that is not gRPC: the HTTP status mapped per the spec, or INTERNAL for a
  /// wrong content type.
  static func checkResponseHead(_ fields: [HeaderField]) -> RPCError? {
    var status: Int?
    var contentType: String?
    for f in fields {
      if f.name == ":status" { status = Int(f.value) }
      if f.name == "content-type" { contentType = f.value }
    }
    if status != 200 {
      let s = GRPCStatus.fromHTTPStatus(status ?? 0)
      return RPCError(code: s.code, message: s.message)
    }
    guard let contentType, GRPCContentType.isGRPC(contentType) else {
      return RPCError(code: .unknown, message: "response content-type \(contentType ?? "(none)") is not application/grpc")
    }
    return nil
  }

  private func received(streamID id: Int32, bytes: [UInt8]) {
    guard var s = streams[id], s.headersSeen else {
      try? session.consume(streamID: id, count: bytes.count)
      if streams[id] != nil {
        fail(streamID: id, RPCError(code: .internal, message: "DATA before response headers"))
      }
      return
    }
    s.deframer.append(bytes)
    var hold = false
    do {
      while let m = try s.deframer.next() {
        let message = try ReceivedMessages.decompress(m, encoding: s.encoding, limit: maximumMessageLength)
        if s.call.messages.push(message) { hold = true }
      }
    } catch {
      streams[id] = s
      try? session.consume(streamID: id, count: bytes.count)
      fail(streamID: id, ReceivedMessages.status(for: error))
      return
    }
    if hold || s.heldCredit > 0 {
      if s.heldCredit == 0 { s.call.messages.holdingCredit() }
      s.heldCredit += bytes.count
    } else {
      try? session.consume(streamID: id, count: bytes.count)
    }
    streams[id] = s
  }

  private func end(streamID id: Int32, trailers: [HeaderField], trailersOnly: Bool) {
    guard let s = streams.removeValue(forKey: id) else { return }
    s.deadlineTimer?.cancel()
    s.parkedWriter?.resume(throwing: RPCError(code: .cancelled, message: "call is over"))
    if trailersOnly, let error = Self.checkResponseHead(trailers), !trailers.contains(where: { $0.name == "grpc-status" }) {
      s.call.finish(.failure(error))
      return
    }
    let (status, details) = CallHead.status(fromTrailers: trailers)
    let metadata = CallHead.customMetadata(trailers)
    if status.code == .ok {
      do {
        try s.deframer.finish()
      } catch {
        s.call.finish(.failure(RPCError(code: .internal, message: "\(error)")))
        return
      }
      s.call.finish(.success(metadata))
    } else {
      var e = RPCError(code: status.code, message: status.message, details: details)
      e.trailers = metadata
      s.call.finish(.failure(e))
    }
  }

  /// Ends a call with a client-side error: the stream is reset.
  private func fail(streamID id: Int32, _ error: RPCError) {
    cancel(streamID: id, error)
  }

  // MARK: Output

  private func scheduleFlush() { io.scheduleFlush() }

  private func flush() { io.flush() }

  /// Wakes writers whose streams drained below the low watermark.
  private func resumeDrainedWriters() {
    for (id, s) in streams {
      if let parked = s.parkedWriter, session.pendingOutbound(streamID: id) < ServerConnectionHandler.lowWatermark {
        streams[id]?.parkedWriter = nil
        parked.resume()
      }
    }
  }
}
