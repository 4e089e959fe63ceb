internal import BenchService
internal import GRPCWire
internal import Gzip
internal import HTTP2Session
internal import QuadProtobuf
internal import QuadRPC
internal import Synchronization
internal import Testing
internal import TestSupport

/// Clients that misbehave at the socket: each gets the spec's error, the server keeps serving
/// other connections, and its memory stays bounded.
@Suite("Hostile clients at the socket", .serialized)
struct HostileClientTests {
  static let echo = "/bench.v1.Bench/Unary"

  /// A server with Bench (Unary, Stream) and an endless server stream.
  static func server(_ settings: ServerSettings = ServerSettings()) async throws -> GRPCServer {
    var router = Router()
    BenchService().register(in: &router)
    router.registerServerStreaming("/test.Hostile/Endless") { _, _, writer in
      while true { try await writer.write([UInt8](repeating: 7, count: 16 * 1024)) }
    }
    return try await GRPCServer.start(router: router, host: "127.0.0.1", port: 0, settings: settings)
  }

  /// A well-behaved call on a fresh connection still works.
  static func stillServes(_ server: GRPCServer) async throws {
    let client = try GRPCClient(target: "127.0.0.1:\(server.port)")
    var request = Bench_V1_Req()
    request.id = 42
    let r = try await client.unary(echo, request: request, responseType: Bench_V1_Resp.self, options: CallOptions(timeout: .seconds(5)))
    #expect(r.message.id == 42)
    await client.close()
  }

  /// Runs one exchange with nghttp2 as the client: `build` queues requests on the session; the
  /// answers come back as events, and the status of stream 1 is read from its trailers.
  /// It waits until the server has ended every stream in `streams` (or the connection), for up to a
  /// minute: a loaded machine answers late, not never.
  static func exchange(_ port: Int, streams: Set<Int32> = [1], until done: (@Sendable ([HTTP2Event]) -> Bool)? = nil, _ build: @escaping @Sendable (HTTP2Session) throws -> Void) async throws -> (events: [HTTP2Event], status: GRPCStatus?) {
    try await RawSocket.run {
      let socket = try RawSocket(port: port)
      let session = try HTTP2Session(role: .client)
      try build(session)
      socket.send(try session.outbound())
      var events: [HTTP2Event] = []
      var open = streams
      let deadline = ContinuousClock.now + .seconds(60)
      while ContinuousClock.now < deadline {
        let (bytes, closed) = socket.receive(quiet: 0.5)
        if !bytes.isEmpty { events += try session.receive(bytes) }
        for event in events {
          switch event {
          case .headers(let id, _, true), .reset(let id, _), .streamClosed(let id, _): open.remove(id)
          default: break
          }
        }
        socket.send(try session.outbound())
        if closed || (done.map { $0(events) } ?? open.isEmpty) { break }
      }
      var status: GRPCStatus?
      for case .headers(1, let headers, true) in events {
        status = CallHead.status(fromTrailers: headers.map { HeaderField($0.name, $0.value) }).0
      }
      return (events, status)
    }
  }

  static func requestHeaders(_ path: String = echo, extra: [HTTP2Header] = []) -> [HTTP2Header] {
    [HTTP2Header(name: ":method", value: "POST"), HTTP2Header(name: ":scheme", value: "http"),
     HTTP2Header(name: ":path", value: path), HTTP2Header(name: ":authority", value: "localhost"),
     HTTP2Header(name: "content-type", value: "application/grpc"), HTTP2Header(name: "te", value: "trailers")] + extra
  }

