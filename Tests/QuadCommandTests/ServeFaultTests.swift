internal import EventStore
internal import EventsService
internal import Foundation
internal import Glibc
internal import Postgres
internal import QuadProtobuf
internal import QuadRPC
internal import Synchronization
internal import Testing
internal import TestSupport

/// `quad serve` under faults: the process is SIGKILLed and restarted, and PostgreSQL restarts
/// under it, while another instance writes and subscribers (one by cursor, one as a consumer
/// group) read. Every acknowledged write's event reaches both; the cursor subscriber sees each
/// exactly once and in order, the group at least once and in order after its checkpoints.
@Suite("quad serve under faults", .serialized)
struct ServeFaultTests {
  /// What the writers and subscribers have done so far.
  final class Record: Sendable {
    struct State {
      var acknowledged: Set<Int64> = []
      var cursorSeen: [Int64] = []
      var groupSessions: [[Int64]] = []
      var groupCheckpoint: Int64 = 0
      var violations: [String] = []
      var writeErrors = 0
      var subscribeErrors = 0
      var groupErrors: [String] = []
      /// Writers that have stopped (their last write answered).
      var writersStopped = 0
    }
    let state = Mutex(State())
    func with<R>(_ body: (inout State) -> R) -> R { state.withLock { body(&$0) } }
  }

  static func startServe(_ conninfo: String, port: Int, extra: [String] = []) async throws -> (BackgroundProcess, Int) {
    let server = try await BackgroundProcess.start([QuadCommandTests.quad, "serve", "--port", String(port), "--metrics-port", "0", "--database-url", conninfo] + extra)
    guard let p = server.firstLine.split(separator: ":").last.flatMap({ Int($0) }), server.firstLine.hasPrefix("quad serve: serving") else {
      throw Failure(message: "quad serve did not start: \(server.firstLine)")
    }
    return (server, p)
  }

  struct Failure: Error { let message: String }

