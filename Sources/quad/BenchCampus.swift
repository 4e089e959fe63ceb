internal import ArgumentParser
internal import CampusContracts
internal import EventsService
internal import Foundation
internal import GRPCWire
internal import QuadProtobuf
internal import QuadRPC
internal import Synchronization

/// `quad bench-campus HOST:PORT`: the campus load benchmark's load generator (Benchmarks/Campus):
/// `--clients` concurrent callers over `--connections` HTTP/2 connections, each calling as fast
/// as it is answered, 80% queries and 20% writes (RecordScan and RegisterStudent), for
/// `--duration` seconds; then requests/s, p50/p99/p99.9 per RPC, errors by status, and how far
/// behind the analytics projection was when the load stopped and how long it took to catch up.
struct BenchCampus: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bench-campus",
    abstract: "Load a quad serve with the campus mix (80% queries, 20% writes) and report throughput and latency per RPC."
  )

  @Argument(help: "HOST:PORT of a quad serve running every context.") var address: String
  @Option(help: "Concurrent callers.") var clients = 500
  @Option(help: "HTTP/2 connections they share.") var connections = 50
  @Option(help: "Seconds of load.") var duration = 60
  @Option(help: "Students registered before the load (their cards too).") var students = 2000
  @Option(help: "Share of calls that are writes.") var writes = 0.2

  func validate() throws {
    guard clients >= 1, connections >= 1, connections <= clients else { throw ValidationError("need 1 ≤ --connections ≤ --clients") }
    guard duration >= 1, students >= 10, (0...1).contains(writes) else { throw ValidationError("bad --duration, --students or --writes") }
  }

  /// The calls of the mix, with their shares of the queries or of the writes.
  enum Call: String, CaseIterable {
    case recordScan = "RecordScan", registerStudent = "RegisterStudent"
    case getStudent = "GetStudent", listStudents = "ListStudents", listScans = "ListScans"
    case getOccupancy = "GetOccupancy", getHourlyCounts = "GetHourlyCounts", getTopLocations = "GetTopLocations"

    static let writeMix: [(Call, Double)] = [(.recordScan, 0.75), (.registerStudent, 0.25)]
    static let queryMix: [(Call, Double)] = [
      (.getStudent, 0.35), (.listScans, 0.2), (.getOccupancy, 0.2), (.listStudents, 0.1), (.getHourlyCounts, 0.1), (.getTopLocations, 0.05),
    ]
  }

  /// Latencies per call and errors per call and status, from every caller.
  final class Results: Sendable {
    struct State {
      var latencies: [Call: [Double]] = [:]
      var errors: [String: Int] = [:]
    }
    let state = Mutex(State())
    func add(_ call: Call, _ ms: Double) { state.withLock { $0.latencies[call, default: []].append(ms) } }
    func fail(_ call: Call, _ code: String) { state.withLock { $0.errors["\(call.rawValue) \(code)", default: 0] += 1 } }
  }

  /// Unique numbers for the scan and student ids callers make up.
  final class Sequence: Sendable {
    private let value = Atomic<Int>(0)
    func next() -> Int { value.add(1, ordering: .relaxed).newValue }
  }

  func run() async throws {
    let grpc = try (0..<connections).map { _ in try GRPCClient(target: address) }
    let options = CallOptions(timeout: .seconds(30))
    let locations = DemoCommand.locations
    let ids = (0..<students).map { String(format: "B%07d", $0) }
    let run = String(UInt32.random(in: 0...UInt32.max), radix: 36)
    // Set-up: a roster with cards, so scans resolve and queries find students.
    let studentsClient = Campus_Students_V1_Students.Client(grpc[0])
    _ = try await studentsClient.importRoster(options: CallOptions(timeout: .seconds(600))) { writer in
      for (i, id) in ids.enumerated() {
        var row = Campus_Students_V1_RosterRow()
        row.registrarId = id
        row.givenName = "Bench"
        row.familyName = "Student\(i)"
        row.email = id.lowercased() + "@bench.uni.example.edu"
        row.program = ["CS-BSC", "MATH-BSC", "EE-BSC"][i % 3]
        try await writer.write(row)
      }
    }
    try await withThrowingTaskGroup(of: Void.self) { group in
      for (i, id) in ids.enumerated() {
        if i >= 64 { try await group.next() }
        let client = Campus_Students_V1_Students.Client(grpc[i % grpc.count])
        group.addTask {
          var r = Campus_Students_V1_IssueCardRequest()
          r.studentId = id
          r.cardId = "BC-" + id
          do { _ = try await client.issueCard(r, options: options) } catch let e as RPCError where e.code == .failedPrecondition {}
        }
      }
      try await group.waitForAll()
    }
    FileHandle.standardError.write(Data("bench-campus: \(students) students with cards; \(clients) callers on \(connections) connections for \(duration) s\n".utf8))

    let results = Results()
    let counter = Sequence()
    let writeShare = writes
    let start = ContinuousClock.now
    let end = start + .seconds(duration)
    let hour: Int64 = 3_600_000_000
    let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
    try await withThrowingTaskGroup(of: Void.self) { group in
      for c in 0..<clients {
        let channel = grpc[c % grpc.count]
        let students = Campus_Students_V1_Students.Client(channel)
        let scans = Campus_Scans_V1_Scans.Client(channel)
        let analytics = Campus_Analytics_V1_Analytics.Client(channel)
        group.addTask {
          var random = SplitMix(seed: UInt64(c) &* 0x9E37_79B9 &+ 1)
          func pick(_ mix: [(Call, Double)]) -> Call {
            var x = Double(random.next() % 1_000_000) / 1_000_000
            for (call, share) in mix {
              if x < share { return call }
              x -= share
            }
            return mix[mix.count - 1].0
          }
          while ContinuousClock.now < end {
            let isWrite = Double(random.next() % 1_000_000) / 1_000_000 < writeShare
            let call = pick(isWrite ? Call.writeMix : Call.queryMix)
            let student = ids[Int(random.next() % UInt64(ids.count))]
            let location = locations[Int(random.next() % UInt64(locations.count))]
            let t0 = ContinuousClock.now
            do {
              switch call {
              case .recordScan:
                var r = Campus_Scans_V1_RecordScanRequest()
                r.scanId = "bench-\(run)-\(c)-\(counter.next())"
                r.cardId = "BC-" + student
                r.location = location
                r.direction = random.next() % 2 == 0 ? .in : .out
                r.scannedAt = Google_Protobuf_Timestamp(microseconds: now - Int64(random.next() % UInt64(2 * hour)))
                r.deviceId = "door-" + location
                _ = try await scans.recordScan(r, options: options)
              case .registerStudent:
                var r = Campus_Students_V1_RegisterStudentRequest()
                r.studentId = "N\(run)-\(c)-\(counter.next())"
                r.givenName = "New"
                r.familyName = "Student"
                r.email = "new-\(c)@bench.uni.example.edu"
                _ = try await students.registerStudent(r, options: options)
              case .getStudent:
                var r = Campus_Students_V1_GetStudentRequest()
                r.studentId = student
                _ = try await students.getStudent(r, options: options)
              case .listStudents:
                var r = Campus_Students_V1_ListStudentsRequest()
                r.pageSize = 20
                r.program = "CS-BSC"
                _ = try await students.listStudents(r, options: options)
              case .listScans:
                var r = Campus_Scans_V1_ListScansRequest()
                r.studentId = student
                r.pageSize = 20
                _ = try await scans.listScans(r, options: options)
              case .getOccupancy:
                _ = try await analytics.getOccupancy(Campus_Analytics_V1_GetOccupancyRequest(), options: options)
              case .getHourlyCounts:
                var r = Campus_Analytics_V1_GetHourlyCountsRequest()
                r.location = location
                r.from = Google_Protobuf_Timestamp(microseconds: now / hour * hour - 24 * hour)
                r.to = Google_Protobuf_Timestamp(microseconds: now / hour * hour + hour)
                _ = try await analytics.getHourlyCounts(r, options: options)
              case .getTopLocations:
                var r = Campus_Analytics_V1_GetTopLocationsRequest()
                r.from = Google_Protobuf_Timestamp(microseconds: now / hour * hour - 24 * hour)
                r.to = Google_Protobuf_Timestamp(microseconds: now / hour * hour + hour)
                _ = try await analytics.getTopLocations(r, options: options)
              }
              results.add(call, BenchEvents.seconds(ContinuousClock.now - t0) * 1000)
            } catch let e as RPCError {
              results.fail(call, "\(e.code)")
            }
          }
        }
      }
      try await group.waitForAll()
    }
    let elapsed = BenchEvents.seconds(ContinuousClock.now - start)

    // The projection when the load stopped, and how long it took to include everything.
    let events = Quad_Events_V1_Events.Client(grpc[0])
    let head = try await events.getHead(Quad_Events_V1_GetHeadRequest(), options: options).head.position
    let analytics = Campus_Analytics_V1_Analytics.Client(grpc[0])
    let stopped = ContinuousClock.now
    let behind = head - (try await analytics.getOccupancy(Campus_Analytics_V1_GetOccupancyRequest(), options: options).logPosition)
    var caughtUp = stopped
    while try await analytics.getOccupancy(Campus_Analytics_V1_GetOccupancyRequest(), options: options).logPosition < head {
      try await Task.sleep(for: .milliseconds(10))
      caughtUp = ContinuousClock.now
    }
    let state = results.state.withLock { $0 }
    var total = 0, writeCount = 0
    for call in Call.allCases {
      let sorted = (state.latencies[call] ?? []).sorted()
      guard !sorted.isEmpty else { continue }
      total += sorted.count
      if call == .recordScan || call == .registerStudent { writeCount += sorted.count }
      func q(_ p: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
      print(String(format: "rpc\t%@\tcalls=%d\tper_s=%.0f\tp50_ms=%.2f\tp99_ms=%.2f\tp999_ms=%.2f\tmax_ms=%.2f",
                   call.rawValue, sorted.count, Double(sorted.count) / elapsed, q(0.5), q(0.99), q(0.999), sorted.last ?? 0))
    }
    let errors = state.errors.values.reduce(0, +)
    print(String(format: "total\tclients=%d\tseconds=%.1f\trequests_per_s=%.0f\twrites_per_s=%.0f\terrors=%d\tprojection_behind_events=%d\tprojection_caught_up_s=%.3f",
                 clients, elapsed, Double(total) / elapsed, Double(writeCount) / elapsed, errors, behind, BenchEvents.seconds(caughtUp - stopped)))
    for (what, n) in state.errors.sorted(by: { $0.key < $1.key }) { print("error\t\(what)\t\(n)") }
    for c in grpc { await c.close() }
  }
}
