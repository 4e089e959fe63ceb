internal import BenchService
internal import GRPCWire
internal import QuadProtobuf
internal import QuadRPC
internal import Synchronization
internal import Testing

/// Hedging (gRFC A6 `hedgingPolicy`) against a Quad server on real sockets: off unless the
/// service config names it, only for calls that may be repeated, the first answer wins and the
/// other copies are cancelled.
@Suite("gRPC client hedging")
struct HedgingTests {
  static let echo = "/bench.v1.Bench/Unary"

  /// A server whose first `stall` calls never answer (until cancelled), and the next ones fail
  /// with `failWith` `failFirst` times, then answer.
  static func server(_ probe: ServerProbe, stall: Int, failFirst: Int = 0, failWith: GRPCStatus.Code = .unavailable) async throws -> GRPCServer {
    var router = Router()
    router.registerUnary(echo) { bytes, _ in
      let n = probe.calls.withLock { c -> Int in
        c += 1
        return c
      }
      if n <= stall {
        do {
          try await Task.sleep(for: .seconds(60))
        } catch {
          probe.cancelled.withLock { $0 = true }
          throw error
        }
      }
      if n <= stall + failFirst { throw RPCError(code: failWith, message: "copy \(n) fails") }
      var response = Bench_V1_Resp()
      response.id = Int64(n)
      return response.serializedBytes()
    }
    return try await GRPCServer.start(router: router, host: "127.0.0.1", port: 0)
  }

  static let config = #"""
    {"methodConfig": [{"name": [{"service": "bench.v1.Bench"}],
      "hedgingPolicy": {"maxAttempts": 3, "hedgingDelay": "0.05s", "nonFatalStatusCodes": ["UNAVAILABLE"]}}]}
    """#

  static func call(_ client: GRPCClient, idempotent: Bool, timeout: Duration = .seconds(30)) async throws -> Int64 {
    try await client.unary(echo, request: Bench_V1_Req(), responseType: Bench_V1_Resp.self, options: CallOptions(timeout: timeout, idempotent: idempotent)).message.id
  }

  @Test("An idempotent call whose first copy stalls is answered by the second; the stalled copy is cancelled")
  func stalledCopy() async throws {
    let probe = ServerProbe()
    let server = try await Self.server(probe, stall: 1)
    let client = try GRPCClient(target: "127.0.0.1:\(server.port)", serviceConfig: ServiceConfig(json: Self.config))
    // The second copy answers, or (on a machine slow enough that it takes over 50 ms) the third.
    #expect(try await Self.call(client, idempotent: true) >= 2)
    var cancelled = false
    for _ in 0..<200 where !cancelled {
      cancelled = probe.cancelled.withLock { $0 }
      try await Task.sleep(for: .milliseconds(10))
    }
    #expect(cancelled, "the losing copy is cancelled on the server")
    #expect(probe.calls.withLock { $0 } <= 3, "maxAttempts copies at most")
    await client.close()
    try await server.stop()
  }

  @Test("A non-fatal status sends the next copy at once; a fatal one ends the call; with no copies left the last status is the answer")
  func statuses() async throws {
    let probe = ServerProbe()
    let server = try await Self.server(probe, stall: 0, failFirst: 2)
    let client = try GRPCClient(target: "127.0.0.1:\(server.port)", serviceConfig: ServiceConfig(json: Self.config))
    #expect(try await Self.call(client, idempotent: true) == 3, "two UNAVAILABLE copies, the third answers")
    await client.close()
    try await server.stop()

    let fatal = ServerProbe()
    let fatalServer = try await Self.server(fatal, stall: 0, failFirst: 5, failWith: .invalidArgument)
    let fatalClient = try GRPCClient(target: "127.0.0.1:\(fatalServer.port)", serviceConfig: ServiceConfig(json: Self.config))
    await #expect(throws: RPCError(code: .invalidArgument, message: "copy 1 fails")) { _ = try await Self.call(fatalClient, idempotent: true) }
    await fatalClient.close()
    try await fatalServer.stop()

    let down = ServerProbe()
    let downServer = try await Self.server(down, stall: 0, failFirst: 5)
    let downClient = try GRPCClient(target: "127.0.0.1:\(downServer.port)", serviceConfig: ServiceConfig(json: Self.config))
    await #expect(throws: RPCError.self) { _ = try await Self.call(downClient, idempotent: true) }
    #expect(down.calls.withLock { $0 } == 3, "maxAttempts copies at most")
    await downClient.close()
    try await downServer.stop()
  }

  @Test("Off by default, and never for a call that may not be repeated: the stalled call runs into its deadline alone")
  func offUnlessIdempotentAndConfigured() async throws {
    for (config, idempotent) in [(nil, true), (Self.config, false)] as [(String?, Bool)] {
      let probe = ServerProbe()
      let server = try await Self.server(probe, stall: 1)
      let client = try GRPCClient(target: "127.0.0.1:\(server.port)", serviceConfig: try config.map { try ServiceConfig(json: $0) } ?? ServiceConfig())
      await #expect(throws: RPCError.self) { _ = try await Self.call(client, idempotent: idempotent, timeout: .seconds(2)) }
      #expect(probe.calls.withLock { $0 } <= 1, "one copy only")
      await client.close()
      try await server.stop()
    }
    #expect(throws: ServiceConfigError.self) {
      _ = try ServiceConfig(json: #"{"methodConfig": [{"name": [{}], "hedgingPolicy": {"maxAttempts": 1}}]}"#)
    }
  }
}