  @Test("SIGKILL and restart of quad serve, then a PostgreSQL restart, while writing and subscribing: no acknowledged event lost, none duplicated for a cursor, groups resume after their checkpoints")
  func killAndRestart() async throws {
    let pg = try await TestPostgres.start()
    let pool = PostgresPool(conninfo: pg.conninfo, maximumConnections: 6)
    let store = EventStore(pool: pool)
    try await store.migrate()
    var (server, port) = try await Self.startServe(pg.conninfo, port: 0)
    let client = try GRPCClient(target: "127.0.0.1:\(port)")
    let events = Quad_Events_V1_Events.Client(client)
    let record = Record()
    let writersDone = WritingFlag()

    try await withThrowingTaskGroup(of: Void.self) { group in
      // Another instance's writers: 4 streams, as fast as they go, retrying through the faults.
      for w in 0..<4 {
        group.addTask {
          let stream = StreamID(type: "card", id: "writer-\(w)")
          var version: Int64 = 0
          while writersDone.writing {
            do {
              let p = try await store.transaction { tx in
                try await tx.append(NewEvent(type: "campus.scans.v1.CardScanned", payload: [8, UInt8(w)]), to: stream, expectedVersion: version)
              }
              version += 1
              record.with { _ = $0.acknowledged.insert(p) }
            } catch {
              record.with { $0.writeErrors += 1 }
              try? await Task.sleep(for: .milliseconds(50))
              // The outcome of the last write may be unknown: go on from what the log holds.
              if let v = try? await store.readStream(stream, limit: 100_000).last?.version { version = v }
            }
          }
          record.with { $0.writersStopped += 1 }
        }
      }
      // A subscriber that resumes from its own cursor after every failure.
      group.addTask {
        var cursor: Quad_Events_V1_Cursor?
        while !Task.isCancelled {
          var request = Quad_Events_V1_SubscribeRequest()
          if let cursor { request.after = cursor } else { request.start = .first }
          do {
            try await events.subscribe(request, options: CallOptions(timeout: .seconds(300))) { stream in
              for try await e in stream {
                record.with { s in
                  if let last = s.cursorSeen.last, e.cursor.position <= last {
                    s.violations.append("cursor subscriber: \(e.cursor.position) after \(last)")
                  }
                  s.cursorSeen.append(e.cursor.position)
                }
                cursor = e.cursor
              }
            }
          } catch {
            record.with { $0.subscribeErrors += 1 }
            try? await Task.sleep(for: .milliseconds(100))
          }
        }
      }
      // A consumer group that checkpoints every 25 events and resumes after its checkpoint.
      group.addTask {
        var request = Quad_Events_V1_SubscribeRequest()
        request.group = "fault.projection"
        request.start = .first
        while !Task.isCancelled {
          let checkpointBefore = record.with { s -> Int64 in
            s.groupSessions.append([])
            return s.groupCheckpoint
          }
          do {
            try await events.subscribe(request, options: CallOptions(timeout: .seconds(300))) { stream in
              var n = 0
              for try await e in stream {
                let p = e.cursor.position
                record.with { s in
                  let session = s.groupSessions.count - 1
                  if let last = s.groupSessions[session].last, p <= last {
                    s.violations.append("group: \(p) after \(last) in one session")
                  }
                  if s.groupSessions[session].isEmpty && p <= checkpointBefore {
                    s.violations.append("group: resumed at \(p), not after its checkpoint \(checkpointBefore)")
                  }
                  s.groupSessions[session].append(p)
                }
                n += 1
                if n % 25 == 0 {
                  var commit = Quad_Events_V1_CommitCheckpointRequest()
                  commit.group = request.group
                  commit.cursor = e.cursor
                  let stored = try await events.commitCheckpoint(commit, options: CallOptions(timeout: .seconds(10)))
                  record.with { $0.groupCheckpoint = max($0.groupCheckpoint, stored.checkpoint.position) }
                }
              }
            }
          } catch {
            record.with {
              $0.subscribeErrors += 1
              $0.groupErrors.append("\(ContinuousClock.now): \(error)")
            }
            try? await Task.sleep(for: .milliseconds(100))
          }
        }
      }

      // Each fault comes once writes have gone on for a while (however slow the machine is).
      func writes(atLeast n: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while record.with({ $0.acknowledged.count }) < n && ContinuousClock.now < deadline {
          try await Task.sleep(for: .milliseconds(50))
        }
      }
      try await Task.sleep(for: .seconds(2))
      try await writes(atLeast: 50)
      // The server crashes while all of that is in flight, and comes back on the same port.
      await server.kill(signal: SIGKILL)
      try await Task.sleep(for: .milliseconds(500))
      (server, port) = try await Self.startServe(pg.conninfo, port: port)
      try await Task.sleep(for: .seconds(2))
      try await writes(atLeast: 80)
      // PostgreSQL restarts under the running server.
      try await pg.restart()
      try await Task.sleep(for: .seconds(2))
      try await writes(atLeast: 120)
      writersDone.stop()
      // A write in flight may still be acknowledged: wait until every writer has stopped, so the
      // set of acknowledged events is final before it is compared.
      let deadline = ContinuousClock.now + .seconds(90)
      while record.with({ $0.writersStopped }) < 4 && ContinuousClock.now < deadline {
        try await Task.sleep(for: .milliseconds(50))
      }
      // Everything acknowledged must arrive at both subscribers.
      while ContinuousClock.now < deadline {
        let done = record.with { s in
          s.acknowledged.isSubset(of: Set(s.cursorSeen)) && s.acknowledged.isSubset(of: Set(s.groupSessions.joined()))
        }
        if done { break }
        try await Task.sleep(for: .milliseconds(200))
      }
      group.cancelAll()
    }
    let final = record.with { $0 }
    await client.close()
    await server.kill(signal: SIGTERM)
    pool.shutdown()
    await pg.stop()

    #expect(final.acknowledged.count > 100, "writes acknowledged: \(final.acknowledged.count)")
    #expect(final.writeErrors > 0, "the PostgreSQL restart should have failed some writes")
    #expect(final.subscribeErrors > 0, "the crash should have broken the subscriptions")
    #expect(final.violations.isEmpty, "\(final.violations.prefix(5))")
    let missingCursor = final.acknowledged.subtracting(final.cursorSeen)
    #expect(missingCursor.isEmpty, "cursor subscriber missed \(missingCursor.count) of \(final.acknowledged.count)")
    let missingGroup = final.acknowledged.subtracting(final.groupSessions.joined())
    #expect(missingGroup.isEmpty, "group missed \(missingGroup.count) of \(final.acknowledged.count); sessions \(final.groupSessions.map(\.count)), errors \(final.groupErrors.suffix(8))")
    #expect(Set(final.cursorSeen).count == final.cursorSeen.count, "the cursor subscriber saw an event twice")
  }
}

