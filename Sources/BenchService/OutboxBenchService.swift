package import EventStore
internal import EventsService
internal import GRPCWire
internal import Postgres
package import QuadRPC

/// `quad.bench.v1.OutboxBench` for the outbox benchmark: each RecordScan inserts a scan row and
/// appends its event through ``WriteRPC`` (idempotency keys, event metadata, one round trip), as
/// every write RPC does.
package struct OutboxBenchService: Quad_Bench_V1_OutboxBench.ServiceProtocol {
  package let store: EventStore
  let writes: WriteRPC

  package init(store: EventStore) {
    self.store = store
    writes = WriteRPC(store: store)
  }

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
    try await writes.perform(request, context: context) {
      let id = String(UInt64.random(in: 0...UInt64.max), radix: 36)
      var write = EventWrite()
      write.statements = [(
        "INSERT INTO bench_scans (id, student_id, location, scanned_at) VALUES (\(id), \(request.studentId), \(request.location), now())",
        "bench.scan.insert")]
      write.events = [EventWrite.Append(
        NewEvent(type: "quad.bench.v1.ScanRecorded", payload: request.payload), to: StreamID(type: "scan", id: id), expectedVersion: 0)]
      var response = Quad_Bench_V1_RecordScanResponse()
      response.scanId = id
      return (write, response)
    }
  }
}
