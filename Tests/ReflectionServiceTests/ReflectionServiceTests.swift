internal import BenchService
internal import Foundation
internal import HealthService
internal import InteropService
internal import ProtoDescriptors
internal import QuadProtobuf
internal import QuadRPC
internal import ReflectionService
internal import Testing
internal import TestSupport

/// Server reflection, v1 and v1alpha, as grpcio-reflection and stubs generated from
/// `grpc/reflection/v1/reflection.proto` see it.
@Suite("Server reflection")
struct ReflectionServiceTests {
  static let files = InteropTestService.protoFiles + BenchService.protoFiles + TestFiles.all

  static func router() throws -> Router {
    var router = InteropTestService.router()
    BenchService().register(in: &router)
    HealthService().register(in: &router)
    try ReflectionService.register(in: &router, files: files)
    return router
  }

  static func service() throws -> ReflectionService {
    let pool = try DescriptorPool(files: files + ReflectionService.ownFiles)
    return ReflectionService(pool: pool, services: pool.serviceNames)
  }

  static func names(_ r: Grpc_Reflection_V1_ServerReflectionResponse) -> [String] {
    guard case .fileDescriptorResponse(let f)? = r.messageResponse else { return [] }
    return f.fileDescriptorProto.compactMap { try? Google_Protobuf_FileDescriptorProto(serializedBytes: $0).name }
  }

  @Test("grpcio-reflection (v1alpha) and v1 stubs list every service, resolve every symbol, and call from descriptors alone", arguments: ["v1alpha", "v1"])
  func grpcio(version: String) async throws {
    let router = try Self.router()
    let server = try await GRPCServer.start(router: router, host: "127.0.0.1", port: 0)
    let script = repositoryRoot.appendingPathComponent("Tests/ReflectionServiceTests/python/reflection_check.py").path
    let (status, output) = try await runProcess(["python3", script, String(server.port), version])
    try await server.stop()
    #expect(status == 0, "\(output)")
    let lines = output.split(separator: "\n").map(String.init)
    #expect(lines.contains("services " + router.serviceNames.joined(separator: " ")), "\(lines)")
    #expect(lines.contains("unknown symbol NOT_FOUND"), "\(lines)")
    #expect(lines.contains("unary 3"), "\(lines)")
    #expect(lines.contains("streaming [1, 2, 3]"), "\(lines)")
    #expect(lines.last == "OK", "\(lines)")
    if let symbols = lines.first(where: { $0.hasPrefix("symbols ") }) {
      print("reflection \(version): \(symbols)")
    }
    if version == "v1" {
      #expect(lines.contains("stream first ['src/proto/grpc/testing/test.proto', 'src/proto/grpc/testing/empty.proto', 'src/proto/grpc/testing/messages.proto']"), "\(lines)")
      #expect(lines.contains("stream again ['src/proto/grpc/testing/test.proto']"), "\(lines)")
      #expect(lines.contains("stream unknown 5"), "\(lines)")
      #expect(lines.contains("stream file ['src/proto/grpc/testing/messages.proto']"), "\(lines)")
      #expect(lines.contains("stream extension numbers quad.test.v1.Legacy [100]"), "\(lines)")
      #expect(lines.contains("stream extension numbers unknown 5"), "\(lines)")
      #expect(lines.contains("stream extension ['quad/test/v1/legacy.proto']"), "\(lines)")
      #expect(lines.contains("stream extension unknown 5"), "\(lines)")
    }
  }

  @Test("list_services names exactly the services registered")
  func listServices() throws {
    let router = try Self.router()
    var sent: Set<String> = []
    let pool = try DescriptorPool(files: Self.files + ReflectionService.ownFiles)
    var request = Grpc_Reflection_V1_ServerReflectionRequest()
    request.listServices = ""
    let expected = router.serviceNames
    let answer = ReflectionService(pool: pool, services: expected).answer(request, sent: &sent)
    guard case .listServicesResponse(let list)? = answer.messageResponse else {
      Issue.record("no list: \(answer)")
      return
    }
    #expect(list.service.map(\.name) == expected)
    #expect(expected.contains("grpc.reflection.v1.ServerReflection"))
    #expect(expected.contains("grpc.reflection.v1alpha.ServerReflection"))
    #expect(expected.contains("grpc.health.v1.Health"))
  }

  @Test("Each file once per stream; the file asked for always; every kind of symbol; host echoed")
  func filesOncePerStream() throws {
    let service = try Self.service()
    var sent: Set<String> = []
    func ask(_ symbol: String) -> Grpc_Reflection_V1_ServerReflectionResponse {
      var r = Grpc_Reflection_V1_ServerReflectionRequest()
      r.host = "campus"
      r.fileContainingSymbol = symbol
      return service.answer(r, sent: &sent)
    }
    let first = ask("grpc.testing.TestService.UnaryCall")
    #expect(first.validHost == "campus")
    #expect(first.originalRequest.fileContainingSymbol == "grpc.testing.TestService.UnaryCall")
    #expect(Self.names(first) == ["src/proto/grpc/testing/test.proto", "src/proto/grpc/testing/empty.proto", "src/proto/grpc/testing/messages.proto"])
    #expect(Self.names(ask("grpc.testing.SimpleRequest")) == ["src/proto/grpc/testing/messages.proto"])
    for symbol in [
      "grpc.testing.Payload", "grpc.testing.PayloadType", "grpc.testing.COMPRESSABLE", "grpc.testing.PayloadType.COMPRESSABLE",
      "grpc.testing.SimpleRequest.response_size", "grpc.testing.LoadBalancerStatsResponse.RpcsByPeer",
      "quad.test.v1.note", "bench.v1.Bench", "google.protobuf.Duration",
    ] {
      #expect(!Self.names(ask(symbol)).isEmpty, "\(symbol)")
    }
    let missing = ask("grpc.testing.Nope")
    guard case .errorResponse(let e)? = missing.messageResponse else {
      Issue.record("no error for an unknown symbol")
      return
    }
    #expect(e.errorCode == 5)
    #expect(e.errorMessage.contains("grpc.testing.Nope"))
    let empty = service.answer(Grpc_Reflection_V1_ServerReflectionRequest(), sent: &sent)
    guard case .errorResponse(let e2)? = empty.messageResponse else {
      Issue.record("no error for an empty request")
      return
    }
    #expect(e2.errorCode == 3)
  }

  @Test("A server whose services no descriptor declares refuses to start reflection")
  func undescribed() throws {
    var router = Router()
    router.registerUnary("/test.Undescribed/Call") { bytes, _ in bytes }
    #expect {
      try ReflectionService.register(in: &router, files: [])
    } throws: { "\($0)".contains("test.Undescribed") }
  }
}
