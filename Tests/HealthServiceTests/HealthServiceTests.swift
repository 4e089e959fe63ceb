internal import Foundation
internal import HealthService
internal import QuadRPC
internal import Testing
internal import TestSupport

/// `grpc.health.v1.Health` on a Quad server, called with `grpcio-health-checking`'s stubs.
@Suite("Health service with grpcio-health-checking")
struct HealthServiceTests {
  @Test("Check on served, unknown and not-serving services; List; Watch sees a change made while it is open")
  func grpcioHealthChecking() async throws {
    let health = HealthService()
    health.setStatus(.serving, for: "campus.students.v1.Students")
    health.setStatus(.notServing, for: "campus.scans.v1.Scans")
    var router = Router()
    health.register(in: &router)
    // The Python client asks for the change once its Watch has seen the first status.
    router.registerUnary("/test.Health/Flip") { _, _ in
      health.setStatus(.notServing, for: "campus.students.v1.Students")
      health.setStatus(.serving, for: "campus.later.v1.Later")
      return []
    }
    let server = try await GRPCServer.start(router: router, host: "127.0.0.1", port: 0)
    let (status, output) = try await runProcess(["python3", "-c", """
      import sys, grpc
      from grpc_health.v1 import health_pb2 as pb, health_pb2_grpc as stubs
      ch = grpc.insecure_channel("127.0.0.1:" + sys.argv[1])
      h = stubs.HealthStub(ch)
      name = lambda s: pb.HealthCheckResponse.ServingStatus.Name(s)
      def check(service):
          try:
              return name(h.Check(pb.HealthCheckRequest(service=service), timeout=5).status)
          except grpc.RpcError as e:
              return e.code().name
      for s in ["", "campus.students.v1.Students", "campus.scans.v1.Scans", "nope"]:
          print("check", s or "(server)", check(s))
      print("list", sorted((k, name(v.status)) for k, v in h.List(pb.HealthListRequest(), timeout=5).statuses.items()))
      watch = h.Watch(pb.HealthCheckRequest(service="campus.students.v1.Students"), timeout=10)
      print("watch", name(next(watch).status))
      unknown = h.Watch(pb.HealthCheckRequest(service="campus.later.v1.Later"), timeout=10)
      print("watch-unknown", name(next(unknown).status))
      ch.unary_unary("/test.Health/Flip")(b"", timeout=5)
      print("watch", name(next(watch).status))
      print("watch-unknown", name(next(unknown).status))
      watch.cancel(); unknown.cancel()
      """, String(server.port)])
    try await server.stop()
    #expect(status == 0, "\(output)")
    let lines = output.split(separator: "\n").map(String.init)
    #expect(lines.contains("check (server) SERVING"), "\(lines)")
    #expect(lines.contains("check campus.students.v1.Students SERVING"))
    #expect(lines.contains("check campus.scans.v1.Scans NOT_SERVING"))
    #expect(lines.contains("check nope NOT_FOUND"))
    #expect(lines.contains("list [('', 'SERVING'), ('campus.scans.v1.Scans', 'NOT_SERVING'), ('campus.students.v1.Students', 'SERVING')]"), "\(lines)")
    #expect(lines.filter { $0.hasPrefix("watch ") } == ["watch SERVING", "watch NOT_SERVING"], "\(lines)")
    #expect(lines.filter { $0.hasPrefix("watch-unknown") } == ["watch-unknown SERVICE_UNKNOWN", "watch-unknown SERVING"], "\(lines)")
  }
}
