internal import ArgumentParser
internal import CampusContracts
internal import Foundation
internal import GRPCWire
internal import QuadProtobuf
internal import QuadRPC
internal import Synchronization

/// `quad demo HOST:PORT`: shows the platform doing its job against a running `quad serve`:
/// imports a generated roster, issues cards, simulates a day of card scans across campus at a
/// chosen rate, prints live occupancy from WatchOccupancy, and ends with the day's analytics.
struct DemoCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "demo",
    abstract: "Import a generated roster, simulate a day of scans, and watch occupancy live."
  )

  @Argument(help: "HOST:PORT of a quad serve running every context.") var address: String
  @Option(help: "Students in the generated roster.") var students = 200
  @Option(help: "Scans per second.") var rate = 50
  @Option(help: "How long the simulated day runs, in seconds (it is squeezed into this).") var duration = 30
  @Option(help: "Seed of the simulation (the same seed plays the same day).") var seed: UInt64 = 1
  @OptionGroup var connection: ConnectionOptions

  static let locations = ["library", "gym", "cafeteria", "lecture-hall-a", "lecture-hall-b", "lab-cs", "student-union", "dorm-north"]

  func validate() throws {
    guard (1...100_000).contains(students) else { throw ValidationError("--students must be 1 to 100000") }
    guard (1...10_000).contains(rate) else { throw ValidationError("--rate must be 1 to 10000 scans per second") }
    guard (1...86_400).contains(duration) else { throw ValidationError("--duration must be 1 to 86400 seconds") }
  }

  func run() async throws {
    let grpc = try connection.client(address)
    defer { Task { await grpc.close() } }
    let options = try connection.callOptions()
    let studentsClient = Campus_Students_V1_Students.Client(grpc)
    let scans = Campus_Scans_V1_Scans.Client(grpc)
    let analytics = Campus_Analytics_V1_Analytics.Client(grpc)
    var random = SplitMix(seed: seed)
    try await withRPCErrors {
      // 1. The roster, through ImportRoster (a second run finds it unchanged).
      let ids = (0..<students).map { String(format: "D%06d", $0) }
      let given = ["Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Dennis"]
      let family = ["Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton", "Ritchie"]
      let programs = ["CS-BSC", "MATH-BSC", "PHYS-MSC", "EE-BSC"]
      let summary = try await studentsClient.importRoster(options: options) { writer in
        for (i, id) in ids.enumerated() {
          var row = Campus_Students_V1_RosterRow()
          row.rowNumber = Int64(i + 2)
          row.registrarId = id
          row.givenName = given[i % given.count]
          row.familyName = family[(i / given.count) % family.count]
          row.email = id.lowercased() + "@demo.uni.example.edu"
          row.program = programs[i % programs.count]
          row.enrolledOn = "2026-09-01"
          try await writer.write(row)
        }
      }
      printLine("roster: \(students) students imported (created \(summary.created), updated \(summary.updated), unchanged \(summary.unchanged), rejected \(summary.rejected))")

      // 2. A card each (kept when the demo ran before).
      try await withThrowingTaskGroup(of: Void.self) { group in
        for (i, id) in ids.enumerated() {
          if i >= 16 { try await group.next() }
          group.addTask {
            var r = Campus_Students_V1_IssueCardRequest()
            r.studentId = id
            r.cardId = "DC-" + id
            do {
              _ = try await studentsClient.issueCard(r, options: options)
            } catch let e as RPCError where e.code == .failedPrecondition {
              // Already holds it.
            }
          }
        }
        try await group.waitForAll()
      }
      printLine("cards: every student holds a card")

      // 3. Live occupancy, printed once a second, while a day of scans plays.
      let occupancy = Mutex<[String: Int64]>([:])
      let watcher = Task {
        try await analytics.watchOccupancy(Campus_Analytics_V1_WatchOccupancyRequest(), options: CallOptions(metadata: options.metadata)) { stream in
          for try await u in stream { occupancy.withLock { $0[u.occupancy.location] = u.occupancy.occupancy } }
        }
      }
      defer { watcher.cancel() }
      let run = String(UInt32.random(in: 0...UInt32.max), radix: 36)
      let total = rate * duration
      // The simulated day: yesterday from 07:00 to 22:00 (UTC), squeezed into --duration.
      let dayStart = (Int64(Date().timeIntervalSince1970) / 86_400 - 1) * 86_400 + 7 * 3600
      var inside: [Int: String] = [:]
      var recorded = 0, sent = 0
      let started = ContinuousClock.now
      var nextPrint = started + .seconds(1)
      while sent < total {
        // One tenth of a second's scans at a time, sent concurrently.
        let batch = min(max(1, rate / 10), total - sent)
        var requests: [Campus_Scans_V1_RecordScanRequest] = []
        for _ in 0..<batch {
          let s = Int(random.next() % UInt64(students))
          var r = Campus_Scans_V1_RecordScanRequest()
          r.scanId = "demo-\(run)-\(sent)"
          r.cardId = "DC-" + ids[s]
          if let here = inside[s] {
            r.location = here
            r.direction = .out
            inside[s] = nil
          } else {
            r.location = Self.locations[Int(random.next() % UInt64(Self.locations.count))]
            r.direction = .in
            inside[s] = r.location
          }
          r.deviceId = "door-" + r.location
          r.scannedAt = Google_Protobuf_Timestamp(microseconds: (dayStart + Int64(sent) * 15 * 3600 / Int64(total)) * 1_000_000)
          requests.append(r)
          sent += 1
        }
        recorded += try await withThrowingTaskGroup(of: Int.self) { group in
          for r in requests { group.addTask { _ = try await scans.recordScan(r, options: options); return 1 } }
          return try await group.reduce(0, +)
        }
        let due = started + .milliseconds(Int64(sent) * 1000 / Int64(rate))
        if ContinuousClock.now < due { try await Task.sleep(until: due) }
        if ContinuousClock.now >= nextPrint {
          nextPrint = nextPrint + .seconds(1)
          printLine(Self.line(occupancy.withLock { $0 }, recorded: recorded))
        }
      }
      // Let the watch catch up with the last scans, then the day's analytics.
      try await Task.sleep(for: .seconds(1))
      printLine(Self.line(occupancy.withLock { $0 }, recorded: recorded))
      var top = Campus_Analytics_V1_GetTopLocationsRequest()
      top.from = Google_Protobuf_Timestamp(microseconds: (dayStart - 7 * 3600) * 1_000_000)
      top.to = Google_Protobuf_Timestamp(microseconds: (dayStart + 17 * 3600) * 1_000_000)
      top.limit = 5
      let busiest = try await analytics.getTopLocations(top, options: options)
      printLine("busiest locations that day (projection at log position \(busiest.logPosition)):")
      for l in busiest.locations { printLine("  \(l.location): \(l.scans) scans, \(l.uniqueVisitors) visitors") }
      printLine("demo: \(recorded) scans recorded in \(duration) s")
    }
  }

  static func line(_ occupancy: [String: Int64], recorded: Int) -> String {
    let parts = occupancy.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(8).map { "\($0.key) \($0.value)" }
    return "occupancy after \(recorded) scans: " + (parts.isEmpty ? "(nobody yet)" : parts.joined(separator: " | "))
  }
}

/// A small, seeded random number generator (SplitMix64), so a seed replays the same day.
struct SplitMix {
  var state: UInt64

  init(seed: UInt64) { state = seed }

  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
