internal import GRPCWire
internal import Gzip
internal import HTTP2Session
internal import NIOCore

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
  private let maximumMessageLength: Int
  private let session: HTTP2Session
  private var streams: [Int32: CallState] = [:]
  private var context: ChannelHandlerContext?
  private var flushScheduled = false

  private struct CallState {
    var head: RequestHead
    var method: Router.Method
    var deframer: MessageDeframer
    var messages: [FramedMessage] = []
    var task: Task<Void, Never>?
    var deadlineTimer: Scheduled<Void>?
    var answered = false
    var responseStarted = false
    /// A streaming writer waiting for the stream to drain.
    var parkedWriter: CheckedContinuation<Void, any Error>?
  }

  init(router: Router, maximumMessageLength: Int) throws {
    self.router = router
    self.maximumMessageLength = maximumMessageLength
    self.session = try HTTP2Session(role: .server)
  }

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
  }

  func channelActive(context: ChannelHandlerContext) {
    flush()  // the server's SETTINGS
    context.fireChannelActive()
  }

  func channelInactive(context: ChannelHandlerContext) {
    // Connection loss cancels every call still running.
    for (_, s) in streams {
      s.task?.cancel()
      s.deadlineTimer?.cancel()
      s.parkedWriter?.resume(throwing: CancellationError())
    }
    streams.removeAll()
    self.context = nil
    context.fireChannelInactive()
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    var buffer = unwrapInboundIn(data)
    let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
    do {
      for event in try session.receive(bytes) { handle(event) }
    } catch {
      // A connection error: nghttp2 queued GOAWAY; send it, then close.
      flush()
      context.close(promise: nil)
      return
    }
    flush()
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
      try? session.consume(streamID: id, count: bytes.count)
      guard var state = streams[id], !state.answered else { return }
      state.deframer.append(bytes)
      do {
        while let m = try state.deframer.next() { state.messages.append(m) }
        streams[id] = state
      } catch {
        streams[id] = state
        let code: GRPCStatus.Code
        if case .messageTooLarge = error.kind { code = .resourceExhausted } else { code = .internal }
        answer(streamID: id, result: .failure(RPCError(code: code, message: error.description)))
      }
    case .endStream(let id):
      endOfRequest(streamID: id)
    case .reset(let id, _), .streamClosed(let id, _):
      if let s = streams.removeValue(forKey: id) {
        s.task?.cancel()
        s.deadlineTimer?.cancel()
        s.parkedWriter?.resume(throwing: CancellationError())
      }
    case .goAway:
      break
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
      var state = CallState(head: head, method: method, deframer: MessageDeframer(maximumMessageLength: maximumMessageLength))
      if let timeout = head.timeoutNanoseconds, let loop = context?.eventLoop {
        state.deadlineTimer = loop.assumeIsolated().scheduleTask(in: .nanoseconds(min(timeout, Int64.max / 2))) { [self] in
          self.deadlineExpired(streamID: id)
        }
      }
      streams[id] = state
    }
  }

  private func endOfRequest(streamID id: Int32) {
    guard var state = streams[id], !state.answered, state.task == nil else { return }
    do {
      try state.deframer.finish()
    } catch {
      answer(streamID: id, result: .failure(RPCError(code: .internal, message: error.description)))
      return
    }
    guard state.messages.count == 1 else {
      let why = state.messages.isEmpty ? "no request message" : "more than one request message for a unary method"
      answer(streamID: id, result: .failure(RPCError(code: .unimplemented, message: why)))
      return
    }
    var request = state.messages[0].bytes
    if state.messages[0].compressed {
      guard state.head.encoding == "gzip" else {
        answer(streamID: id, result: .failure(RPCError(code: .internal, message: "compressed message without grpc-encoding")))
        return
      }
      do {
        request = try Gzip.decompress(request, limit: maximumMessageLength)
      } catch {
        let code: GRPCStatus.Code
        if case .limitExceeded = error.kind { code = .resourceExhausted } else { code = .internal }
        answer(streamID: id, result: .failure(RPCError(code: code, message: error.description)))
        return
      }
    }
    let deadline = state.head.timeoutNanoseconds.map { ContinuousClock.now.advanced(by: .nanoseconds($0)) }
    let callContext = ServerContext(path: state.head.path, metadata: state.head.metadata, deadline: deadline)
    let method = state.method
    let loop = context!.eventLoop
    let me = NIOLoopBound(self, eventLoop: loop)
    let writer = ResponseWriter(connection: me, loop: loop, streamID: id)
    // Bridge from the event loop to the handler's task and back; the task is cancelled when the
    // stream is reset, the deadline passes or the connection drops.
    state.task = Task {
      let result: Result<[UInt8]?, any Error>
      do {
        switch method {
        case .unary(let handler):
          result = .success(try await handler(request, callContext))
        case .serverStreaming(let handler):
          try await handler(request, callContext, writer)
          result = .success(nil)
        }
      } catch {
        result = .failure(error)
      }
      loop.execute {
        me.value.answer(streamID: id, result: result)
        me.value.flush()
      }
    }
    streams[id] = state
  }

  private func deadlineExpired(streamID id: Int32) {
    guard let state = streams[id], !state.answered else { return }
    state.task?.cancel()
    answer(streamID: id, result: .failure(RPCError(code: .deadlineExceeded, message: "deadline exceeded")))
    flush()
  }

  // MARK: Answers

  private func answer(streamID id: Int32, result: Result<[UInt8]?, any Error>) {
    guard var state = streams[id], !state.answered else { return }
    state.answered = true
    state.deadlineTimer?.cancel()
    state.parkedWriter?.resume(throwing: CancellationError())
    state.parkedWriter = nil
    let started = state.responseStarted
    streams[id] = state
    switch result {
    case .success(let response):
      do {
        if !started { try startResponse(id) }
        if let response { try session.send(streamID: id, bytes: MessageFraming.frame(response)) }
        try session.finish(streamID: id, trailers: Self.http2(CallHead.trailers(GRPCStatus(.ok))))
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
          try session.finish(streamID: id, trailers: Self.http2(CallHead.trailers(status, details: details)))
        } catch {
          try? session.resetStream(streamID: id, errorCode: 2)
        }
      } else {
        try? session.respondHeadersOnly(streamID: id, headers: Self.http2(CallHead.trailersOnly(status, details: details)))
      }
    }
  }

  private func startResponse(_ id: Int32) throws {
    try session.startResponse(streamID: id, headers: Self.http2(CallHead.responseHeaders(encoding: nil, supportedEncodings: Self.supportedEncodings)))
    streams[id]?.responseStarted = true
  }

  /// A streaming write, on the event loop: queue the message, flush at the end of this loop turn,
  /// and hold the writer while too much of the stream is waiting for the client's window.
  func enqueue(streamID id: Int32, message: [UInt8], continuation: CheckedContinuation<Void, any Error>) {
    guard let state = streams[id], !state.answered else {
      continuation.resume(throwing: CancellationError())
      return
    }
    do {
      if !state.responseStarted { try startResponse(id) }
      try session.send(streamID: id, bytes: MessageFraming.frame(message))
    } catch {
      continuation.resume(throwing: CancellationError())
      return
    }
    scheduleFlush()
    if session.pendingOutbound(streamID: id) > Self.highWatermark {
      streams[id]?.parkedWriter = continuation
    } else {
      continuation.resume()
    }
  }

  private func scheduleFlush() {
    guard !flushScheduled, let loop = context?.eventLoop else { return }
    flushScheduled = true
    loop.assumeIsolated().execute { [self] in
      flushScheduled = false
      flush()
    }
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

  private func flush() {
    guard let context else { return }
    guard let out = try? session.outbound() else {
      context.close(promise: nil)
      return
    }
    if !out.isEmpty {
      context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: out)), promise: nil)
    }
    resumeDrainedWriters()
    if !session.wantsRead && !session.wantsWrite {
      context.close(promise: nil)
    }
  }

  static func http2(_ fields: [HeaderField]) -> [HTTP2Header] {
    fields.map { HTTP2Header(name: $0.name, value: $0.value) }
  }
}
