package import GRPCWire
internal import Gzip
internal import HTTP2Session
internal import NIOCore
internal import NIOPosix
internal import NIOSSL
package import QuadProtobuf
internal import Synchronization

/// Limits a client applies to what it receives.
package struct ClientSettings: Sendable {
  /// Largest response message accepted (RESOURCE_EXHAUSTED above it), after decompression.
  package var maximumMessageLength = 4 * 1024 * 1024
  /// Largest request message sent; a larger one fails with RESOURCE_EXHAUSTED before it leaves.
  package var maximumSendMessageLength = 4 * 1024 * 1024
  /// Keepalive: after this long without a frame from the server, send a PING (off when `nil`,
  /// the default; gRPC's `keepalive_time`). Servers limit how often they accept pings: keep it
  /// well above a second.
  package var keepaliveInterval: Duration?
  /// Keepalive: close the connection (its calls fail UNAVAILABLE, the next call reconnects) when
  /// a PING is not acknowledged within this (default 20 s, gRPC's `keepalive_timeout`).
  package var keepaliveTimeout: Duration = .seconds(20)
  /// Keepalive: ping also while no call is open (default `false`, as gRPC's
  /// `keepalive_permit_without_calls`).
  package var keepaliveWithoutCalls = false
  /// Set by the client from its ``ClientTLS``.
  var tls: PreparedTLS?
  package init() {}
}

/// A client's TLS context, made once, and the server name it verifies.
struct PreparedTLS: Sendable {
  let context: NIOSSLContext
  let serverName: String?
}

/// What a client interceptor sees of a call, and may change before it starts.
package struct ClientContext: Sendable {
  /// `/package.Service/Method`.
  package var path: String
  package var options: CallOptions
}

/// Runs around every call a client makes (credentials, logging, metrics, tracing): it may add
/// metadata, change the timeout, refuse the call or observe its outcome.
package protocol ClientInterceptor: Sendable {
  func intercept<Response: Sendable>(
    _ context: ClientContext,
    next: (ClientContext) async throws -> Response
  ) async throws -> Response
}

/// A unary or client-streaming call's answer with the metadata around it.
package struct UnaryResponse<Message: Sendable>: Sendable {
  package var message: Message
  package var initialMetadata: Metadata
  package var trailingMetadata: Metadata
}

