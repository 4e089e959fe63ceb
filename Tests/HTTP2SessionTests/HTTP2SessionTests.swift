@testable internal import HTTP2Session
internal import Testing

/// A client and a server session wired back to back in memory.
final class Pair {
  let client: HTTP2Session
  let server: HTTP2Session
  var serverEvents: [HTTP2Event] = []
  var clientEvents: [HTTP2Event] = []

  init(server: HTTP2Session.Configuration = .defaults, client: HTTP2Session.Configuration = .defaults) throws {
    self.client = try HTTP2Session(role: .client, configuration: client)
    self.server = try HTTP2Session(role: .server, configuration: server)
  }

  /// Moves bytes both ways until neither side has anything to send.
  func pump() throws {
    for _ in 0..<100 {
      let toServer = try client.outbound()
      clientEvents += client.takeEvents()
      if !toServer.isEmpty { serverEvents += try server.receive(toServer) }
      let toClient = try server.outbound()
      serverEvents += server.takeEvents()
      if !toClient.isEmpty { clientEvents += try client.receive(toClient) }
      if toServer.isEmpty && toClient.isEmpty { return }
    }
    Issue.record("pump did not settle")
  }

  func bodyBytes(_ events: [HTTP2Event], stream: Int32) -> [UInt8] {
    events.flatMap { e -> [UInt8] in
      if case .data(stream, let bytes) = e { return bytes }
      return []
    }
  }
}

let requestHeaders = [
  HTTP2Header(name: ":method", value: "POST"), HTTP2Header(name: ":scheme", value: "http"),
  HTTP2Header(name: ":path", value: "/quad.test.v1.Echo/Say"), HTTP2Header(name: ":authority", value: "localhost"),
  HTTP2Header(name: "content-type", value: "application/grpc"), HTTP2Header(name: "te", value: "trailers"),
]

@Suite("HTTP/2 session over nghttp2")
struct HTTP2SessionTests {
  @Test("Request headers, body, response headers, body and trailers cross in order")
  func exchange() throws {
    let pair = try Pair()
    let id = try pair.client.startRequest(headers: requestHeaders)
    try pair.client.send(streamID: id, bytes: [0, 0, 0, 0, 3, 1, 2, 3])
    try pair.client.finish(streamID: id)
    try pair.pump()
    #expect(pair.serverEvents.first == .headers(streamID: id, headers: requestHeaders, endStream: false))
    #expect(pair.bodyBytes(pair.serverEvents, stream: id) == [0, 0, 0, 0, 3, 1, 2, 3])
    #expect(pair.serverEvents.contains(.endStream(streamID: id)))

    try pair.server.startResponse(streamID: id, headers: [HTTP2Header(name: ":status", value: "200"), HTTP2Header(name: "content-type", value: "application/grpc")])
    try pair.server.send(streamID: id, bytes: [0, 0, 0, 0, 1, 9])
    try pair.server.finish(streamID: id, trailers: [HTTP2Header(name: "grpc-status", value: "0")])
    try pair.pump()
    let headerBlocks = pair.clientEvents.compactMap { e -> ([HTTP2Header], Bool)? in
      if case .headers(id, let h, let end) = e { return (h, end) }
      return nil
    }
    #expect(headerBlocks.count == 2)
    #expect(headerBlocks.first?.0.first == HTTP2Header(name: ":status", value: "200"))
    #expect(headerBlocks.last?.0 == [HTTP2Header(name: "grpc-status", value: "0")])
    #expect(headerBlocks.last?.1 == true)
    #expect(pair.bodyBytes(pair.clientEvents, stream: id) == [0, 0, 0, 0, 1, 9])
    #expect(pair.clientEvents.contains(.streamClosed(streamID: id, errorCode: 0)))
    #expect(pair.serverEvents.contains(.streamClosed(streamID: id, errorCode: 0)))
  }

