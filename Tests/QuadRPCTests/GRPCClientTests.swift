internal import BenchService
internal import GRPCWire
internal import QuadProtobuf
internal import QuadRPC
internal import Synchronization
internal import Testing

/// Counts calls a test server handled, and what its handlers saw.
final class ServerProbe: Sendable {
  let calls = Mutex(0)
  let cancelled = Mutex(false)
}

/// Quad's client against Quad servers on real loopback sockets: load balancing, retries,
/// deadlines, cancellation, interceptors, limits.
@Suite("gRPC client")
struct GRPCClientTests {
  static let echo = "/bench.v1.Bench/Unary"

  /// A server whose Unary answers with `id` = `serverID`; with `failures`, the first calls fail
  /// with that status (and trailing metadata).
  static func server(id serverID: Int64, probe: ServerProbe, failFirst: Int = 0, failWith: GRPCStatus.Code = .unavailable, pushback: String? = nil) async throws -> GRPCServer {
    var router = Router()
    router.registerUnary(echo) { bytes, context in
      let n = probe.calls.withLock { c -> Int in
        c += 1
        return c
      }
      if n <= failFirst {
        if let pushback {
          var m = Metadata()
          m.add("grpc-retry-pushback-ms", pushback)
          context.addTrailingMetadata(m)
        }
        throw RPCError(code: failWith, message: "failing call \(n) on purpose")
      }
      var response = Bench_V1_Resp()
      response.id = serverID
      response.payload = try Bench_V1_Req(serializedBytes: bytes).payload
      return response.serializedBytes()
    }
    router.registerUnary("/bench.v1.Bench/Sleep") { _, _ in
      do {
        try await Task.sleep(for: .seconds(10))
      } catch {
        probe.cancelled.withLock { $0 = true }
        throw error
      }
      return []
    }
    return try await GRPCServer.start(router: router, host: "127.0.0.1", port: 0)
  }

  static func call(_ client: GRPCClient, payload: [UInt8] = [], options: CallOptions = CallOptions()) async throws -> Bench_V1_Resp {
    var request = Bench_V1_Req()
    request.payload = payload
    return try await client.unary(echo, request: request, responseType: Bench_V1_Resp.self, options: options).message
  }

