internal import ArgumentParser
internal import BenchService
internal import EventStore
internal import EventsService
internal import Foundation
internal import HealthService
internal import Logging
internal import NIOCore
internal import Postgres
internal import QuadProtobuf
internal import QuadRPC
internal import Synchronization

/// `quad bench-outbox-server --port N --database-url URL`: the event log plus
/// `quad.bench.v1.OutboxBench` (a scan row and its event per call), for the outbox benchmark.
struct BenchOutboxServer: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bench-outbox-server",
    abstract: "Serve quad.events.v1.Events and quad.bench.v1.OutboxBench on PostgreSQL (for Benchmarks/Outbox)."
  )

  @Option(help: "The TCP port to listen on (0 picks a free one).")
  var port: Int

  @Option(name: .customLong("database-url"), help: "PostgreSQL to use (libpq URL or key=value string).")
  var databaseURL: String

  @Option(name: .customLong("pool-size"), help: "PostgreSQL connections at most.")
  var poolSize = 64

  @Option(name: .customLong("write-concurrency"), help: "Groups of writes in flight at once, each one transaction (default: 4, at most three quarters of the pool).")
  var writeConcurrency: Int?

  @Option(help: "Event-loop threads serving gRPC (default: one per core, as quad serve).")
  var threads = System.coreCount

  @Option(name: .customLong("log-level"), help: "The least severe level logged (JSON lines on standard error, as quad serve): info logs a line per event.")
  var logLevel = "info"

  func validate() throws {
    guard (0...65_535).contains(port) else { throw ValidationError("--port must be 0 to 65535") }
    guard (1...256).contains(threads) else { throw ValidationError("--threads must be 1 to 256") }
    guard poolSize >= 2 else { throw ValidationError("--pool-size must be at least 2") }
    try LogSetup.validate(level: logLevel)
  }

  func run() async throws {
    LogSetup.bootstrap(level: logLevel)
    let platform = try await EventPlatform.start(conninfo: databaseURL, poolSize: poolSize, writeConcurrency: writeConcurrency)
    let bench = OutboxBenchService(store: platform.store)
    try await bench.prepare()
    var router = Router()
    platform.events.register(in: &router)
    bench.register(in: &router)
    let health = HealthService()
    let server = try await GRPCServer.start(
      router: withStandardServices(router, files: EventsService.protoFiles + [QuadFile_quad_bench_v1_outbox_proto.serializedDescriptor], health: health),
      host: "0.0.0.0", port: port, threads: threads)
    FileHandle.standardOutput.write(Data("quad bench-outbox-server: serving on 0.0.0.0:\(server.port)\n".utf8))
    try await runUntilSignalled(server, relay: platform.relay, health: health, logger: Logger(label: "quad.bench"))
    platform.store.pool.shutdown()
  }
}

