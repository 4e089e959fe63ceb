internal import EventRelay
internal import EventStore
internal import EventsService
internal import Foundation
internal import Postgres
internal import QuadProtobuf
internal import QuadRPC
internal import Synchronization
internal import Testing
internal import TestSupport

/// The relay's fan-out: a subscriber that stops reading costs bounded memory and holds nobody
/// back; instances on one database wake each other with NOTIFY (coalesced, not one per write).
@Suite("Relay fan-out", .serialized)
struct RelayFanOutTests {
  @Test("A stalled subscriber: the live subscriber gets every one of 20,000 events meanwhile, and the stalled one later catches up from the table in order (server memory: ServeFaultTests)")
  func stalledSubscriber() async throws {
    var settings = EventRelay.Settings()
    settings.tailCapacity = 1000
    settings.tailByteCapacity = 1 << 20
    try await EventsServiceTests.withService(relaySettings: settings) { h in
      let total = 20_000
      let payload = [UInt8](repeating: 0x5A, count: 1000)
      let client = try GRPCClient(target: "127.0.0.1:\(h.port)")
      let events = Quad_Events_V1_Events.Client(client)
      let latencies = LatencyLog()
      try await events.subscribe(EventsServiceTests.request(start: .first), options: CallOptions(timeout: .seconds(300))) { stalled in
        // The stalled subscriber reads one event, then nothing while everything is written.
        var it = stalled.makeAsyncIterator()
        _ = try await Self.write(h.store, count: 1, payload: payload)
        let first = try await it.next()
        #expect(first?.cursor.position != nil)
        let live = try await withThrowingTaskGroup(of: Int.self) { group in
          group.addTask {
            try await events.subscribe(EventsServiceTests.request(start: .end), options: CallOptions(timeout: .seconds(300))) { stream in
              var n = 0
              for try await e in stream {
                latencies.add(e)
                n += 1
                if n == total - 1 { break }
              }
              return n
            }
          }
          try await Task.sleep(for: .milliseconds(300))
          _ = try await Self.write(h.store, count: total - 1, payload: payload)
          return try await group.next()!
        }
        #expect(live == total - 1)
        print("stalled subscriber present: live subscriber commit-to-delivery \(latencies.summary)")
        // Reading again, the stalled subscriber gets the rest, in order, from the table.
        var positions: [Int64] = [first!.cursor.position]
        while positions.count < total, let e = try await it.next() { positions.append(e.cursor.position) }
        #expect(positions.count == total)
        #expect(positions == positions.sorted() && Set(positions).count == total)
      }
      #expect(h.relay.stats.events >= total - 1)
      await client.close()
    }
  }

  @Test("Live subscribers: 40 on 4 connections, half filtered by type, follow the relay live while 8 writers commit 2,000 events of two types; each gets every matching event once and in order, and leaves the live set when its call ends")
  func liveSubscribers() async throws {
    try await EventsServiceTests.withService { h in
      let clients = try (0..<4).map { _ in try GRPCClient(target: "127.0.0.1:\(h.port)") }
      let subscribers = 40, total = 2000
      let types = ["campus.scans.v1.CardScanned", "campus.students.v1.StudentRegistered"]
      let received = try await withThrowingTaskGroup(of: (Int, [Quad_Events_V1_EventEnvelope]).self) { group in
        for i in 0..<subscribers {
          group.addTask {
            var request = EventsServiceTests.request(start: .first)
            if i % 2 == 1 { request.eventTypes = [types[0]] }
            let want = i % 2 == 1 ? total / 2 : total
            let events = try await EventsServiceTests.collect(Quad_Events_V1_Events.Client(clients[i % clients.count]), request, count: want)
            return (i, events)
          }
        }
        // Every subscriber has caught up with the empty log and joined the live set.
        let deadline = ContinuousClock.now + .seconds(30)
        while h.relay.stats.live < subscribers && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(h.relay.stats.live == subscribers)
        try await withThrowingTaskGroup(of: Void.self) { writers in
          for w in 0..<8 {
            writers.addTask {
              let stream = StreamID(type: "card", id: "live-\(w)")
              for v in 0..<(total / 8) {
                _ = try await EventsServiceTests.append(h.store, stream, version: Int64(v + 1), type: types[v % 2])
              }
            }
          }
          try await writers.waitForAll()
        }
        var all: [Int: [Quad_Events_V1_EventEnvelope]] = [:]
        for try await (i, events) in group { all[i] = events }
        return all
      }
      for (i, events) in received {
        let positions = events.map(\.cursor.position)
        #expect(positions == positions.sorted() && Set(positions).count == positions.count, "subscriber \(i): out of order or twice")
        if i % 2 == 1 {
          #expect(events.count == total / 2 && events.allSatisfy { $0.eventType == types[0] }, "subscriber \(i)")
        } else {
          #expect(events.count == total, "subscriber \(i)")
        }
      }
      // Every call has ended: none is left in the live set.
      let deadline = ContinuousClock.now + .seconds(10)
      while h.relay.stats.waiting > 0 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
      #expect(h.relay.stats.live == 0 && h.relay.stats.waiting == 0)
      for c in clients { await c.close() }
    }
  }