  @Test("round_robin spreads calls over every address; pick_first keeps to the first")
  func loadBalancing() async throws {
    let p1 = ServerProbe(), p2 = ServerProbe()
    let s1 = try await Self.server(id: 1, probe: p1)
    let s2 = try await Self.server(id: 2, probe: p2)
    let target = "ipv4:127.0.0.1:\(s1.port),127.0.0.1:\(s2.port)"
    let rr = try GRPCClient(target: target, loadBalancing: .roundRobin)
    // Warm up: round_robin connects every address.
    for _ in 0..<4 { _ = try await Self.call(rr) }
    try await Task.sleep(for: .milliseconds(100))
    var seen: [Int64: Int] = [:]
    for _ in 0..<20 { seen[try await Self.call(rr).id, default: 0] += 1 }
    #expect(seen[1] == 10 && seen[2] == 10, "\(seen)")
    await rr.close()

    let pf = try GRPCClient(target: target, serviceConfig: ServiceConfig(json: #"{"loadBalancingConfig": [{"pick_first": {}}]}"#))
    var first: Set<Int64> = []
    for _ in 0..<10 { first.insert(try await Self.call(pf).id) }
    #expect(first == [1])
    // The first server goes away: pick_first moves to the next address.
    try await s1.stop()
    var after: Int64 = 0
    for _ in 0..<3 {
      do {
        after = try await Self.call(pf).id
        break
      } catch let e as RPCError where e.code == .unavailable {
        continue  // the call that saw the connection close
      }
    }
    #expect(after == 2)
    await pf.close()
    try await s2.stop()
  }

  static let retryConfig = #"""
    {"methodConfig": [{"name": [{"service": "bench.v1.Bench"}],
      "retryPolicy": {"maxAttempts": 4, "initialBackoff": "0.01s", "maxBackoff": "0.05s",
                      "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}
    """#

  @Test("Retries follow the retryPolicy for idempotent calls only: retryable codes only, attempts capped, pushback honoured")
  func retries() async throws {
    let config = try ServiceConfig(json: Self.retryConfig)
    // Two failures, then success on the third attempt.
    let p = ServerProbe()
    let s = try await Self.server(id: 7, probe: p, failFirst: 2)
    let client = try GRPCClient(target: "127.0.0.1:\(s.port)", serviceConfig: config)
    #expect(try await Self.call(client, options: CallOptions(idempotent: true)).id == 7)
    #expect(p.calls.withLock { $0 } == 3)
    // A call not marked idempotent is sent once: the server may have acted on it.
    let once = ServerProbe()
    let s1 = try await Self.server(id: 7, probe: once, failFirst: 2)
    let c1 = try GRPCClient(target: "127.0.0.1:\(s1.port)", serviceConfig: config)
    await #expect(throws: RPCError.self) { _ = try await Self.call(c1) }
    #expect(once.calls.withLock { $0 } == 1)
    // An idempotency key makes a write repeatable.
    #expect(try await Self.call(c1, options: CallOptions(metadata: [("idempotency-key", .text("k-1"))])).id == 7)
    #expect(once.calls.withLock { $0 } == 3)
    await c1.close()
    try await s1.stop()
    await client.close()
    try await s.stop()

    // Always failing: four attempts, then the last status.
    let p2 = ServerProbe()
    let s2 = try await Self.server(id: 7, probe: p2, failFirst: 100)
    let c2 = try GRPCClient(target: "127.0.0.1:\(s2.port)", serviceConfig: config)
    await #expect(throws: RPCError.self) { _ = try await Self.call(c2, options: CallOptions(idempotent: true)) }
    #expect(p2.calls.withLock { $0 } == 4)
    await c2.close()
    try await s2.stop()

    // A code the policy does not name is not retried; nor is a call the server pushes back on.
    for (code, pushback) in [(GRPCStatus.Code.invalidArgument, nil), (.unavailable, "-1")] as [(GRPCStatus.Code, String?)] {
      let p3 = ServerProbe()
      let s3 = try await Self.server(id: 7, probe: p3, failFirst: 100, failWith: code, pushback: pushback)
      let c3 = try GRPCClient(target: "127.0.0.1:\(s3.port)", serviceConfig: config)
      do {
        _ = try await Self.call(c3, options: CallOptions(idempotent: true))
        Issue.record("call succeeded")
      } catch let e as RPCError {
        #expect(e.code == code)
      }
      #expect(p3.calls.withLock { $0 } == 1)
      await c3.close()
      try await s3.stop()
    }
  }

  @Test("Malformed service configs are refused with the reason")
  func badServiceConfig() {
    #expect(throws: ServiceConfigError.self) { try ServiceConfig(json: "[1]") }
    #expect(throws: ServiceConfigError.self) {
      try ServiceConfig(json: #"{"methodConfig": [{"retryPolicy": {"maxAttempts": 1}}]}"#)
    }
    #expect(throws: ServiceConfigError.self) {
      try ServiceConfig(json: #"{"methodConfig": [{"retryPolicy": {"maxAttempts": 3, "initialBackoff": "1s", "maxBackoff": "2s", "backoffMultiplier": 2, "retryableStatusCodes": ["NOPE"]}}]}"#)
    }
  }

  @Test("A deadline ends the call with DEADLINE_EXCEEDED and cancels the server's handler; so does task cancellation")
  func deadlinesAndCancellation() async throws {
    let p = ServerProbe()
    let s = try await Self.server(id: 1, probe: p)
    let client = try GRPCClient(target: "127.0.0.1:\(s.port)")
    _ = try await Self.call(client)  // connected, so the deadline is spent at the server
    let start = ContinuousClock.now
    do {
      _ = try await client.unary("/bench.v1.Bench/Sleep", request: Bench_V1_Req(), responseType: Bench_V1_Resp.self, options: CallOptions(timeout: .milliseconds(100)))
      Issue.record("call succeeded")
    } catch let e as RPCError {
      #expect(e.code == .deadlineExceeded)
    }
    // Well before the handler's 10 s (loosely: a loaded machine may resume this task late).
    #expect(ContinuousClock.now - start < .seconds(8))
    // The handler's task sees the cancellation once it runs again (the pool may be busy).
    for _ in 0..<600 where !p.cancelled.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(50)) }
    #expect(p.cancelled.withLock { $0 })

    // A deadline passed on from a handler's context: already past, so the call fails at once.
    do {
      _ = try await client.unary(GRPCClientTests.echo, request: Bench_V1_Req(), responseType: Bench_V1_Resp.self, options: CallOptions(deadline: .now - .seconds(1)))
      Issue.record("call succeeded")
    } catch let e as RPCError {
      #expect(e.code == .deadlineExceeded)
    }

    let task = Task {
      try await client.unary("/bench.v1.Bench/Sleep", request: Bench_V1_Req(), responseType: Bench_V1_Resp.self)
    }
    try await Task.sleep(for: .milliseconds(100))
    task.cancel()
    do {
      _ = try await task.value
      Issue.record("call succeeded")
    } catch let e as RPCError {
      #expect(e.code == .cancelled)
    }
    await client.close()
    try await s.stop()
  }

  @Test("Nothing listening: UNAVAILABLE, and within the backoff the next call fails fast")
  func unreachable() async throws {
    // Bind a server and stop it, so the port is (very likely) closed.
    let s = try await Self.server(id: 1, probe: ServerProbe())
    let port = s.port
    try await s.stop()
    let client = try GRPCClient(target: "127.0.0.1:\(port)")
    for _ in 0..<2 {
      do {
        _ = try await Self.call(client)
        Issue.record("call succeeded")
      } catch let e as RPCError {
        #expect(e.code == .unavailable)
      }
    }
    await client.close()
    #expect(throws: RPCError.self) { try GRPCClient(target: "no-port-here") }
  }

  struct AddToken: ClientInterceptor {
    func intercept<R: Sendable>(_ context: ClientContext, next: (ClientContext) async throws -> R) async throws -> R {
      var c = context
      c.options.metadata.add("authorization", "Bearer campus")
      return try await next(c)
    }
  }

  struct RequireToken: ServerInterceptor {
    func intercept<R: Sendable>(_ context: ServerContext, next: (ServerContext) async throws -> R) async throws -> R {
      guard context.metadata.first("authorization") == "Bearer campus" else {
        throw RPCError(code: .unauthenticated, message: "missing token")
      }
      return try await next(context)
    }
  }

  @Test("Interceptors: the client's adds metadata, the server's refuses calls without it")
  func interceptors() async throws {
    var router = Router()
    BenchService().register(in: &router)
    router.intercept(with: RequireToken())
    let s = try await GRPCServer.start(router: router, host: "127.0.0.1", port: 0)
    let plain = try GRPCClient(target: "127.0.0.1:\(s.port)")
    do {
      _ = try await Self.call(plain)
      Issue.record("call succeeded")
    } catch let e as RPCError {
      #expect(e.code == .unauthenticated)
    }
    let withToken = try GRPCClient(target: "127.0.0.1:\(s.port)", interceptors: [AddToken()])
    #expect(try await Self.call(withToken, payload: [1, 2, 3]).payload == [1, 2, 3])
    await plain.close()
    await withToken.close()
    try await s.stop()
  }

  @Test("Large and compressed messages cross; a response above the client's limit is RESOURCE_EXHAUSTED")
  func sizes() async throws {
    let s = try await GRPCServer.start(router: BenchService.router(), host: "127.0.0.1", port: 0)
    let client = try GRPCClient(target: "127.0.0.1:\(s.port)")
    let big = [UInt8]((0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
    #expect(try await Self.call(client, payload: big).payload == big)
    #expect(try await Self.call(client, payload: big, options: CallOptions(compressRequests: true)).payload == big)
    var small = ClientSettings()
    small.maximumMessageLength = 1000
    let limited = try GRPCClient(target: "127.0.0.1:\(s.port)", settings: small)
    do {
      _ = try await Self.call(limited, payload: [UInt8](repeating: 1, count: 5000))
      Issue.record("call succeeded")
    } catch let e as RPCError {
      #expect(e.code == .resourceExhausted)
    }
    // Many concurrent calls multiplex on one connection.
    try await withThrowingTaskGroup(of: Void.self) { group in
      for i in 0..<200 {
        group.addTask {
          let r = try await Self.call(client, payload: [UInt8(i & 255)])
          #expect(r.payload == [UInt8(i & 255)])
        }
      }
      try await group.waitForAll()
    }
    await client.close()
    await limited.close()
    try await s.stop()
  }

  @Test("Server streaming: the client reads every message, and stopping early cancels the call")
  func serverStreaming() async throws {
    let s = try await GRPCServer.start(router: BenchService.router(), host: "127.0.0.1", port: 0)
    let client = Bench_V1_Bench.Client(try GRPCClient(target: "127.0.0.1:\(s.port)"))
    var request = Bench_V1_StreamReq()
    request.count = 5000
    request.payloadSize = 100
    let ids = try await client.stream(request) { responses in
      var ids: [Int64] = []
      for try await r in responses { ids.append(r.id) }
      return ids
    }
    #expect(ids == Array(0..<5000))
    request.count = 1_000_000
    let firstTen = try await client.stream(request) { responses in
      var n = 0
      for try await _ in responses {
        n += 1
        if n == 10 { break }
      }
      return n
    }
    #expect(firstTen == 10)
    await client.client.close()
    try await s.stop()
  }
}

@Suite("Send size limits")
struct SendLimitTests {
  @Test("A response above the server's send limit and a request above the client's are RESOURCE_EXHAUSTED")
  func sendLimits() async throws {
    var settings = ServerSettings()
    settings.maximumSendMessageLength = 1000
    let server = try await GRPCServer.start(router: BenchService.router(), host: "127.0.0.1", port: 0, settings: settings)
    let client = try GRPCClient(target: "127.0.0.1:\(server.port)")
    var request = Bench_V1_Req()
    request.payload = [UInt8](repeating: 1, count: 2000)
    do {
      _ = try await client.unary("/bench.v1.Bench/Unary", request: request, responseType: Bench_V1_Resp.self)
      Issue.record("call succeeded")
    } catch let e as RPCError {
      #expect(e.code == .resourceExhausted && e.message.contains("response message larger than max"), "\(e)")
    }
    var stream = Bench_V1_StreamReq()
    stream.count = 3
    stream.payloadSize = 5000
    do {
      try await Bench_V1_Bench.Client(client).stream(stream) { responses in for try await _ in responses {} }
      Issue.record("call succeeded")
    } catch let e as RPCError {
      #expect(e.code == .resourceExhausted, "\(e)")
    }
    var small = ClientSettings()
    small.maximumSendMessageLength = 100
    let limited = try GRPCClient(target: "127.0.0.1:\(server.port)", settings: small)
    do {
      _ = try await limited.unary("/bench.v1.Bench/Unary", request: request, responseType: Bench_V1_Resp.self)
      Issue.record("call succeeded")
    } catch let e as RPCError {
      #expect(e.code == .resourceExhausted && e.message.contains("request message larger than max"), "\(e)")
    }
    await client.close()
    await limited.close()
    try await server.stop()
  }
}

/// Counts what a slow client-streaming handler's client managed to write.
final class WriteProbe: Sendable {
  let written = Mutex(0)
  let read = Mutex(0)
}

@Suite("Request-stream back-pressure")
struct RequestBackPressureTests {
  @Test("A handler that does not read holds the client back: writes stop at the flow-control bound")
  func slowReader() async throws {
    let probe = WriteProbe()
    var router = Router()
    router.registerClientStreaming("/test.Slow/Upload") { requests, _ in
      try await Task.sleep(for: .seconds(1))  // not reading yet
      for try await _ in requests { probe.read.withLock { $0 += 1 } }
      return Bench_V1_Resp().serializedBytes()
    }
    let server = try await GRPCServer.start(router: router, host: "127.0.0.1", port: 0)
    let client = try GRPCClient(target: "127.0.0.1:\(server.port)")
    var message = Bench_V1_Req()
    message.payload = [UInt8](repeating: 3, count: 1024)
    let upload = Task {
      try await client.clientStreaming("/test.Slow/Upload", requestType: Bench_V1_Req.self, responseType: Bench_V1_Resp.self) { writer in
        for _ in 0..<5_000 {
          try await writer.write(message)
          probe.written.withLock { $0 += 1 }
        }
      }
    }
    try await Task.sleep(for: .milliseconds(700))
    let writtenWhileBlocked = probe.written.withLock { $0 }
    _ = try await upload.value
    print("request back-pressure: \(writtenWhileBlocked) of 5000 1-KiB messages written before the handler read")
    // The server holds at most its watermark plus one window; the client at most its own.
    #expect(writtenWhileBlocked < 1_000, "\(writtenWhileBlocked) writes went through")
    #expect(probe.read.withLock { $0 } == 5_000)
    await client.close()
    try await server.stop()
  }

  @Test("A stream the client does not read holds back only itself: other calls on the connection go on")
  func stalledStreamDoesNotStarveConnection() async throws {
    let s = try await GRPCServer.start(router: BenchService.router(), host: "127.0.0.1", port: 0)
    let client = try GRPCClient(target: "127.0.0.1:\(s.port)")
    var request = Bench_V1_StreamReq()
    request.count = 100_000
    request.payloadSize = 1000
    try await client.serverStreaming(
      "/bench.v1.Bench/Stream", request: request, responseType: Bench_V1_Resp.self, options: CallOptions(timeout: .seconds(60))
    ) { stream in
      var it = stream.makeAsyncIterator()
      _ = try await it.next()
      // The stream is not read on while its window fills; unary calls and a second stream still
      // get through on the same connection (its window is not the stalled stream's to hold).
      try await Task.sleep(for: .milliseconds(300))
      for i in 0..<20 {
        let r = try await GRPCClientTests.call(client, payload: [UInt8](repeating: UInt8(i), count: 20_000), options: CallOptions(timeout: .seconds(10)))
        #expect(r.payload.count == 20_000)
      }
      var small = Bench_V1_StreamReq()
      small.count = 200
      small.payloadSize = 1000
      let n = try await client.serverStreaming(
        "/bench.v1.Bench/Stream", request: small, responseType: Bench_V1_Resp.self, options: CallOptions(timeout: .seconds(10))
      ) { second in
        var count = 0
        for try await _ in second { count += 1 }
        return count
      }
      #expect(n == 200)
    }
    await client.close()
    try await s.stop()
  }
}
