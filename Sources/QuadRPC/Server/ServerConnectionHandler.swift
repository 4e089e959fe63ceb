internal import GRPCWire
internal import Gzip
internal import HTTP2Session
internal import NIOCore
internal import NIOSSL
internal import NIOTLS
internal import Synchronization

/// Drives one connection: socket bytes into its ``HTTP2Session``, request heads through
/// ``CallHead``, messages through ``MessageDeframer``, calls to their handlers, and the answers
/// back out, flushing once per read burst.
final class ServerConnectionHandler: ChannelInboundHandler {
  typealias InboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer

  static let supportedEncodings = ["gzip"]
  /// A streaming writer suspends above this many bytes queued on its stream, and resumes below
  /// ``lowWatermark``.
  static let highWatermark = 64 * 1024
  static let lowWatermark = 16 * 1024

  private let router: Router
  let settings: ServerSettings
  let stats: ServerStats
  private var maximumMessageLength: Int { settings.maximumMessageLength }
  let io: ConnectionIO
  var session: HTTP2Session { io.session }
  private var streams: [Int32: CallState] = [:]
  var context: ChannelHandlerContext? { io.context }
  /// Keepalive, idleness, age, shutdown and flood state (ServerConnectionHandler+Lifecycle).
  var lifecycle = Lifecycle()
  /// Where handler tasks run: this connection's event loop (``ServerSettings/handlersOnEventLoop``)
  /// or, when `nil`, Swift's global pool.
  private var executor: EventLoopTaskExecutor?
  /// Request bytes buffered on this connection before handlers took them.
  private var bufferedBytes = 0
  private var peer = ""
  /// Between a read and the end of its burst, when ``channelReadComplete(context:)`` flushes.
  private var inReadBurst = false
  private var peerIdentity: PeerIdentity?

  /// One call's state on the loop (a class: updated in place, never copied in and out).
  private final class CallState {
    let head: RequestHead
    let method: Router.Method
    var deframer: MessageDeframer
    /// The request message of a unary or server-streaming call.
    var request: FramedMessage?
    var tooManyRequests = false
    /// The request stream of a client-streaming or bidirectional call.
    var inbound: InboundMessages?
    /// DATA bytes whose flow-control credit is held back while the handler catches up.
    var heldCredit = 0
    var task: Task<Void, Never>?
    var deadlineTimer: Scheduled<Void>?
    var options: ResponseOptions?
    var answered = false
    var responseStarted = false
    /// Whether response messages may be gzip-compressed (decided with the response headers).
    var gzipResponses = false
    /// A streaming writer waiting for the stream to drain.
    var parkedWriter: CheckedContinuation<Void, any Error>?
    /// Bytes of this call counted in the connection's ``bufferedBytes``.
    var buffered = 0

    init(head: RequestHead, method: Router.Method, deframer: MessageDeframer) {
      self.head = head
      self.method = method
      self.deframer = deframer
    }
  }

  init(router: Router, settings: ServerSettings, stats: ServerStats) throws {
    self.router = router
    self.settings = settings
    self.stats = stats
    self.io = ConnectionIO(session: try HTTP2Session(role: .server, configuration: settings.sessionConfiguration))
  }

  var hasCalls: Bool { !streams.isEmpty }

  func handlerAdded(context: ChannelHandlerContext) {
    if settings.handlersOnEventLoop { executor = EventLoopTaskExecutor(context.eventLoop) }
    io.attach(context)
    io.afterFlush = { [unowned self] in resumeDrainedWriters() }
    io.onEvents = { [unowned self] events in for e in events { handle(e) } }
  }