/// A gRPC client: one HTTP/2 connection per resolved address, many calls multiplexed on each,
/// spread by `pick_first` or `round_robin`, with reconnection backoff, deadlines, cancellation,
/// metadata, gzip, and the service config's retry policy for unary calls.
///
/// ```swift
/// let client = try GRPCClient(target: "dns:///registrar.campus:50051")
/// let student = try await Campus_V1_Students.Client(client).getStudent(request)
/// ```
package final class GRPCClient: Sendable {
  private let group: MultiThreadedEventLoopGroup
  private let target: NameResolver.Target
  private let settings: ClientSettings
  private let policy: LoadBalancingPolicy
  private let serviceConfig: ServiceConfig
  private let interceptors: [any ClientInterceptor]
  private let subchannels = Mutex<[Subchannel]?>(nil)
  private let rotation = Atomic<Int>(0)
  private let userAgent = "quad-grpc/0.1"
  private let scheme: String
  private let authority: String

  /// - Parameters:
  ///   - target: `host:port`, `dns:///host:port`, `ipv4:a:p,b:p` or `ipv6:[a]:p,...`.
  ///   - loadBalancing: overrides the service config's policy (default `pick_first`).
  ///   - tls: connect with TLS (ALPN `h2`), verifying the server, and with a client certificate
  ///     for mutual TLS.
  /// - Throws: ``RPCError`` (INVALID_ARGUMENT) for a malformed target or unusable TLS files.
  package init(
    target: String,
    loadBalancing: LoadBalancingPolicy? = nil,
    serviceConfig: ServiceConfig = ServiceConfig(),
    interceptors: [any ClientInterceptor] = [],
    settings: ClientSettings = ClientSettings(),
    tls: ClientTLS? = nil,
    threads: Int = 1
  ) throws(RPCError) {
    let target = try NameResolver.parse(target)
    self.target = target
    var settings = settings
    if let tls {
      do {
        let host = tls.serverHostOverride ?? target.endpoints[0].host
        // SNI and hostname checks take names, not addresses.
        let isAddress = (try? SocketAddress(ipAddress: host, port: 0)) != nil
        settings.tls = PreparedTLS(context: try tls.makeContext(), serverName: isAddress ? nil : host)
      } catch {
        throw RPCError(code: .invalidArgument, message: error.description)
      }
      scheme = "https"
      authority = tls.serverHostOverride.map { "\($0):\(target.endpoints[0].port)" } ?? target.authority
    } else {
      scheme = "http"
      authority = target.authority
    }
    self.policy = loadBalancing ?? serviceConfig.loadBalancing ?? .pickFirst
    self.serviceConfig = serviceConfig
    self.interceptors = interceptors
    self.settings = settings
    self.group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
  }

  /// Closes every connection (calls in flight fail with UNAVAILABLE) and releases the threads.
  package func close() async {
    let subs = subchannels.withLock { s -> [Subchannel] in
      defer { s = [] }
      return s ?? []
    }
    for s in subs { await s.close() }
    try? await group.shutdownGracefully()
  }

  // MARK: Connections

  private func subchannelList() async throws -> [Subchannel] {
    if let s = subchannels.withLock({ $0 }) { return s }
    let addresses = try await NameResolver.resolve(target)
    return subchannels.withLock { s in
      if let s { return s }
      let made = addresses.map { Subchannel(address: $0, group: group, settings: settings) }
      s = made
      return made
    }
  }

  /// A ready connection, when the policy's choice is ready now (no waiting).
  private func readyPick() -> ClientConnection? {
    guard let subs = subchannels.withLock({ $0 }), !subs.isEmpty else { return nil }
    switch policy {
    case .pickFirst:
      return subs[0].readyConnection
    case .roundRobin:
      let start = rotation.wrappingAdd(1, ordering: .relaxed).oldValue % subs.count
      for i in 0..<subs.count {
        if let c = subs[(start + i) % subs.count].readyConnection { return c }
      }
      return nil
    }
  }

  /// A ready connection chosen by the load-balancing policy.
  private func pick() async throws -> ClientConnection {
    let subs = try await subchannelList()
    guard !subs.isEmpty else { throw RPCError(code: .unavailable, message: "client is closed") }
    var order = subs
    if policy == .roundRobin {
      let start = rotation.wrappingAdd(1, ordering: .relaxed).oldValue % subs.count
      order = Array(subs[start...] + subs[..<start])
    }
    for s in order {
      if let c = s.readyConnection { return c }
      if policy == .pickFirst { break }
    }
    if policy == .roundRobin {
      for s in subs { s.connectInBackground() }
    }
    var lastError: any Error = RPCError(code: .unavailable, message: "no address to connect to")
    for s in order {
      do {
        return try await s.connection()
      } catch {
        lastError = error
      }
    }
    throw lastError
  }

  // MARK: Streams

  /// An open stream of one call attempt.
  struct OpenCall: Sendable {
    let connection: ClientConnection
    let call: ClientCall
    let streamID: Int32

    func cancel(_ status: RPCError) {
      let handler = connection.handler
      let id = streamID
      connection.loop.execute { handler.value.cancel(streamID: id, status) }
    }
  }

  private final class StreamIDCell: Sendable {
    let value = Atomic<Int32>(0)
  }

  /// Picks a connection and opens a stream on it; a connection that turned out to be going away
  /// (GOAWAY arrived first) is replaced, up to three times, since no stream was sent on it.
  private func open(_ context: ClientContext, timeout: Duration?, first: [UInt8]?, end: Bool) async throws -> OpenCall {
    let start = ContinuousClock.now
    var tries = 0
    while true {
      let left = timeout.map { $0 - (ContinuousClock.now - start) }
      do {
        return try await openOnce(context, timeout: left, first: first, end: end)
      } catch let e as RPCError where e == ClientConnectionHandler.goingAway && tries < 3 {
        tries += 1
        await Task.yield()
      }
    }
  }

  /// Picks a connection and opens a stream on it; the time spent connecting counts against the
  /// call's timeout.
  private func openOnce(_ context: ClientContext, timeout: Duration?, first: [UInt8]?, end: Bool) async throws -> OpenCall {
    let connection: ClientConnection
    var timeout = timeout
    if let ready = readyPick() {
      connection = ready
    } else if let limit = timeout {
      let start = ContinuousClock.now
      connection = try await withThrowingTaskGroup(of: ClientConnection?.self) { group in
        group.addTask { try await self.pick() }
        group.addTask {
          try await Task.sleep(for: limit)
          return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let picked = first else {
          throw RPCError(code: .deadlineExceeded, message: "deadline exceeded while connecting")
        }
        return picked
      }
      timeout = limit - (ContinuousClock.now - start)
      if timeout! <= .zero { throw RPCError(code: .deadlineExceeded, message: "deadline exceeded while connecting") }
    } else {
      connection = try await pick()
    }
    let cell = StreamIDCell()
    let handler = connection.handler
    let loop = connection.loop
    let call = ClientCall(returnCredit: {
      loop.execute { handler.value.returnCredit(streamID: cell.value.load(ordering: .relaxed)) }
    })
    let headers = requestHeaders(context, timeout: timeout)
    let framed = first.map { Self.frame($0, compress: context.options.compressRequests) }
    let streamTimeout = timeout
    let id = try await connection.onLoop { h in
      try h.open(call: call, headers: headers, message: framed, end: end, timeout: streamTimeout)
    }
    cell.value.store(id, ordering: .relaxed)
    return OpenCall(connection: connection, call: call, streamID: id)
  }

  private func requestHeaders(_ context: ClientContext, timeout: Duration?) -> [HTTP2Header] {
    var h = [
      HTTP2Header(name: ":method", value: "POST"),
      HTTP2Header(name: ":scheme", value: scheme),
      HTTP2Header(name: ":path", value: context.path),
      HTTP2Header(name: ":authority", value: authority),
      HTTP2Header(name: "content-type", value: "application/grpc"),
      HTTP2Header(name: "te", value: "trailers"),
      HTTP2Header(name: "user-agent", value: userAgent),
      HTTP2Header(name: "grpc-accept-encoding", value: "identity,gzip"),
    ]
    if context.options.compressRequests { h.append(HTTP2Header(name: "grpc-encoding", value: "gzip")) }
    if let timeout {
      h.append(HTTP2Header(name: "grpc-timeout", value: GRPCTimeout.encode(nanoseconds: max(1, timeout.saturatingNanoseconds))))
    }
    for f in CallHead.metadataFields(context.options.metadata) { h.append(HTTP2Header(name: f.name, value: f.value)) }
    return h
  }

  func checkSendSize(_ count: Int) throws(RPCError) {
    guard count <= settings.maximumSendMessageLength else {
      throw RPCError(code: .resourceExhausted, message: "request message larger than max (\(count) vs. \(settings.maximumSendMessageLength))")
    }
  }

  static func frame(_ message: [UInt8], compress: Bool) -> [UInt8] {
    compress ? MessageFraming.frame(Gzip.compress(message), compressed: true) : MessageFraming.frame(message)
  }

  private func intercepted<R: Sendable>(_ context: ClientContext, _ body: (ClientContext) async throws -> R) async throws -> R {
    try await Self.run(interceptors[...], context, body)
  }

  private static func run<R: Sendable>(
    _ chain: ArraySlice<any ClientInterceptor>, _ context: ClientContext, _ body: (ClientContext) async throws -> R
  ) async throws -> R {
    guard let first = chain.first else { return try await body(context) }
    return try await first.intercept(context) { ctx in try await run(chain.dropFirst(), ctx, body) }
  }

  private func effectiveTimeout(_ context: ClientContext) -> Duration? {
    let configured = serviceConfig.config(forPath: context.path)?.timeout
    switch (context.options.timeout, configured) {
    case (let a?, let b?): return min(a, b)
    case (let a?, nil): return a
    case (nil, let b?): return b
    case (nil, nil): return nil
    }
  }

  // MARK: Calls

  /// A unary call, retried per the service config's `retryPolicy` while the server has not
  /// started answering.
  package func unary<Request: QuadProtobuf.Message, Response: QuadProtobuf.Message>(
    _ path: String,
    request: Request,
    responseType: Response.Type = Response.self,
    options: CallOptions = CallOptions()
  ) async throws -> UnaryResponse<Response> {
    let bytes = request.serializedBytes()
    try checkSendSize(bytes.count)
    return try await intercepted(ClientContext(path: path, options: options)) { context in
      let timeout = effectiveTimeout(context)
      let deadline = timeout.map { ContinuousClock.now + $0 }
      let method = serviceConfig.config(forPath: context.path)
      if let hedging = method?.hedgingPolicy, context.options.mayRepeat {
        return try await self.hedged(context, bytes, hedging, deadline: deadline, Response.self)
      }
      let retry = method?.retryPolicy
      var attempt = 1
      while true {
        let remaining = deadline.map { $0 - ContinuousClock.now }
        if let remaining, remaining <= .zero { throw RPCError(code: .deadlineExceeded, message: "deadline exceeded") }
        let open: OpenCall
        do {
          open = try await self.open(context, timeout: remaining, first: bytes, end: true)
        } catch let e as RPCError {
          guard let delay = Self.retryDelay(retry, attempt: attempt, error: e, committed: false, deadline: deadline) else { throw e }
          try await Task.sleep(for: delay)
          attempt += 1
          continue
        }
        do {
          return try await Self.single(open, Response.self)
        } catch let e as RPCError {
          // Once sent, only a call that may be repeated is retried (the server may have acted
          // on it); a failure to open a stream above sent nothing and is always retryable.
          let committed = open.call.receivedResponseHeaders || !context.options.mayRepeat
          guard let delay = Self.retryDelay(retry, attempt: attempt, error: e, committed: committed, deadline: deadline) else { throw e }
          try await Task.sleep(for: delay)
          attempt += 1
        }
      }
    }
  }

  /// A unary call sent as up to `policy.maxAttempts` copies (gRFC A6 hedging): the next copy
  /// after `hedgingDelay` without an answer, or at once after a non-fatal status; the first
  /// answer (or fatal status) wins and the other copies are cancelled.
  private func hedged<Response: QuadProtobuf.Message>(
    _ context: ClientContext, _ bytes: [UInt8], _ policy: HedgingPolicy, deadline: ContinuousClock.Instant?, _ type: Response.Type
  ) async throws -> UnaryResponse<Response> {
    typealias Outcome = HedgeOutcome<UnaryResponse<Response>>
    return try await withThrowingTaskGroup(of: Outcome.self) { group in
      defer { group.cancelAll() }
      var sent = 0
      var running = 0
      var lastError = RPCError(code: .deadlineExceeded, message: "deadline exceeded")
      func send() {
        sent += 1
        running += 1
        let remaining = deadline.map { $0 - ContinuousClock.now }
        group.addTask {
          do {
            let open = try await self.open(context, timeout: remaining, first: bytes, end: true)
            return .answered(.success(try await Self.single(open, Response.self)))
          } catch let e as RPCError {
            return .answered(.failure(e))
          } catch {
            return .answered(.failure(RPCError(code: .cancelled, message: "\(error)")))
          }
        }
        if sent < policy.maxAttempts {
          group.addTask {
            try await Task.sleep(for: policy.hedgingDelay)
            return .delayPassed
          }
        }
      }
      send()
      while let outcome = try await group.next() {
        switch outcome {
        case .delayPassed:
          if sent < policy.maxAttempts, deadline.map({ ContinuousClock.now < $0 }) ?? true { send() }
        case .answered(.success(let response)):
          return response
        case .answered(.failure(let e)):
          running -= 1
          lastError = e
          guard policy.nonFatalStatusCodes.contains(e.code) else { throw e }
          if sent < policy.maxAttempts, deadline.map({ ContinuousClock.now < $0 }) ?? true {
            send()
          } else if running == 0 {
            throw e
          }
        }
      }
      throw lastError
    }
  }

  /// What one task of a hedged call reports: an attempt's outcome, or that the delay before the
  /// next copy passed.
  enum HedgeOutcome<Answer: Sendable>: Sendable {
    case answered(Result<Answer, RPCError>)
    case delayPassed
  }

  /// How long to wait before the next attempt, or `nil` to give up (gRFC A6: retryable code, not
  /// committed, attempts left, server pushback honoured, deadline not passed).
  static func retryDelay(_ policy: RetryPolicy?, attempt: Int, error: RPCError, committed: Bool, deadline: ContinuousClock.Instant?) -> Duration? {
    guard let policy, !committed, attempt < policy.maxAttempts, policy.retryableStatusCodes.contains(error.code) else { return nil }
    var delay: Duration
    if let pushback = error.trailers.first("grpc-retry-pushback-ms") {
      guard let ms = Int(pushback), ms >= 0 else { return nil }
      delay = .milliseconds(ms)
    } else {
      var cap = policy.initialBackoff
      for _ in 1..<attempt { cap = cap * policy.backoffMultiplier }
      cap = min(cap, policy.maxBackoff)
      delay = cap * Double.random(in: 0..<1)
    }
    if let deadline, ContinuousClock.now + delay >= deadline { return nil }
    return delay
  }

  /// Reads exactly one response message and the OK status of an attempt.
  private static func single<Response: QuadProtobuf.Message>(_ open: OpenCall, _ type: Response.Type) async throws -> UnaryResponse<Response> {
    try await withTaskCancellationHandler {
      let first = try await open.call.nextMessage()
      let trailers = try await open.call.status()
      guard let first else { throw RPCError(code: .unimplemented, message: "server sent no response message for a unary call") }
      if try await open.call.nextMessage() != nil {
        throw RPCError(code: .unimplemented, message: "server sent more than one response message for a unary call")
      }
      let message = try decodeResponse(Response.self, first)
      return UnaryResponse(message: message, initialMetadata: try await open.call.initialMetadata(), trailingMetadata: trailers)
    } onCancel: {
      open.cancel(RPCError(code: .cancelled, message: "call cancelled by the client"))
    }
  }

  static func decodeResponse<M: QuadProtobuf.Message>(_ type: M.Type, _ bytes: [UInt8]) throws -> M {
    do {
      return try M(serializedBytes: bytes)
    } catch {
      throw RPCError(code: .internal, message: "cannot parse \(M.protoMessageName) response: \(error)")
    }
  }

  /// A server-streaming call: `body` reads the responses; the call is cancelled if `body`
  /// returns before they end.
  package func serverStreaming<Request: QuadProtobuf.Message, Response: QuadProtobuf.Message, Result: Sendable>(
    _ path: String,
    request: Request,
    responseType: Response.Type = Response.self,
    options: CallOptions = CallOptions(),
    _ body: (ResponseStream<Response>) async throws -> Result
  ) async throws -> Result {
    let bytes = request.serializedBytes()
    try checkSendSize(bytes.count)
    return try await intercepted(ClientContext(path: path, options: options)) { context in
      let open = try await self.open(context, timeout: effectiveTimeout(context), first: bytes, end: true)
      return try await Self.run(open) { try await body(ResponseStream(open.call)) }
    }
  }

  /// A client-streaming call: `body` writes the requests (the request stream is closed when it
  /// returns), then the single response is awaited.
  package func clientStreaming<Request: QuadProtobuf.Message, Response: QuadProtobuf.Message>(
    _ path: String,
    requestType: Request.Type = Request.self,
    responseType: Response.Type = Response.self,
    options: CallOptions = CallOptions(),
    _ body: (RequestWriter<Request>) async throws -> Void
  ) async throws -> UnaryResponse<Response> {
    try await intercepted(ClientContext(path: path, options: options)) { context in
      let open = try await self.open(context, timeout: effectiveTimeout(context), first: nil, end: false)
      let writer = RequestWriter<Request>(open: open, compress: context.options.compressRequests, limit: settings.maximumSendMessageLength)
      return try await Self.run(open) {
        try await body(writer)
        writer.finish()
        return try await Self.single(open, Response.self)
      }
    }
  }

  /// A bidirectional call: `body` writes requests (calling ``RequestWriter/finish()`` when done)
  /// and reads responses as it likes; the call is cancelled if `body` returns before it ends.
  package func bidirectional<Request: QuadProtobuf.Message, Response: QuadProtobuf.Message, Result: Sendable>(
    _ path: String,
    requestType: Request.Type = Request.self,
    responseType: Response.Type = Response.self,
    options: CallOptions = CallOptions(),
    _ body: (RequestWriter<Request>, ResponseStream<Response>) async throws -> Result
  ) async throws -> Result {
    try await intercepted(ClientContext(path: path, options: options)) { context in
      let open = try await self.open(context, timeout: effectiveTimeout(context), first: nil, end: false)
      let writer = RequestWriter<Request>(open: open, compress: context.options.compressRequests, limit: settings.maximumSendMessageLength)
      return try await Self.run(open) { try await body(writer, ResponseStream(open.call)) }
    }
  }

  /// Runs a streaming call's body; task cancellation, an error, or an early return resets the
  /// stream.
  private static func run<R: Sendable>(_ open: OpenCall, _ body: () async throws -> R) async throws -> R {
    try await withTaskCancellationHandler {
      do {
        let r = try await body()
        if !open.call.isFinished { open.cancel(RPCError(code: .cancelled, message: "the caller stopped reading")) }
        return r
      } catch is CancellationError {
        let cancelled = RPCError(code: .cancelled, message: "call cancelled by the client")
        open.cancel(cancelled)
        throw cancelled
      } catch {
        if !open.call.isFinished { open.cancel(RPCError(code: .cancelled, message: "the caller failed: \(error)")) }
        throw error
      }
    } onCancel: {
      open.cancel(RPCError(code: .cancelled, message: "call cancelled by the client"))
    }
  }
}

/// The response messages of a streaming call, in order. Iteration ends after an OK status and
/// throws the ``RPCError`` of any other.
package struct ResponseStream<Element: QuadProtobuf.Message>: AsyncSequence, Sendable {
  let call: ClientCall

  init(_ call: ClientCall) { self.call = call }

  /// The response headers' custom metadata.
  package func initialMetadata() async throws -> Metadata { try await call.initialMetadata() }

  /// The trailers' custom metadata, once the call ended OK (throws its error otherwise).
  package func trailingMetadata() async throws -> Metadata { try await call.status() }

  package struct AsyncIterator: AsyncIteratorProtocol {
    let call: ClientCall
    package mutating func next() async throws -> Element? {
      guard let bytes = try await call.nextMessage() else { return nil }
      return try GRPCClient.decodeResponse(Element.self, bytes)
    }
  }

  package func makeAsyncIterator() -> AsyncIterator { AsyncIterator(call: call) }
}

/// Writes the request messages of a client-streaming or bidirectional call; a write suspends
/// while the server's flow-control window is full.
package struct RequestWriter<Message: QuadProtobuf.Message>: Sendable {
  let open: GRPCClient.OpenCall
  let compress: Bool
  let limit: Int

  /// Sends one message.
  ///
  /// - Throws: RESOURCE_EXHAUSTED for a message above the send limit (the call goes on); the
  ///   call's status once it has ended.
  package func write(_ message: Message) async throws {
    let bytes = message.serializedBytes()
    guard bytes.count <= limit else {
      throw RPCError(code: .resourceExhausted, message: "request message larger than max (\(bytes.count) vs. \(limit))")
    }
    let framed = GRPCClient.frame(bytes, compress: compress)
    let handler = open.connection.handler
    let id = open.streamID
    let loop = open.connection.loop
    do {
      try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
        loop.execute { handler.value.write(streamID: id, framed: framed, continuation: c) }
      }
    } catch {
      // A write after the call ended reports how it ended (deadline, server status).
      throw open.call.finalError ?? error
    }
  }

  /// Ends the request stream (the server sees END_STREAM).
  package func finish() {
    let handler = open.connection.handler
    let id = open.streamID
    open.connection.loop.execute { handler.value.halfClose(streamID: id) }
  }
}
