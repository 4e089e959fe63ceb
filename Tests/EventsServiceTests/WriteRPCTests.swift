internal import BenchService
internal import EventStore
internal import EventsService
internal import GRPCWire
internal import QuadProtobuf
internal import QuadRPC
internal import Testing
internal import TestSupport

/// Write RPCs through `WriteRPC` (here `quad.bench.v1.OutboxBench/RecordScan`): idempotency keys
/// and the metadata events carry.
@Suite("Write RPCs", .serialized)
struct WriteRPCTests {
  static func call(_ client: GRPCClient, _ request: Quad_Bench_V1_RecordScanRequest, _ metadata: Metadata) async throws -> Quad_Bench_V1_RecordScanResponse {
    try await Quad_Bench_V1_OutboxBench.Client(client).recordScan(request, options: CallOptions(timeout: .seconds(30), metadata: metadata))
  }

  @Test("A retried write with its idempotency-key answers the same and writes once; the key with another request is FAILED_PRECONDITION; events carry correlation, trace and identity")
  func idempotentWrites() async throws {
    try await EventsServiceTests.withService { h in
      let bench = OutboxBenchService(store: h.store)
      try await bench.prepare()
      var router = Router()
      bench.register(in: &router)
      let server = try await GRPCServer.start(router: router, host: "127.0.0.1", port: 0)
      let client = try GRPCClient(target: "127.0.0.1:\(server.port)")
      var request = Quad_Bench_V1_RecordScanRequest()
      request.studentId = "S-1042'; DROP TABLE bench_scans; --"
      request.location = "library-north"
      request.payload = [1, 2, 3]
      let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
      let metadata: Metadata = [
        ("idempotency-key", .text("door-7/scan-991")), ("x-correlation-id", .text("corr-1")), ("traceparent", .text(traceparent)),
      ]
      let first = try await Self.call(client, request, metadata)
      let retry = try await Self.call(client, request, metadata)
      #expect(first.scanId == retry.scanId && !first.scanId.isEmpty)
      let events = try await h.store.readCommitted(after: 0).events
      #expect(events.count == 1)
      let m = try Quad_Events_V1_EventMetadata(serializedBytes: events[0].metadata)
      #expect(m.correlationId == "corr-1" && m.traceparent == traceparent && m.identity == "anonymous" && m.idempotencyKey == "door-7/scan-991")
      // The same key with another request.
      var other = request
      other.location = "gym"
      await #expect {
        _ = try await Self.call(client, other, metadata)
      } throws: { ($0 as? RPCError)?.code == .failedPrecondition }
      // No key: every call writes.
      _ = try await Self.call(client, request, [])
      _ = try await Self.call(client, request, [])
      #expect(try await h.store.readCommitted(after: 0).events.count == 3)
      // A key that is not a key.
      await #expect {
        _ = try await Self.call(client, request, [("idempotency-key", .text(String(repeating: "k", count: 300)))])
      } throws: { ($0 as? RPCError)?.code == .invalidArgument }
      await client.close()
      try await server.stop()
    }
  }
}
