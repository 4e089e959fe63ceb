internal import BenchService
internal import Foundation
internal import GRPCWire
internal import QuadProtobuf
internal import QuadRPC
internal import Synchronization
internal import Testing
internal import TestSupport

/// Client keepalive: PINGs after silence, a dead peer detected by the PING timeout.
@Suite("Client keepalive")
struct ClientKeepaliveTests {
  @Test("A silent server: the client PINGs, gives up after the timeout, and the call fails UNAVAILABLE long before its deadline")
  func silentServer() async throws {
    let listener = try RawListener()
    // The listener's thread starts here, not from a child task the loaded pool may start late.
    let box = SeenBox()
    Thread.detachNewThread { box.set(listener.acceptAndRead(seconds: 20)) }
    var settings = ClientSettings()
    settings.keepaliveInterval = .milliseconds(200)
    settings.keepaliveTimeout = .milliseconds(300)
    let client = try GRPCClient(target: "127.0.0.1:\(listener.port)", settings: settings)
    let start = ContinuousClock.now
    await #expect {
      _ = try await client.unary("/bench.v1.Bench/Unary", request: Bench_V1_Req(), responseType: Bench_V1_Resp.self,
        options: CallOptions(timeout: .seconds(30)))
    } throws: {
      let e = $0 as? RPCError
      return e?.code == .unavailable && e?.message.contains("keepalive") == true
    }
    // Keepalive (0.2 s + 0.3 s), not the 30 s deadline, ended it: the error says so. (No bound
    // on the time: a loaded CI machine runs this anywhere between 0.5 s and many seconds.)
    print("client keepalive: a silent server detected after \(ContinuousClock.now - start)")
    while box.value == nil { try await Task.sleep(for: .milliseconds(50)) }
    let (bytes, closed) = box.value!
    #expect(closed, "the client closed the connection")
    #expect(RawFrames.parse(Array(bytes.dropFirst(RawFrames.preface.count))).contains { $0.type == 6 && $0.flags & 1 == 0 }, "a PING was sent")
    await client.close()
  }

  @Test("A live server answers the PINGs: a call longer than many intervals succeeds on one connection")
  func liveServer() async throws {
    var router = Router()
    router.registerUnary("/test.Keepalive/Slow") { bytes, _ in
      try await Task.sleep(for: .milliseconds(1500))
      return bytes
    }
    let server = try await GRPCServer.start(router: router, host: "127.0.0.1", port: 0)
    var settings = ClientSettings()
    settings.keepaliveInterval = .milliseconds(100)
    settings.keepaliveTimeout = .seconds(2)
    let client = try GRPCClient(target: "127.0.0.1:\(server.port)", settings: settings)
    var r = Bench_V1_Req()
    r.id = 9
    let answer = try await client.unary("/test.Keepalive/Slow", request: r, responseType: Bench_V1_Req.self)
    #expect(answer.message.id == 9)
    #expect(server.stats.connectionsAccepted.load(ordering: .relaxed) == 1)
    await client.close()
    try await server.stop()
  }
}

/// What the silent listener saw, set from its thread.
final class SeenBox: Sendable {
  private let seen = Mutex<(bytes: [UInt8], closed: Bool)?>(nil)
  func set(_ value: (bytes: [UInt8], closed: Bool)) { seen.withLock { $0 = value } }
  var value: (bytes: [UInt8], closed: Bool)? { seen.withLock { $0 } }
}
