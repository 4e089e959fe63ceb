package import EventStore
internal import GRPCWire
internal import Postgres
package import QuadRPC

/// `quad.bench.v1.OutboxBench` for the outbox benchmark: each RecordScan inserts a scan row and
/// appends its event through ``EventStore/write(_:idempotencyRetention:)``, one round trip.
package struct OutboxBenchService: Quad_Bench_V1_OutboxBench.ServiceProtocol {
  package let store: EventStore

  package init(store: EventStore) { self.store = store }

  /// The benchmark's state table (the shape of pgbench's `scans`).
  package func prepare() async throws {
    try await store.pool.withConnection { db in
      _ = try await db.query("""
        CREATE TABLE IF NOT EXISTS bench_scans (
          id text PRIMARY KEY, student_id text NOT NULL, location text NOT NULL, scanned_at timestamptz NOT NULL)
        """, named: "bench.schema")
    }
  }

  package func recordScan(_ request: Quad_Bench_V1_RecordScanRequest, context: ServerContext) async throws -> Quad_Bench_V1_RecordScanResponse {
    let id = String(UInt64.random(in: 0...UInt64.max), radix: 36)
    var write = EventWrite()
    write.statements = [(
      "INSERT INTO bench_scans (id, student_id, location, scanned_at) VALUES (\(id), \(request.studentId), \(request.location), now())",
      "bench.scan.insert")]
    write.events = [EventWrite.Append(
      NewEvent(type: "quad.bench.v1.ScanRecorded", payload: request.payload), to: StreamID(type: "scan", id: id), expectedVersion: 0)]
    guard case .committed(let positions) = try await store.write(write) else {
      throw RPCError(code: .internal, message: "no idempotency key was sent")
    }
    var response = Quad_Bench_V1_RecordScanResponse()
    response.position = positions[0]
    return response
  }
}