  func channelActive(context: ChannelHandlerContext) {
    if let a = context.channel.remoteAddress {
      peer = "\(a.ipAddress ?? "unknown"):\(a.port ?? 0)"
    }
    flush()  // the server's SETTINGS
    startLifecycle()
    context.fireChannelActive()
  }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    if case TLSUserEvent.handshakeCompleted = event,
      let certificate = try? context.pipeline.syncOperations.nioSSL_peerCertificate()
    {
      peerIdentity = PeerIdentity(certificate)
    }
    context.fireUserInboundEventTriggered(event)
  }

  func channelInactive(context: ChannelHandlerContext) {
    // Connection loss cancels every call still running.
    for (_, s) in streams { Self.abandon(s) }
    streams.removeAll()
    stopLifecycle()
    io.attach(nil)
    context.fireChannelInactive()
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    inReadBurst = true
    guard let events = io.receive(unwrapInboundIn(data)) else { return }
    for event in events { handle(event) }
    framesReceived()
  }

  /// The end of a read burst: handlers started in it have run to their first suspension (they
  /// start immediately, see ``startHandler(streamID:)``), so what they answered leaves in the
  /// same write as the burst's acknowledgements.
  func channelReadComplete(context: ChannelHandlerContext) {
    inReadBurst = false
    flush()
    context.fireChannelReadComplete()
  }

  /// Ends a call's handler side: its task, timer, writer and request stream.
  private static func abandon(_ s: CallState) {
    s.task?.cancel()
    s.deadlineTimer?.cancel()
    s.parkedWriter?.resume(throwing: CancellationError())
    s.inbound?.finish(CancellationError())
  }

  // MARK: Events

  private func handle(_ event: HTTP2Event) {
    switch event {
    case .headers(let id, let headers, let endStream):
      if streams[id] == nil {
        begin(streamID: id, headers: headers)
      }
      if endStream { endOfRequest(streamID: id) }
    case .data(let id, let bytes):
      received(streamID: id, bytes: bytes)
    case .endStream(let id):
      endOfRequest(streamID: id)
    case .reset(let id, _), .streamClosed(let id, _):
      if let s = streams.removeValue(forKey: id) {
        Self.abandon(s)
        bufferedBytes -= s.buffered
        if s.heldCredit > 0 { try? session.consume(streamID: id, count: s.heldCredit) }
        if streams.isEmpty { becameIdle() }
      }
    case .goAway:
      break
    case .pingAcknowledged:
      pingAcknowledged()
    }
  }

  private func begin(streamID id: Int32, headers: [HTTP2Header]) {
    let fields = headers.map { HeaderField($0.name, $0.value) }
    switch CallHead.validateRequest(fields, supportedEncodings: Self.supportedEncodings) {
    case .failure(.http(let status, let grpcStatus)):
      try? session.respondHeadersOnly(streamID: id, headers: [
        HTTP2Header(name: ":status", value: String(status)),
        HTTP2Header(name: "grpc-status", value: String(grpcStatus.code.rawValue)),
        HTTP2Header(name: "grpc-message", value: PercentEncoding.encode(grpcStatus.message)),
      ])
    case .failure(.grpc(let status, let extra)):
      try? session.respondHeadersOnly(streamID: id, headers: Self.http2(CallHead.trailersOnly(status, extraHeaders: extra)))
    case .success(let head):
      guard let method = router.method(for: head.path) else {
        let status = GRPCStatus(.unimplemented, "Method not found: \(head.path)")
        try? session.respondHeadersOnly(streamID: id, headers: Self.http2(CallHead.trailersOnly(status)))
        return
      }
      let state = CallState(head: head, method: method, deframer: MessageDeframer(maximumMessageLength: maximumMessageLength))
      if let timeout = head.timeoutNanoseconds, let loop = context?.eventLoop {
        state.deadlineTimer = loop.assumeIsolated().scheduleTask(in: .nanoseconds(min(timeout, Int64.max / 2))) { [self] in
          self.deadlineExpired(streamID: id)
        }
      }
      streams[id] = state
      if method.streamsRequests { startHandler(streamID: id) }
    }
  }

  /// DATA for a call: deframe, decompress, and queue or keep the messages; return the
  /// flow-control credit at once unless a request stream is above its watermark.
  private func received(streamID id: Int32, bytes: [UInt8]) {
    guard let state = streams[id], !state.answered else {
      try? session.consume(streamID: id, count: bytes.count)
      return
    }
    state.deframer.append(bytes)
    var hold = false
    do {
      while let m = try state.deframer.next() {
        if let inbound = state.inbound {
          let message = try decompress(m, head: state.head)
          if inbound.push(message) { hold = true }
        } else if state.request == nil {
          state.request = m
        } else {
          state.tooManyRequests = true
        }
      }
    } catch {
      try? session.consume(streamID: id, count: bytes.count)
      fail(streamID: id, error)
      return
    }
    if hold || state.heldCredit > 0 {
      if state.heldCredit == 0 { state.inbound?.holdingCredit() }
      state.heldCredit += bytes.count
    } else {
      try? session.consume(streamID: id, count: bytes.count)
    }
    let buffered = state.deframer.bufferedCount + (state.request?.bytes.count ?? 0)
    bufferedBytes += buffered - state.buffered
    state.buffered = buffered
    if bufferedBytes > settings.connectionBufferBudget {
      stats.callsOverBudget.add(1, ordering: .relaxed)
      fail(streamID: id, RPCError(code: .resourceExhausted, message: "connection holds more than \(settings.connectionBufferBudget) bytes of unread requests"))
    }
  }

  /// Takes a call's bytes out of the connection's buffer budget.
  private func release(streamID id: Int32) {
    guard let b = streams[id]?.buffered, b > 0 else { return }
    bufferedBytes -= b
    streams[id]?.buffered = 0
  }

  /// The handler drained its request stream: give the client its credit back.
  func returnCredit(streamID id: Int32) {
    guard let held = streams[id]?.heldCredit, held > 0 else { return }
    streams[id]?.heldCredit = 0
    try? session.consume(streamID: id, count: held)
    flush()
  }

  private func decompress(_ m: FramedMessage, head: RequestHead) throws(RPCError) -> [UInt8] {
    try ReceivedMessages.decompress(m, encoding: head.encoding, limit: maximumMessageLength)
  }

  /// Ends a call with the status an error stands for (deframing, decompression, or RPCError).
  private func fail(streamID id: Int32, _ error: any Error) {
    let rpc = ReceivedMessages.status(for: error)
    if let s = streams[id] {
      s.task?.cancel()
      s.inbound?.finish(CancellationError())
    }
    answer(streamID: id, result: .failure(rpc))
  }

  private func endOfRequest(streamID id: Int32) {
    guard let state = streams[id], !state.answered else { return }
    do {
      try state.deframer.finish()
    } catch {
      fail(streamID: id, error)
      return
    }
    if let inbound = state.inbound {
      inbound.finish()
      return
    }
    guard state.task == nil else { return }
    guard state.request != nil, !state.tooManyRequests else {
      let why = state.request == nil ? "no request message" : "more than one request message for a unary-request method"
      answer(streamID: id, result: .failure(RPCError(code: .unimplemented, message: why)))
      return
    }
    startHandler(streamID: id)
  }

  /// Starts the call's handler in a task of its own, bridged from the event loop and back; the
  /// task is cancelled when the stream is reset, the deadline passes or the connection drops.
  private func startHandler(streamID id: Int32) {
    guard let state = streams[id], let loop = context?.eventLoop else { return }
    var request: [UInt8] = []
    if let m = state.request {
      do {
        request = try decompress(m, head: state.head)
      } catch {
        fail(streamID: id, error)
        return
      }
    }
    let deadline = state.head.timeoutNanoseconds.map { ContinuousClock.now.advanced(by: .nanoseconds($0)) }
    let callContext = ServerContext(
      path: state.head.path, metadata: state.head.metadata, deadline: deadline, peer: peer,
      requestCompressed: state.request?.compressed ?? false, peerIdentity: peerIdentity)
    state.options = callContext.response
    let me = NIOLoopBound(self, eventLoop: loop)
    let writer = ResponseWriter(connection: me, loop: loop, streamID: id)
    var requests: RequestStream<[UInt8]>?
    if state.method.streamsRequests {
      let inbound = InboundMessages(returnCredit: { loop.execute { me.value.returnCredit(streamID: id) } })
      state.inbound = inbound
      requests = RequestStream(inbound)
    }
    let method = state.method
    let router = self.router
    bufferedBytes -= state.buffered
    state.buffered = 0
    let requestBytes = request
    let requestStream = requests
    let body: @Sendable () async -> Void = {
      let result: Result<[UInt8]?, any Error>
      do {
        result = .success(try await router.intercepted(callContext) { ctx -> [UInt8]? in
          switch method {
          case .unary(let handler):
            return try await handler(requestBytes, ctx)
          case .serverStreaming(let handler):
            try await handler(requestBytes, ctx, writer)
            return nil
          case .clientStreaming(let handler):
            return try await handler(requestStream!, ctx)
          case .bidirectional(let handler):
            try await handler(requestStream!, ctx, writer)
            return nil
          }
        })
      } catch {
        result = .failure(error)
      }
      if loop.inEventLoop {
        // Handlers on the event loop answer in place; answers of one loop turn share a write.
        me.value.answer(streamID: id, result: result)
        me.value.scheduleFlush()
      } else {
        loop.execute {
          me.value.answer(streamID: id, result: result)
          me.value.flush()
        }
      }
    }
    if let executor {
      // Runs at once on this thread up to the handler's first suspension, and after it on the
      // loop: a handler that answers without suspending costs no enqueue, no hop.
      state.task = Task.immediate(executorPreference: executor, operation: body)
    } else {
      state.task = Task(operation: body)
    }
  }

  private func deadlineExpired(streamID id: Int32) {
    guard let state = streams[id], !state.answered else { return }
    state.task?.cancel()
    state.inbound?.finish(CancellationError())
    answer(streamID: id, result: .failure(RPCError(code: .deadlineExceeded, message: "deadline exceeded")))
    flush()
  }

  // MARK: Answers

  private func answer(streamID id: Int32, result: Result<[UInt8]?, any Error>) {
    release(streamID: id)
    guard let state = streams[id], !state.answered else { return }
    state.answered = true
    state.deadlineTimer?.cancel()
    state.parkedWriter?.resume(throwing: CancellationError())
    state.parkedWriter = nil
    if state.heldCredit > 0 {
      try? session.consume(streamID: id, count: state.heldCredit)
      state.heldCredit = 0
    }
    let started = state.responseStarted
    let options = state.options?.state.withLock { $0 }
    var result = result
    if case .success(let response?) = result, response.count > settings.maximumSendMessageLength {
      result = .failure(Self.tooLargeToSend(response.count, settings.maximumSendMessageLength))
    }
    switch result {
    case .success(let response):
      do {
        if !started { try startResponse(id) }
        if let response { try session.send(streamID: id, bytes: frame(response, streamID: id, compressed: nil)) }
        let trailing = options?.trailing ?? []
        try session.finish(streamID: id, trailers: trailing.isEmpty ? Self.okTrailers : Self.http2(CallHead.trailers(GRPCStatus(.ok), metadata: trailing)))
      } catch {
        try? session.resetStream(streamID: id, errorCode: 2)
      }
    case .failure(let error):
      let status: GRPCStatus
      var details: [UInt8]?
      if let e = error as? RPCError {
        status = GRPCStatus(e.code, e.message)
        details = e.details
      } else if error is CancellationError {
        status = GRPCStatus(.cancelled, "call cancelled")
      } else {
        status = GRPCStatus(.unknown, "handler failed")
      }
      if started {
        do {
          try session.finish(streamID: id, trailers: Self.http2(CallHead.trailers(status, details: details, metadata: options?.trailing ?? [])))
        } catch {
          try? session.resetStream(streamID: id, errorCode: 2)
        }
      } else {
        var metadata = options?.initial ?? []
        metadata.append(contentsOf: options?.trailing ?? [])
        try? session.respondHeadersOnly(streamID: id, headers: Self.http2(CallHead.trailersOnly(status, details: details, metadata: metadata)))
      }
    }
  }

  /// Sends the response headers: the handler's initial metadata, and `grpc-encoding: gzip` when
  /// the handler asked for compression and the client accepts it.
  private func startResponse(_ id: Int32) throws {
    guard let state = streams[id] else { return }
    let options = state.options?.state.withLock { $0 }
    state.gzipResponses = (options?.compress ?? false) && state.head.acceptedEncodings.contains("gzip")
    state.responseStarted = true
    let initial = options?.initial ?? []
    if !state.gzipResponses && initial.isEmpty {
      try session.startResponse(streamID: id, headers: Self.plainResponseHeaders)
    } else {
      try session.startResponse(streamID: id, headers: Self.http2(CallHead.responseHeaders(
        encoding: state.gzipResponses ? "gzip" : nil, supportedEncodings: Self.supportedEncodings, metadata: initial)))
    }
  }

  static func tooLargeToSend(_ size: Int, _ limit: Int) -> RPCError {
    RPCError(code: .resourceExhausted, message: "response message larger than max (\(size) vs. \(limit))")
  }

  /// The response headers and OK trailers of most calls, built once.
  static let plainResponseHeaders = http2(CallHead.responseHeaders(encoding: nil, supportedEncodings: supportedEncodings))
  static let okTrailers = http2(CallHead.trailers(GRPCStatus(.ok)))

  /// Frames one response message, gzip-compressed when the call allows it and the message (or
  /// the call's default) asks for it.
  private func frame(_ message: [UInt8], streamID id: Int32, compressed: Bool?) -> [UInt8] {
    guard let state = streams[id], state.gzipResponses else { return MessageFraming.frame(message) }
    let want = compressed ?? (state.options?.state.withLock { $0.compress } ?? false)
    guard want else { return MessageFraming.frame(message) }
    return MessageFraming.frame(Gzip.compress(message), compressed: true)
  }

  /// A streaming write, on the event loop: queue the message, flush at the end of this loop turn,
  /// and hold the writer while too much of the stream is waiting for the client's window.
  func enqueue(streamID id: Int32, message: [UInt8], compressed: Bool?, continuation: CheckedContinuation<Void, any Error>) {
    guard let state = streams[id], !state.answered else {
      continuation.resume(throwing: CancellationError())
      return
    }
    guard message.count <= settings.maximumSendMessageLength else {
      continuation.resume(throwing: Self.tooLargeToSend(message.count, settings.maximumSendMessageLength))
      return
    }
    guard send(message, streamID: id, state: state, compressed: compressed) else {
      continuation.resume(throwing: CancellationError())
      return
    }
    if session.pendingOutbound(streamID: id) > Self.highWatermark {
      streams[id]?.parkedWriter = continuation
    } else {
      continuation.resume()
    }
  }

  /// Starts the response if it has not started, queues one framed message on the stream and
  /// flushes at the end of this burst or turn; false when the session refused it.
  private func send(_ message: [UInt8], streamID id: Int32, state: CallState, compressed: Bool?) -> Bool {
    do {
      if !state.responseStarted { try startResponse(id) }
      try session.send(streamID: id, bytes: frame(message, streamID: id, compressed: compressed))
    } catch {
      return false
    }
    scheduleFlush()
    return true
  }

  /// A streaming write that must not wait, on the event loop: sends `message` unless the
  /// stream is over, already holds more than ``highWatermark`` bytes for the client's window, or
  /// the message needs the awaiting path (too large: its error comes from ``enqueue``).
  func offer(streamID id: Int32, message: [UInt8]) -> ResponseWriter.Offer {
    guard let state = streams[id], !state.answered, state.parkedWriter == nil,
      message.count <= settings.maximumSendMessageLength,
      session.pendingOutbound(streamID: id) <= Self.highWatermark
    else { return .notSent }
    guard send(message, streamID: id, state: state, compressed: nil) else { return .notSent }
    return session.pendingOutbound(streamID: id) > Self.highWatermark ? .sentAndFull : .sent
  }

  /// Flushes at the end of this read burst, or else at the end of this loop turn.
  func scheduleFlush() {
    if !inReadBurst { io.scheduleFlush() }
  }

  /// Wakes writers whose streams drained below the low watermark.
  private func resumeDrainedWriters() {
    for (id, state) in streams {
      if let parked = state.parkedWriter, session.pendingOutbound(streamID: id) < Self.lowWatermark {
        streams[id]?.parkedWriter = nil
        parked.resume()
      }
    }
  }

  private func flush() { io.flush() }

  static func http2(_ fields: [HeaderField]) -> [HTTP2Header] {
    fields.map { HTTP2Header(name: $0.name, value: $0.value) }
  }
}