  @Test("A Trailers-Only response is one HEADERS frame that ends the stream")
  func trailersOnly() throws {
    let pair = try Pair()
    let id = try pair.client.startRequest(headers: requestHeaders)
    try pair.client.finish(streamID: id)
    try pair.pump()
    try pair.server.respondHeadersOnly(streamID: id, headers: [
      HTTP2Header(name: ":status", value: "200"), HTTP2Header(name: "grpc-status", value: "12"),
    ])
    try pair.pump()
    #expect(pair.clientEvents.contains(.headers(streamID: id, headers: [
      HTTP2Header(name: ":status", value: "200"), HTTP2Header(name: "grpc-status", value: "12"),
    ], endStream: true)))
  }

  @Test("Many streams multiplex on one connection")
  func multiplex() throws {
    let pair = try Pair()
    var ids: [Int32] = []
    for i in 0..<50 {
      let id = try pair.client.startRequest(headers: requestHeaders)
      try pair.client.send(streamID: id, bytes: [UInt8(i)])
      try pair.client.finish(streamID: id)
      ids.append(id)
    }
    try pair.pump()
    for (i, id) in ids.enumerated() {
      #expect(pair.bodyBytes(pair.serverEvents, stream: id) == [UInt8(i)])
    }
    #expect(Set(ids).count == 50)
  }

  @Test("Flow control: unconsumed data stops the sender at the window; consuming resumes it")
  func flowControl() throws {
    var server = HTTP2Session.Configuration()
    server.initialWindowSize = 1_000
    let pair = try Pair(server: server)
    try pair.pump()  // the client learns the 1,000-byte window from the server's SETTINGS
    let id = try pair.client.startRequest(headers: requestHeaders)
    try pair.client.send(streamID: id, bytes: Array(repeating: 7, count: 5_000))
    try pair.client.finish(streamID: id)
    try pair.pump()
    #expect(pair.bodyBytes(pair.serverEvents, stream: id).count == 1_000)
    #expect(pair.client.pendingOutbound(streamID: id) == 4_000)
    try pair.server.consume(streamID: id, count: 1_000)
    try pair.pump()
    #expect(pair.bodyBytes(pair.serverEvents, stream: id).count == 2_000)
    for _ in 0..<3 {
      try pair.server.consume(streamID: id, count: 1_000)
      try pair.pump()
    }
    #expect(pair.bodyBytes(pair.serverEvents, stream: id).count == 5_000)
    #expect(pair.serverEvents.contains(.endStream(streamID: id)))
  }

  @Test("A stream the client resets reaches the server as RST_STREAM")
  func reset() throws {
    let pair = try Pair()
    let id = try pair.client.startRequest(headers: requestHeaders)
    try pair.pump()
    try pair.client.resetStream(streamID: id, errorCode: 8)
    try pair.pump()
    #expect(pair.serverEvents.contains(.reset(streamID: id, errorCode: 8)))
    #expect(pair.serverEvents.contains(.streamClosed(streamID: id, errorCode: 8)))
  }

  @Test("Graceful shutdown: the notice, then GOAWAY naming the last stream")
  func goAway() throws {
    let pair = try Pair()
    let id = try pair.client.startRequest(headers: requestHeaders)
    try pair.pump()
    try pair.server.shutdownNotice()
    try pair.pump()
    try pair.server.goAway()
    try pair.pump()
    #expect(pair.clientEvents.contains(.goAway(lastStreamID: id, errorCode: 0)))
  }

  @Test("A bad connection preface is a fatal error and a GOAWAY is queued", arguments: [
    Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8), [UInt8](repeating: 0xFF, count: 64),
  ])
  func badPreface(_ bytes: [UInt8]) throws {
    let server = try HTTP2Session(role: .server)
    #expect { _ = try server.receive(bytes) } throws: { error in
      guard let e = error as? HTTP2SessionError else { return false }
      return e.isFatal && e.description.contains("nghttp2_session_mem_recv failed")
    }
    let goAway = try server.outbound()
    #expect(goAway.count >= 9 && goAway.contains(0x07))  // a GOAWAY frame (type 7) follows SETTINGS
    #expect(!server.wantsRead)
  }

  @Test("Oversized header lists are refused by the stream, and the connection keeps serving")
  func oversizedHeaders() throws {
    var server = HTTP2Session.Configuration()
    server.maxHeaderListSize = 1_024
    let pair = try Pair(server: server)
    try pair.pump()  // exchange SETTINGS so the client knows the limit
    let big = requestHeaders + [HTTP2Header(name: "x-big", value: String(repeating: "a", count: 4_000))]
    let bad = try pair.client.startRequest(headers: big)
    try pair.client.finish(streamID: bad)
    try pair.pump()
    #expect(!pair.serverEvents.contains { if case .headers(bad, _, _) = $0 { return true } else { return false } })
    #expect(pair.clientEvents.contains(.reset(streamID: bad, errorCode: 2)))  // INTERNAL_ERROR
    let good = try pair.client.startRequest(headers: requestHeaders)
    try pair.client.finish(streamID: good)
    try pair.pump()
    #expect(pair.serverEvents.contains(.headers(streamID: good, headers: requestHeaders, endStream: false)))
    #expect(pair.serverEvents.contains(.endStream(streamID: good)))
  }
}

@Suite("HTTP/2 session: hostile input")
struct HTTP2HostileInputTests {
  /// splitmix64, so a failure replays.
  struct RNG: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
      state &+= 0x9E37_79B9_7F4A_7C15
      var z = state
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
  }

  @Test("3,000 random frame sequences after a valid preface: an error or events, never a crash")
  func randomFrames() throws {
    var rng = RNG(state: 42)
    let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + [0, 0, 0, 4, 0, 0, 0, 0, 0]  // empty SETTINGS
    var errors = 0
    var terminated = 0
    for _ in 0..<3_000 {
      let server = try HTTP2Session(role: .server)
      var bytes = preface
      for _ in 0..<Int.random(in: 1...6, using: &rng) {
        // A frame header with a plausible type and length, then random payload.
        let length = Int.random(in: 0...40, using: &rng)
        let type = UInt8.random(in: 0...10, using: &rng)
        let flags = UInt8.random(in: 0...255, using: &rng)
        let stream = UInt32.random(in: 0...7, using: &rng)
        bytes += [0, 0, UInt8(length), type, flags] + withUnsafeBytes(of: stream.bigEndian, Array.init)
        bytes += (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
      }
      do {
        _ = try server.receive(bytes)
      } catch {
        errors += 1
      }
      _ = try? server.outbound()
      if !server.wantsRead { terminated += 1 }  // nghttp2 sent GOAWAY for a connection error
    }
    #expect(errors + terminated > 100)
  }
}
