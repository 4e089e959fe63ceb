internal import Foundation
internal import InteropService
internal import Testing
internal import TestSupport

/// The interop cases through the `quad` executable itself, as other teams' scripts run it:
/// `quad interop-server --port N` against the grpcio client, and `quad interop-client` flags
/// (both `--flag value` and `--flag=value`) against the grpcio server.
@Suite("Interop through the quad command")
struct InteropCommandTests {
  /// The debug `quad` built beside the tests (`swift build --build-tests` builds it).
  static var quad: String? {
    let path = repositoryRoot.appendingPathComponent(".build/debug/quad").path
    return FileManager.default.isExecutableFile(atPath: path) ? path : nil
  }

  @Test("quad interop-server serves every case to the grpcio client")
  func server() async throws {
    let quad = try #require(Self.quad, "build the quad product first")
    let server = try await BackgroundProcess.start([quad, "interop-server", "--port", "0"])
    let port = try #require(server.firstLine.split(separator: ":").last.map(String.init), "server said \(server.firstLine)")
    let script = repositoryRoot.appendingPathComponent("Tests/InteropTests/python/interop_client.py").path
    let (status, output) = try await runProcess(["python3", script, "--server_host", "127.0.0.1", "--server_port", port, "--test_case", "all"])
    // Every quad server also answers grpc.health.v1.Health.
    let (_, health) = try await runProcess(["python3", "-c", """
      import sys, grpc
      from grpc_health.v1 import health_pb2 as pb, health_pb2_grpc as stubs
      h = stubs.HealthStub(grpc.insecure_channel("127.0.0.1:" + sys.argv[1]))
      print(pb.HealthCheckResponse.ServingStatus.Name(h.Check(pb.HealthCheckRequest(), timeout=5).status))
      """, port])
    await server.kill()
    #expect(health.hasPrefix("SERVING"), "\(health)")
    #expect(status == 0, "\(output)")
    #expect(output.split(separator: "\n").filter { $0.hasPrefix("PASS ") }.count == InteropClient.cases.count, "\(output)")
  }

  @Test("quad interop-client passes every case against the grpcio server")
  func client() async throws {
    let quad = try #require(Self.quad, "build the quad product first")
    let script = repositoryRoot.appendingPathComponent("Tests/InteropTests/python/interop_server.py").path
    let server = try await BackgroundProcess.start(["python3", script, "--port", "0"])
    let port = try #require(server.firstLine.split(separator: " ").last.map(String.init), "server said \(server.firstLine)")
    let (status, output) = try await runProcess([
      quad, "interop-client", "--server_host=127.0.0.1", "--server_port", port, "--test_case=all", "--use_tls=false",
    ])
    await server.stop()
    #expect(status == 0, "\(output)")
    #expect(output.split(separator: "\n").filter { $0.hasPrefix("PASS ") }.count == InteropClient.cases.count, "\(output)")
    let (badStatus, _) = try await runProcess([quad, "interop-client", "--server_port", port, "--test_case", "no_such_case"])
    #expect(badStatus != 0)
  }
}