/// `quad bench-events HOST:PORT --mode latency|catchup`: the subscriber side of the outbox
/// benchmark. `latency`: N subscribers follow the log live while one writer calls RecordScan at
/// a fixed rate; prints commit-to-subscriber p50/p99/p99.9. `catchup`: N subscribers read the
/// log from the start, concurrently, until each has `--expect` events; prints events/s in total.
struct BenchEvents: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bench-events",
    abstract: "Measure commit-to-subscriber latency or catch-up throughput of quad.events.v1.Events."
  )

  enum Mode: String, ExpressibleByArgument { case latency, catchup, store }

  @Argument(help: "The server (host:port).")
  var target: String

  @Option(help: "latency or catchup.")
  var mode: Mode

  @Option(help: "Concurrent subscribers.")
  var subscribers = 1

  @Option(help: "latency: RecordScan calls per second.")
  var rate = 1000

  @Option(help: "latency: seconds of writing.")
  var duration = 10

  @Option(help: "catchup: events each subscriber reads.")
  var expect = 1_000_000

  @Option(help: "store: concurrent writers calling EventStore.write in this process (no gRPC).")
  var writers = 32

  @Option(name: .customLong("database-url"), help: "store: the PostgreSQL the server uses.")
  var databaseURL: String?

  @Option(name: .customLong("write-concurrency"), help: "store: groups of writes in flight at once, each one transaction.")
  var writeConcurrency: Int?

  func validate() throws {
    guard subscribers >= 1, rate >= 1, duration >= 1, expect >= 1 else { throw ValidationError("counts must be positive") }
  }

  func run() async throws {
    switch mode {
    case .latency: try await latency()
    case .catchup: try await catchUp()
    case .store: try await storeWrites()
    }
  }

  /// The same writes as RecordScan, straight through EventStore (the database layer's share).
  func storeWrites() async throws {
    guard let databaseURL else { throw ValidationError("--mode store needs --database-url") }
    let platform = try await EventPlatform.start(conninfo: databaseURL, poolSize: writers + 8, writeConcurrency: writeConcurrency)
    let bench = OutboxBenchService(store: platform.store)
    try await bench.prepare()
    let stop = ContinuousClock.now + .seconds(duration)
    let start = ContinuousClock.now
    let count = try await withThrowingTaskGroup(of: Int.self) { group in
      for _ in 0..<writers {
        group.addTask {
          var n = 0
          var r = Quad_Bench_V1_RecordScanRequest()
          r.studentId = "S42"
          r.location = "gate-3"
          r.payload = [UInt8](repeating: 0xA5, count: 200)
          while ContinuousClock.now < stop {
            _ = try await bench.recordScan(r, context: ServerContext(path: "/bench"))
            n += 1
          }
          return n
        }
      }
      var sum = 0
      for try await n in group { sum += n }
      return sum
    }
    let seconds = Self.seconds(ContinuousClock.now - start)
    print(String(format: "store\twriters=%d\twrites=%d\tseconds=%.2f\twrites_per_s=%.0f", writers, count, seconds, Double(count) / seconds))
    platform.store.pool.shutdown()
  }

  /// A connection per 10 subscribers, as separate client processes would spread them.
  func clients(_ n: Int) throws -> [GRPCClient] {
    try (0..<max(1, (n + 9) / 10)).map { _ in try GRPCClient(target: target) }
  }

  func catchUp() async throws {
    let clients = try clients(subscribers)
    let start = ContinuousClock.now
    let total = try await withThrowingTaskGroup(of: Int.self) { group in
      for i in 0..<subscribers {
        let events = Quad_Events_V1_Events.Client(clients[i % clients.count])
        group.addTask {
          var request = Quad_Events_V1_SubscribeRequest()
          request.start = .first
          return try await events.subscribe(request, options: CallOptions(timeout: .seconds(600))) { stream in
            var n = 0
            var last: Int64 = 0
            for try await e in stream {
              precondition(e.cursor.position > last, "out of order")
              last = e.cursor.position
              n += 1
              if n == expect { break }
            }
            return n
          }
        }
      }
      var sum = 0
      for try await n in group { sum += n }
      return sum
    }
    let seconds = Self.seconds(ContinuousClock.now - start)
    print(String(format: "catchup\tsubscribers=%d\tevents=%d\tseconds=%.2f\tevents_per_s=%.0f", subscribers, total, seconds, Double(total) / seconds))
    for c in clients { await c.close() }
  }

  func latency() async throws {
    let clients = try clients(subscribers)
    let writer = try GRPCClient(target: target)
    let samples = Samples()
    let total = rate * duration
    try await withThrowingTaskGroup(of: Void.self) { group in
      for i in 0..<subscribers {
        let events = Quad_Events_V1_Events.Client(clients[i % clients.count])
        group.addTask {
          var request = Quad_Events_V1_SubscribeRequest()
          request.start = .end
          var n = 0
          var last: Int64 = 0
          do {
            try await events.subscribe(request, options: CallOptions(timeout: .seconds(Int64(duration) + 120))) { stream in
              for try await e in stream {
                let recorded = Double(e.recordedAt.seconds) + Double(e.recordedAt.nanos) / 1e9
                samples.add((Date().timeIntervalSince1970 - recorded) * 1000)
                n += 1
                last = e.cursor.position
                if n == total { break }
              }
            }
          } catch {
            Self.report("subscriber \(i) of \(subscribers) failed after \(n) of \(total) events (last position \(last)): \(error)")
            throw error
          }
        }
      }
      try await Task.sleep(for: .seconds(1))
      // The writer: `rate` calls a second, paced, from 16 tasks so a slow commit does not stall the pace.
      let bench = Quad_Bench_V1_OutboxBench.Client(writer)
      let payload = [UInt8](repeating: 0xA5, count: 200)
      let start = ContinuousClock.now
      let interval = Duration.seconds(1) / rate
      try await withThrowingTaskGroup(of: Void.self) { writers in
        let lanes = 16
        for lane in 0..<lanes {
          writers.addTask {
            var k = lane
            while k < total {
              try await Task.sleep(until: start + interval * k, clock: .continuous)
              var r = Quad_Bench_V1_RecordScanRequest()
              r.studentId = "S\(k % 100_000)"
              r.location = "gate-\(k % 16)"
              r.payload = payload
              let sent = ContinuousClock.now
              do {
                _ = try await bench.recordScan(r, options: CallOptions(timeout: .seconds(30)))
              } catch {
                Self.report("write \(k) of \(total) failed after \(ContinuousClock.now - sent): \(error)")
                throw error
              }
              k += lanes
            }
          }
        }
        try await writers.waitForAll()
      }
      try await group.waitForAll()
    }
    let sorted = samples.all.sorted()
    func q(_ p: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
    print(String(format: "latency\tsubscribers=%d\trate=%d\tevents=%d\tp50_ms=%.2f\tp99_ms=%.2f\tp999_ms=%.2f\tmax_ms=%.2f",
                 subscribers, rate, sorted.count, q(0.5), q(0.99), q(0.999), sorted.last ?? 0))
    for c in clients { await c.close() }
    await writer.close()
  }

  /// A line on standard error: which call of the benchmark failed, and how far it got.
  static func report(_ line: String) {
    FileHandle.standardError.write(Data(("bench-events: " + line + "\n").utf8))
  }

  static func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
  }
}

/// Latency samples from many subscriber tasks.
final class Samples: Sendable {
  private let values = Mutex<[Double]>([])
  func add(_ v: Double) { values.withLock { $0.append(v) } }
  var all: [Double] { values.withLock { $0 } }
}