  @Test("Bad gRPC framing: truncated, oversized, bad flag, invalid gzip, a zip bomb, headers too large")
  func badFraming() async throws {
    let server = try await Self.server()
    // The stream ends inside a message.
    let truncated = try await Self.exchange(server.port) { s in
      let id = try s.startRequest(headers: Self.requestHeaders())
      try s.send(streamID: id, bytes: [0, 0, 0, 0, 10, 1, 2, 3])
      try s.finish(streamID: id)
    }
    #expect(truncated.status?.code == .internal, "\(truncated.events)")
    // A length prefix past the 4 MiB limit is refused before anything is buffered.
    let oversized = try await Self.exchange(server.port) { s in
      let id = try s.startRequest(headers: Self.requestHeaders())
      try s.send(streamID: id, bytes: [0, 0x7F, 0xFF, 0xFF, 0xFF, 1, 2, 3])
    }
    #expect(oversized.status?.code == .resourceExhausted, "\(oversized.events)")
    // A compressed flag other than 0 or 1.
    let flag = try await Self.exchange(server.port) { s in
      let id = try s.startRequest(headers: Self.requestHeaders())
      try s.send(streamID: id, bytes: [7, 0, 0, 0, 0])
      try s.finish(streamID: id)
    }
    #expect(flag.status?.code == .internal, "\(flag.events)")
    // Compressed garbage, and gzip that inflates past the limit.
    let gzipHeaders = Self.requestHeaders(extra: [HTTP2Header(name: "grpc-encoding", value: "gzip")])
    let garbage = try await Self.exchange(server.port) { s in
      let id = try s.startRequest(headers: gzipHeaders)
      try s.send(streamID: id, bytes: MessageFraming.frame([0x1F, 0x8B, 8, 0, 1, 2, 3, 4, 5, 6], compressed: true))
      try s.finish(streamID: id)
    }
    #expect(garbage.status?.code == .internal, "\(garbage.events)")
    let bomb = try await Self.exchange(server.port) { s in
      let id = try s.startRequest(headers: gzipHeaders)
      try s.send(streamID: id, bytes: MessageFraming.frame(Gzip.compress([UInt8](repeating: 0, count: 16 << 20)), compressed: true))
      try s.finish(streamID: id)
    }
    #expect(bomb.status?.code == .resourceExhausted, "\(bomb.events)")
    // An unknown encoding is UNIMPLEMENTED; a wrong content type is HTTP 415.
    let unknownEncoding = try await Self.exchange(server.port) { s in
      let id = try s.startRequest(headers: Self.requestHeaders(extra: [HTTP2Header(name: "grpc-encoding", value: "zstd")]))
      try s.finish(streamID: id)
    }
    #expect(unknownEncoding.status?.code == .unimplemented, "\(unknownEncoding.events)")
    let json = try await Self.exchange(server.port) { s in
      var h = Self.requestHeaders()
      h[4] = HTTP2Header(name: "content-type", value: "application/json")
      let id = try s.startRequest(headers: h)
      try s.finish(streamID: id)
    }
    let jsonStatus = json.events.compactMap { e -> String? in
      if case .headers(1, let h, _) = e { return h.first { $0.name == ":status" }?.value }
      return nil
    }
    #expect(jsonStatus == ["415"], "\(json.events)")
    // A header list over 16 KiB: the stream is refused, the connection lives on.
    let huge = try await Self.exchange(server.port, streams: [1, 3]) { s in
      let id = try s.startRequest(headers: Self.requestHeaders(extra: [HTTP2Header(name: "x-huge", value: String(repeating: "a", count: 40_000))]))
      try s.finish(streamID: id)
      let ok = try s.startRequest(headers: Self.requestHeaders())
      try s.send(streamID: ok, bytes: MessageFraming.frame(Bench_V1_Req().serializedBytes()))
      try s.finish(streamID: ok)
    }
    #expect(huge.events.contains { if case .reset(1, _) = $0 { return true } else { return false } } || huge.status?.code != .ok, "\(huge.events)")
    #expect(huge.events.contains { if case .headers(3, _, true) = $0 { return true } else { return false } }, "\(huge.events)")
    try await Self.stillServes(server)
    try await server.stop()
  }

  /// Sends the preface, then `attack`, and reads the server's answer.
  /// Sends `frames` and reads until the connection is closed: as this client sees it, or as the
  /// server's own count of open connections says (`serverClosed`, checked while this client's
  /// socket is still open, so its own close cannot be mistaken for the server's).
  static func attack(_ port: Int, _ frames: [UInt8], serverClosed: @escaping @Sendable () -> Bool = { false }) async throws -> (goAway: UInt32?, closed: Bool) {
    try await RawSocket.run {
      let socket = try RawSocket(port: port)
      socket.send(RawFrames.preface + RawFrames.settings + RawFrames.settingsAck)
      socket.send(frames)
      // Reads until the server closes; a loaded machine may take seconds between its GOAWAY
      // and the close, so only a minute of silence counts as "never closed".
      var all: [UInt8] = []
      var closed = false
      let deadline = ContinuousClock.now + .seconds(60)
      while !closed && ContinuousClock.now < deadline {
        let (bytes, c) = socket.receive(quiet: 1)
        all += bytes
        closed = c || serverClosed()
      }
      return (RawFrames.goAwayCode(all), closed)
    }
  }