/// Whether the writers go on.
final class WritingFlag: Sendable {
  private let flag = Atomic<Bool>(true)
  var writing: Bool { flag.load(ordering: .relaxed) }
  func stop() { flag.store(false, ordering: .relaxed) }
}

/// `quad serve`'s memory with a subscriber that stops reading, measured on the server process
/// alone.
@Suite("quad serve with a stalled subscriber")
struct ServeStalledSubscriberTests {
  static func residentBytes(_ pid: Int32) -> Int {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/statm", encoding: .utf8),
      let pages = text.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
    else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
  }

  @Test("40 MB of events pass a subscriber that stopped reading: the server's resident memory grows by a bounded amount, not by the backlog")
  func boundedMemory() async throws {
    let pg = try await TestPostgres.start()
    let pool = PostgresPool(conninfo: pg.conninfo, maximumConnections: 8)
    let store = EventStore(pool: pool)
    try await store.migrate()
    let (server, port) = try await ServeFaultTests.startServe(pg.conninfo, port: 0, extra: ["--relay-tail-mib", "4"])
    let client = try GRPCClient(target: "127.0.0.1:\(port)")
    let events = Quad_Events_V1_Events.Client(client)
    let payload = [UInt8](repeating: 0x5A, count: 1000)
    let total = 40_000
    var growth = 0
    try await events.subscribe(Quad_Events_V1_SubscribeRequest(), options: CallOptions(timeout: .seconds(300))) { stalled in
      var it = stalled.makeAsyncIterator()
      _ = try await store.transaction { tx in try await tx.append(NewEvent(type: "t", payload: payload), to: StreamID(type: "s", id: "first"), expectedVersion: 0) }
      _ = try await it.next()
      let before = Self.residentBytes(server.pid)
      // Another instance writes 40 MB; the server's relay reads it all (its tail holds 4 MiB at
      // most here) while this subscriber holds its stream window shut.
      try await withThrowingTaskGroup(of: Void.self) { group in
        for w in 0..<8 {
          group.addTask {
            for v in 1...(total / 8) {
              _ = try await store.transaction { tx in
                try await tx.append(NewEvent(type: "t", payload: payload), to: StreamID(type: "s", id: "w\(w)"), expectedVersion: Int64(v - 1))
              }
            }
          }
        }
        try await group.waitForAll()
      }
      try await Task.sleep(for: .seconds(1))
      growth = Self.residentBytes(server.pid) - before
      // Reading again: everything arrives, in order.
      var n = 1
      var last: Int64 = 0
      while n < total + 1, let e = try await it.next() {
        #expect(e.cursor.position > last)
        last = e.cursor.position
        n += 1
      }
      #expect(n == total + 1)
    }
    print("quad serve with a stalled subscriber: resident memory grew \(growth >> 10) KiB while \(total) events of \(payload.count) bytes passed")
    // What stays is the tail (4 MiB), a page per subscriber, the stream window and the
    // allocator's slack: far below the 40 MB backlog.
    #expect(growth < 24 << 20, "resident memory grew by \(growth >> 20) MiB")
    await client.close()
    await server.kill(signal: SIGTERM)
    pool.shutdown()
    await pg.stop()
  }
}
