internal import Foundation
internal import GRPCWire
internal import HealthService
internal import InteropService
internal import QuadProtobuf
internal import QuadRPC
internal import ReflectionService
internal import Testing
internal import TestSupport

/// `quad list`, `describe`, `call` and `health` as scripts run them: the executable against
/// Quad servers and Python grpcio servers, plaintext and TLS.
@Suite("quad list / describe / call / health")
struct QuadCommandTests {
  /// The debug `quad` built beside the tests (`swift build --build-tests` builds it).
  static let quad = repositoryRoot.appendingPathComponent(".build/debug/quad").path

  /// Runs `quad ARGS` and returns its exit status and output (standard output and error).
  static func quad(_ arguments: [String]) async throws -> (status: Int32, output: String) {
    try await runProcess(["sh", "-c", #""$0" "$@" 2>&1"#, quad] + arguments)
  }

  /// Fails a call that carries `x-fail-with-details` with FAILED_PRECONDITION and a
  /// `google.rpc.Status` holding an ErrorInfo and a BadRequest.
  struct FailWithDetails: ServerInterceptor {
    func intercept<Response: Sendable>(_ context: ServerContext, next: (ServerContext) async throws -> Response) async throws -> Response {
      guard context.metadata.first("x-fail-with-details") != nil else { return try await next(context) }
      var info = Google_Rpc_ErrorInfo()
      info.reason = "CARD_BLOCKED"
      info.domain = "scans.campus"
      info.metadata = ["card": "7731"]
      var bad = Google_Rpc_BadRequest()
      var v = Google_Rpc_BadRequest.FieldViolation()
      v.field = "card_id"
      v.description_p = "blocked since Monday"
      bad.fieldViolations = [v]
      var status = Google_Rpc_Status()
      status.code = 9
      status.message = "card blocked"
      for (name, bytes) in [("google.rpc.ErrorInfo", info.serializedBytes()), ("google.rpc.BadRequest", bad.serializedBytes())] {
        var any = Google_Protobuf_Any()
        any.typeUrl = "type.googleapis.com/" + name
        any.value = bytes
        status.details.append(any)
      }
      throw RPCError(code: .failedPrecondition, message: "card blocked", details: status.serializedBytes())
    }
  }

  static func quadServer(tls: ServerTLS? = nil) async throws -> (GRPCServer, HealthService) {
    var router = InteropTestService.router()
    let health = HealthService()
    health.setStatus(.notServing, for: "campus.scans.v1.Scans")
    health.register(in: &router)
    try ReflectionService.register(in: &router, files: InteropTestService.protoFiles + HealthService.protoFiles)
    router.intercept(with: FailWithDetails())
    return (try await GRPCServer.start(router: router, host: "127.0.0.1", port: 0, tls: tls), health)
  }


  @Test("Against a Quad server: list, describe with comments, all four call kinds, metadata, errors, health")
  func quadServer() async throws {
    let (server, health) = try await Self.quadServer()
    let address = "127.0.0.1:\(server.port)"

    let (listStatus, list) = try await Self.quad(["list", address])
    #expect(listStatus == 0, "\(list)")
    #expect(list == """
      grpc.health.v1.Health
      grpc.reflection.v1.ServerReflection
      grpc.reflection.v1alpha.ServerReflection
      grpc.testing.TestService

      """, "\(list)")
    let (_, methods) = try await Self.quad(["list", address, "grpc.testing.TestService"])
    #expect(methods.contains("grpc.testing.TestService.FullDuplexCall\n"), "\(methods)")

    let (_, service) = try await Self.quad(["describe", address, "grpc.testing.TestService"])
    #expect(service.hasPrefix("grpc.testing.TestService is a service:\n"), "\(service)")
    #expect(service.contains("  // One empty request followed by one empty response.\n  rpc EmptyCall ( .grpc.testing.Empty ) returns ( .grpc.testing.Empty );"), "\(service)")
    #expect(service.contains("rpc FullDuplexCall ( stream .grpc.testing.StreamingOutputCallRequest ) returns ( stream .grpc.testing.StreamingOutputCallResponse );"), "\(service)")
    let (_, message) = try await Self.quad(["describe", address, "grpc.testing.SimpleRequest"])
    #expect(message.contains("message SimpleRequest {\n  // Desired payload type in the response from the server."), "\(message)")
    #expect(message.contains("  int32 response_size = 2;"), "\(message)")
    let (_, enumText) = try await Self.quad(["describe", address, "grpc.testing.PayloadType"])
    #expect(enumText.contains("enum PayloadType {"), "\(enumText)")
    #expect(enumText.contains("COMPRESSABLE = 0;"), "\(enumText)")
    let (_, method) = try await Self.quad(["describe", address, "grpc.testing.TestService/UnaryCall"])
    #expect(method.hasPrefix("grpc.testing.TestService.UnaryCall is a method:"), "\(method)")
    let (missingStatus, missing) = try await Self.quad(["describe", address, "grpc.testing.Nope"])
    #expect(missingStatus == 64 + 5, "\(missing)")

    // Unary.
    let (unaryStatus, unary) = try await Self.quad(["call", address, "grpc.testing.TestService/UnaryCall", #"{"responseSize": 3}"#])
    #expect(unaryStatus == 0, "\(unary)")
    #expect(unary == "{\n  \"payload\": {\n    \"body\": \"AAAA\"\n  }\n}\n", "\(unary)")
    // Server streaming: one JSON document per message.
    let (_, streamed) = try await Self.quad(["call", address, "grpc.testing.TestService.StreamingOutputCall",
      #"{"responseParameters": [{"size": 1}, {"size": 2}, {"size": 3}]}"#])
    #expect(streamed.components(separatedBy: "\"body\"").count == 4, "\(streamed)")
    // Client streaming from a file, bidirectional from standard input.
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("quad-call-\(UUID().uuidString).json")
    try Data(#"{"payload": {"body": "AAAA"}} {"payload": {"body": "AA=="}}"#.utf8).write(to: file)
    let (_, upload) = try await Self.quad(["call", address, "grpc.testing.TestService/StreamingInputCall", "-d", "@" + file.path])
    #expect(upload.contains(#""aggregatedPayloadSize": 4"#), "\(upload)")
    let (bidiStatus, bidi) = try await runProcess(["sh", "-c",
      #"printf '{"responseParameters":[{"size":2}]}\n{"responseParameters":[{"size":5}]}' | "$0" call -v "$1" grpc.testing.TestService/FullDuplexCall -d @ -H 'x-grpc-test-echo-initial: hello' -H 'x-grpc-test-echo-trailing-bin: AAEC' 2>&1"#,
      Self.quad, address])
    #expect(bidiStatus == 0, "\(bidi)")
    #expect(bidi.contains("\"body\": \"AAA=\""), "\(bidi)")
    #expect(bidi.contains("\"body\": \"AAAAAAA=\""), "\(bidi)")
    #expect(bidi.contains("x-grpc-test-echo-initial: hello"), "\(bidi)")
    #expect(bidi.contains("x-grpc-test-echo-trailing-bin: AAEC"), "\(bidi)")

    // Errors: the status code name and message, 64 + the code.
    let (errStatus, err) = try await Self.quad(["call", address, "grpc.testing.TestService/UnaryCall",
      #"{"responseStatus": {"code": 3, "message": "bad card ✓"}}"#])
    #expect(errStatus == 64 + 3, "\(err)")
    #expect(err.contains("Code: INVALID_ARGUMENT"), "\(err)")
    #expect(err.contains("Message: bad card ✓"), "\(err)")
    // Details decoded from grpc-status-details-bin.
    let (detailStatus, detail) = try await Self.quad(["call", address, "grpc.testing.TestService/EmptyCall", "-H", "x-fail-with-details: 1"])
    #expect(detailStatus == 64 + 9, "\(detail)")
    #expect(detail.contains(#"{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"CARD_BLOCKED","domain":"scans.campus","metadata":{"card":"7731"}}"#), "\(detail)")
    #expect(detail.contains(#""fieldViolations":[{"field":"card_id","description":"blocked since Monday"}]"#), "\(detail)")
    let (unimplementedStatus, _) = try await Self.quad(["call", address, "grpc.testing.TestService/UnimplementedCall"])
    #expect(unimplementedStatus == 64 + 12)
    // Deadline.
    let (deadlineStatus, deadline) = try await Self.quad(["call", address, "grpc.testing.TestService/FullDuplexCall", "--max-time", "0.3",
      "-d", #"{"responseParameters": [{"size": 1, "intervalUs": 2000000}]}"#])
    #expect(deadlineStatus == 64 + 4, "\(deadline)")

    // Usage errors: 2.
    for bad in [
      ["call", address, "grpc.testing.TestService/UnaryCall", #"{"nope": 1}"#],
      ["call", address, "grpc.testing.TestService/UnaryCall", "{not json"],
      ["call", address, "grpc.testing.TestService/NoSuchMethod", "{}"],
      ["call", address, "grpc.testing.TestService/UnaryCall", "{} {}"],
      ["call", address],
      ["call", address, "grpc.testing.TestService/UnaryCall", "-H", "no-colon"],
      ["list"],
    ] {
      let (status, output) = try await Self.quad(bad)
      #expect(status == 2, "\(bad): \(status) \(output)")
    }

    // Health.
    let (healthStatus, healthOut) = try await Self.quad(["health", address])
    #expect(healthStatus == 0 && healthOut == "SERVING\n", "\(healthOut)")
    let (downStatus, down) = try await Self.quad(["health", address, "campus.scans.v1.Scans"])
    #expect(downStatus == 1 && down == "NOT_SERVING\n", "\(down)")
    let (unknownStatus, _) = try await Self.quad(["health", address, "campus.nope.v1.Nope"])
    #expect(unknownStatus == 64 + 5)
    // --watch waits until SERVING.
    async let watched = Self.quad(["health", address, "campus.scans.v1.Scans", "--watch", "--max-time", "60"])
    // The change comes once the watch is registered (it then sees NOT_SERVING first, always).
    while health.watcherCount(for: "campus.scans.v1.Scans") == 0 { try await Task.sleep(for: .milliseconds(20)) }
    health.setStatus(.serving, for: "campus.scans.v1.Scans")
    let (watchStatus, watch) = try await watched
    #expect(watchStatus == 0, "\(watch)")
    #expect(watch == "NOT_SERVING\nSERVING\n", "\(watch)")
    try await server.stop()
  }

  @Test("Against Python grpcio: reflection v1alpha only (fallback from v1), and --proto when reflection is off")
  func grpcioServers() async throws {
    let script = repositoryRoot.appendingPathComponent("Tests/InteropTests/python/interop_server.py").path
    let reflecting = try await BackgroundProcess.start(["python3", script, "--port", "0", "--reflection", "true"])
    let port = try #require(reflecting.firstLine.split(separator: " ").last.map(String.init))
    let address = "127.0.0.1:\(port)"
    let (listStatus, list) = try await Self.quad(["list", address])
    #expect(listStatus == 0, "\(list)")
    #expect(list.contains("grpc.testing.TestService\n"), "\(list)")
    let (_, described) = try await Self.quad(["describe", address, "grpc.testing.StreamingOutputCallRequest"])
    #expect(described.contains("repeated .grpc.testing.ResponseParameters response_parameters = 2;"), "\(described)")
    let (unaryStatus, unary) = try await Self.quad(["call", address, "grpc.testing.TestService/UnaryCall", #"{"responseSize": 2}"#])
    #expect(unaryStatus == 0, "\(unary)")
    #expect(unary.contains("\"body\": \"AAA=\""), "\(unary)")
    let (_, streamed) = try await Self.quad(["call", address, "grpc.testing.TestService/StreamingOutputCall",
      #"{"responseParameters": [{"size": 1}, {"size": 1}]}"#])
    #expect(streamed.components(separatedBy: "\"body\"").count == 3, "\(streamed)")
    let (_, upload) = try await Self.quad(["call", address, "grpc.testing.TestService/StreamingInputCall",
      "-d", #"{"payload": {"body": "AAAA"}} {"payload": {"body": "AAAA"}}"#])
    #expect(upload.contains(#""aggregatedPayloadSize": 6"#), "\(upload)")
    let (bidiStatus, bidi) = try await Self.quad(["call", "-v", address, "grpc.testing.TestService/FullDuplexCall",
      "-H", "x-grpc-test-echo-initial: hi", "-H", "x-grpc-test-echo-trailing-bin: AAEC",
      "-d", #"{"responseParameters": [{"size": 1}]} {"responseParameters": [{"size": 2}]}"#])
    #expect(bidiStatus == 0, "\(bidi)")
    #expect(bidi.contains("\"body\": \"AA==\"") && bidi.contains("\"body\": \"AAA=\""), "\(bidi)")
    #expect(bidi.contains("x-grpc-test-echo-initial: hi") && bidi.contains("x-grpc-test-echo-trailing-bin: AAEC"), "\(bidi)")
    let (errStatus, err) = try await Self.quad(["call", address, "grpc.testing.TestService/UnaryCall",
      #"{"responseStatus": {"code": 7, "message": "no"}}"#])
    #expect(errStatus == 64 + 7, "\(err)")
    await reflecting.stop()

    let plain = try await BackgroundProcess.start(["python3", script, "--port", "0"])
    let plainPort = try #require(plain.firstLine.split(separator: " ").last.map(String.init))
    let plainAddress = "127.0.0.1:\(plainPort)"
    let (noReflection, said) = try await Self.quad(["call", plainAddress, "grpc.testing.TestService/EmptyCall"])
    #expect(noReflection == 64 + 12, "\(said)")
    let protos = repositoryRoot.appendingPathComponent("Protos/grpc-interop").path
    let (protoStatus, viaProto) = try await Self.quad(["call", plainAddress, "grpc.testing.TestService/UnaryCall", #"{"responseSize": 1}"#,
      "--proto", "src/proto/grpc/testing/test.proto", "-I", protos])
    #expect(protoStatus == 0, "\(viaProto)")
    #expect(viaProto.contains("\"body\": \"AA==\""), "\(viaProto)")
    let (_, listed) = try await Self.quad(["list", plainAddress, "--proto", "src/proto/grpc/testing/test.proto", "-I", protos])
    #expect(listed.contains("grpc.testing.TestService\n"), "\(listed)")
    let (badProto, _) = try await Self.quad(["call", plainAddress, "grpc.testing.TestService/UnaryCall", "--proto", "/nonexistent.proto"])
    #expect(badProto == 2)
    await plain.stop()
  }

  @Test("TLS and mutual TLS: --cacert, --cert/--key; a client without the CA is refused")
  func tls() async throws {
    let certs = try await TestCertificates.make()
    let (server, _) = try await Self.quadServer(tls: ServerTLS(
      certificateChainPath: certs.serverCertificate, privateKeyPath: certs.serverKey, clientCAPath: certs.caCertificate))
    let address = "localhost:\(server.port)"
    let (ok, out) = try await Self.quad(["call", address, "grpc.testing.TestService/UnaryCall", #"{"responseSize": 1}"#,
      "--cacert", certs.caCertificate, "--cert", certs.clientCertificate, "--key", certs.clientKey])
    #expect(ok == 0, "\(out)")
    let (listed, list) = try await Self.quad(["list", address, "--cacert", certs.caCertificate, "--cert", certs.clientCertificate, "--key", certs.clientKey])
    #expect(listed == 0 && list.contains("grpc.testing.TestService"), "\(list)")
    let (noClientCert, _) = try await Self.quad(["call", address, "grpc.testing.TestService/EmptyCall", "--cacert", certs.caCertificate])
    #expect(noClientCert == 64 + 14)
    let (wrongCA, _) = try await Self.quad(["call", address, "grpc.testing.TestService/EmptyCall", "--cacert", certs.strangerCA,
      "--cert", certs.clientCertificate, "--key", certs.clientKey])
    #expect(wrongCA == 64 + 14)
    let (plaintext, _) = try await Self.quad(["call", address, "grpc.testing.TestService/EmptyCall", "--max-time", "5"])
    #expect(plaintext != 0)
    try await server.stop()
  }

  @Test("quad interop-server: grpc.testing.XdsUpdateHealthService flips the overall health (quad call and grpcio)")
  func xdsUpdateHealth() async throws {
    let server = try await BackgroundProcess.start([Self.quad, "interop-server", "--port", "0"])
    let port = try #require(server.firstLine.split(separator: ":").last.map(String.init), "server said \(server.firstLine)")
    let address = "127.0.0.1:\(port)"
    let (listed, list) = try await Self.quad(["list", address])
    #expect(listed == 0 && list.contains("grpc.testing.XdsUpdateHealthService\n"), "\(list)")
    #expect(try await Self.quad(["health", address]) == (0, "SERVING\n"))
    let (flipped, _) = try await Self.quad(["call", address, "grpc.testing.XdsUpdateHealthService/SetNotServing"])
    #expect(flipped == 0)
    #expect(try await Self.quad(["health", address]) == (1, "NOT_SERVING\n"))
    // An independent peer flips it back.
    let (status, output) = try await runProcess(["python3", "-c", """
      import sys, grpc
      from grpc_health.v1 import health_pb2 as pb, health_pb2_grpc as stubs
      ch = grpc.insecure_channel("127.0.0.1:" + sys.argv[1])
      ch.unary_unary("/grpc.testing.XdsUpdateHealthService/SetServing")(b"", timeout=5)
      print(pb.HealthCheckResponse.ServingStatus.Name(stubs.HealthStub(ch).Check(pb.HealthCheckRequest(), timeout=5).status))
      """, port])
    #expect(status == 0 && output == "SERVING\n", "\(output)")
    await server.kill()
  }
}