  @Test("Floods of PING, SETTINGS, WINDOW_UPDATE, empty DATA, streams and RST_STREAM end in GOAWAY and close")
  func floods() async throws {
    let server = try await Self.server()
    let before = residentMemory()
    let pings = (0..<1_000).flatMap { _ in RawFrames.ping() }
    let settings = (0..<500).flatMap { _ in RawFrames.settings }
    let windowUpdates = (0..<20_000).flatMap { _ in RawFrames.windowUpdate() }
    let emptyData = RawFrames.request(1, path: Self.echo) + (0..<1_000).flatMap { _ in RawFrames.data(1, []) }
    // Rapid reset: open a stream and reset it at once, thousands of times.
    let rapidReset = stride(from: UInt32(1), to: 8_000, by: 2).flatMap { id in
      RawFrames.request(id, path: Self.echo) + RawFrames.reset(id)
    }
    // Streams opened and never finished, far past the concurrency limit.
    let openStreams = stride(from: UInt32(1), to: 30_000, by: 2).flatMap { id in RawFrames.request(id, path: Self.echo) }
    var results: [String: (UInt32?, Bool)] = [:]
    for (name, frames) in [("ping", pings), ("settings", settings), ("window_update", windowUpdates),
                           ("empty_data", emptyData), ("rapid_reset", rapidReset), ("open_streams", openStreams)] {
      let r = try await Self.attack(server.port, frames, serverClosed: { server.connectionCount == 0 })
      results[name] = (r.goAway, r.closed)
      #expect(r.goAway != nil && r.goAway != 0, "\(name): GOAWAY \(String(describing: r.goAway))")
      #expect(r.closed, "\(name): connection closed")
      try await Self.stillServes(server)
    }
    print("floods: GOAWAY codes", results.mapValues { $0.0.map(String.init) ?? "none" })
    #expect(server.stats.connectionsClosedForAbuse.load(ordering: .relaxed) >= 4)
    let grown = residentMemory() - before
    print("floods: resident memory grew by \(grown >> 10) KiB")
    #expect(grown < 64 << 20)
    try await server.stop()
  }

  @Test("Garbage, an HTTP/1.1 request and a bad preface are closed; serving goes on")
  func badPrefaces() async throws {
    let server = try await Self.server()
    for bytes in [[UInt8](repeating: 0xFF, count: 4096), Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8), Array("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n".utf8)] {
      let r = try await Self.attack(server.port, bytes)
      #expect(r.closed)
      try await Self.stillServes(server)
    }
    try await server.stop()
  }

  @Test("A client that never reads: the writer is held back and memory stays bounded")
  func neverReads() async throws {
    let server = try await Self.server()
    let before = residentMemory()
    // Ten connections each start an endless server stream and never read a byte.
    let sockets = try await RawSocket.run {
      try (0..<10).map { _ -> RawSocket in
        let s = try RawSocket(port: server.port)
        s.send(RawFrames.preface + RawFrames.settings + RawFrames.settingsAck
          + RawFrames.request(1, path: "/test.Hostile/Endless") + RawFrames.data(1, MessageFraming.frame([]), end: true))
        return s
      }
    }
    try await Task.sleep(for: .seconds(2))
    let grown = residentMemory() - before
    print("never-reading clients: resident memory grew by \(grown >> 10) KiB for 10 endless streams")
    #expect(grown < 64 << 20)
    try await Self.stillServes(server)
    _ = sockets
    try await server.stop(grace: .milliseconds(100))
  }

  /// How many streams ended RESOURCE_EXHAUSTED.
  static func exhausted(_ events: [HTTP2Event]) -> Int {
    events.filter { e in
      if case .headers(_, let h, true) = e {
        return CallHead.status(fromTrailers: h.map { HeaderField($0.name, $0.value) }).0.code == .resourceExhausted
      }
      return false
    }.count
  }

  @Test("Unfinished requests past the connection's buffer budget are RESOURCE_EXHAUSTED")
  func bufferBudget() async throws {
    var settings = ServerSettings()
    settings.connectionBufferBudget = 1 << 20
    let server = try await Self.server(settings)
    let r = try await Self.exchange(server.port, until: { Self.exhausted($0) > 0 }) { s in
      // Twenty streams each send 100 KB of a 1 MB message and stop.
      for _ in 0..<20 {
        let id = try s.startRequest(headers: Self.requestHeaders())
        try s.send(streamID: id, bytes: [0, 0, 0x10, 0, 0] + [UInt8](repeating: 1, count: 100_000))
      }
    }
    #expect(Self.exhausted(r.events) > 0, "\(r.events.count) events")
    #expect(server.stats.callsOverBudget.load(ordering: .relaxed) > 0)
    try await Self.stillServes(server)
    try await server.stop(grace: .milliseconds(100))
  }
}