  @Test("A subscriber that joined the live set before the relay started reads the log below the relay's first fence without waiting for a new write")
  func liveBeforeRelayStarts() async throws {
    try await EventsServiceTests.withService(startRelay: false) { h in
      for v in 1...10 { _ = try await EventsServiceTests.append(h.store, StreamID(type: "card", id: "early"), version: Int64(v)) }
      try await withThrowingTaskGroup(of: [Int64].self) { group in
        group.addTask {
          try await EventsServiceTests.collect(h.client, EventsServiceTests.request(start: .first), count: 10, timeout: .seconds(30)).map(\.cursor.position)
        }
        // The relay has not read the log: the subscriber is caught up with nothing, and live.
        let deadline = ContinuousClock.now + .seconds(10)
        while h.relay.stats.live < 1 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(h.relay.stats.live == 1)
        group.addTask {
          try? await h.relay.run()
          return []
        }
        let positions = try await group.next()!
        #expect(positions.count == 10 && positions == positions.sorted())
        group.cancelAll()
      }
    }
  }

  @Test("Two instances on one database: a subscriber on one sees the other's writes through NOTIFY (its polling is 30 s), and NOTIFYs are coalesced")
  func instancesWakeEachOther() async throws {
    var slow = EventRelay.Settings()
    slow.pollInterval = .seconds(30)
    try await EventsServiceTests.withService(relaySettings: slow) { h in
      // A second instance: its own pool, store, relay; it only writes here.
      let pool = PostgresPool(conninfo: h.pg.conninfo, maximumConnections: 4)
      let writerStore = EventStore(pool: pool)
      let writerRelay = EventRelay(store: writerStore)
      let writes = 300
      let got = try await withThrowingTaskGroup(of: [Quad_Events_V1_EventEnvelope]?.self) { group in
        group.addTask { try? await writerRelay.run(); return nil }
        group.addTask { try await EventsServiceTests.collect(h.client, EventsServiceTests.request(start: .first), count: writes, timeout: .seconds(25)) }
        try await Task.sleep(for: .milliseconds(500))
        _ = try await Self.write(writerStore, count: writes, payload: [1])
        var result: [Quad_Events_V1_EventEnvelope] = []
        while let r = try await group.next() {
          if let r {
            result = r
            break
          }
        }
        group.cancelAll()
        return result
      }
      #expect(got.count == writes)
      let stats = writerRelay.stats
      #expect(stats.notifiesSent > 0 && stats.notifiesSent < writes, "NOTIFYs sent for \(writes) writes: \(stats.notifiesSent)")
      #expect(h.relay.stats.notifiesReceived > 0)
      print("instances: \(writes) writes sent \(stats.notifiesSent) NOTIFYs; the other instance received \(h.relay.stats.notifiesReceived)")
      pool.shutdown()
    }
  }

  /// Writes `count` events, 8 streams at a time, as fast as they commit.
  static func write(_ store: EventStore, count: Int, payload: [UInt8]) async throws -> [Int64] {
    try await withThrowingTaskGroup(of: [Int64].self) { group in
      let writers = min(8, count)
      for w in 0..<writers {
        group.addTask {
          var positions: [Int64] = []
          let stream = StreamID(type: "card", id: "w\(w)-\(UInt32.random(in: 0...UInt32.max))")
          var version: Int64 = 0
          for _ in stride(from: w, to: count, by: writers) {
            positions.append(try await store.transaction { tx in
              try await tx.append(NewEvent(type: "campus.scans.v1.CardScanned", payload: payload), to: stream, expectedVersion: version)
            })
            version += 1
          }
          return positions
        }
      }
      var all: [Int64] = []
      for try await p in group { all += p }
      return all
    }
  }
}

/// Commit-to-delivery times a subscriber saw (recorded_at to arrival).
final class LatencyLog: Sendable {
  private let samples = Mutex<[Double]>([])

  func add(_ e: Quad_Events_V1_EventEnvelope) {
    let recorded = Double(e.recordedAt.seconds) + Double(e.recordedAt.nanos) / 1e9
    let now = Date().timeIntervalSince1970
    samples.withLock { $0.append((now - recorded) * 1000) }
  }

  var summary: String {
    let sorted = samples.withLock { $0 }.sorted()
    guard !sorted.isEmpty else { return "(none)" }
    func q(_ p: Double) -> String { String(format: "%.1f", sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) }
    return "p50 \(q(0.5)) ms, p99 \(q(0.99)) ms over \(sorted.count)"
  }
}
