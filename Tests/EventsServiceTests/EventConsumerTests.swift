internal import EventConsumers
internal import EventRelay
internal import EventStore
internal import EventsService
internal import QuadProtobuf
internal import QuadRPC
internal import Synchronization
internal import Testing
internal import TestSupport

/// In-process consumers: ordered, at-least-once across restarts, retries with backoff, a
/// dead-letter table operators list, retry and discard over gRPC.
@Suite("In-process consumers", .serialized)
struct EventConsumerTests {
  /// What a handler saw, and which payloads it fails on.
  final class Probe: Sendable {
    private let state = Mutex<(seen: [Int64], attempts: [Int64: Int], poison: Set<UInt8>)>(([], [:], []))
    func poison(_ payloads: Set<UInt8>) { state.withLock { $0.poison = payloads } }
    var seen: [Int64] { state.withLock { $0.seen } }
    func attempts(_ p: Int64) -> Int { state.withLock { $0.attempts[p] ?? 0 } }

    func handle(_ e: StoredEvent) throws {
      try state.withLock { s in
        s.attempts[e.position, default: 0] += 1
        if let b = e.payload.first, s.poison.contains(b) { throw Poison(byte: b) }
        s.seen.append(e.position)
      }
    }
  }

  struct Poison: Error, CustomStringConvertible {
    let byte: UInt8
    var description: String { "cannot project payload \(byte)" }
  }

  static func waitUntil(_ timeout: Duration = .seconds(60), _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
      if try await condition() { return }
      try await Task.sleep(for: .milliseconds(50))
    }
    Issue.record("condition not met in \(timeout)")
  }

  @Test("A failing event is retried with backoff, then parked with its error while later events go on; ListParked shows it, RetryParked hands it back, DiscardParked drops one")
  func deadLetters() async throws {
    try await EventsServiceTests.withService { h in
      let probe = Probe()
      probe.poison([7, 9])
      var settings = EventConsumer.Settings()
      settings.maximumAttempts = 3
      settings.initialBackoff = .milliseconds(20)
      settings.retryPoll = .milliseconds(100)
      let consumer = EventConsumer(name: "projections.occupancy", relay: h.relay, settings: settings) { e in try probe.handle(e) }
      let stream = StreamID(type: "card", id: "c")
      var positions: [Int64] = []
      for v in 1...10 { positions.append(try await EventsServiceTests.append(h.store, stream, version: Int64(v), payload: [UInt8(v)])) }
      try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await consumer.run() }
        try await Self.waitUntil { probe.seen.count == 8 }
        // In order, the poisoned ones left out.
        #expect(probe.seen == positions.enumerated().filter { ![6, 8].contains($0.offset) }.map(\.element))
        #expect(probe.attempts(positions[6]) == 3 && probe.attempts(positions[8]) == 3)
        var list = Quad_Events_V1_ListParkedRequest()
        list.consumer = "projections.occupancy"
        let parked = try await h.client.listParked(list)
        #expect(parked.events.map(\.event.cursor.position) == [positions[6], positions[8]])
        #expect(parked.events.allSatisfy { $0.attempts == 3 && $0.error.hasPrefix("cannot project payload") && !$0.retryRequested })
        #expect(parked.events.first?.event.payload.value == [7])
        // The projection is fixed for 7: retried, handled, unparked. 9 is discarded.
        probe.poison([9])
        var retry = Quad_Events_V1_ParkedEventsRequest()
        retry.consumer = "projections.occupancy"
        retry.positions = [positions[6]]
        #expect(try await h.client.retryParked(retry).affected == 1)
        try await Self.waitUntil { probe.seen.contains(positions[6]) }
        retry.positions = [positions[8], 999_999]
        #expect(try await h.client.discardParked(retry).affected == 1)
        #expect(try await h.client.listParked(list).events.isEmpty)
        // Bad requests.
        retry.positions = []
        await #expect(throws: RPCError.self) { _ = try await h.client.retryParked(retry) }
        group.cancelAll()
      }
    }
  }

  @Test("A consumer stopped mid-stream and started again (another instance) resumes after its checkpoint: every event at least once, in order")
  func resumesAfterCheckpoint() async throws {
    try await EventsServiceTests.withService { h in
      let stream = StreamID(type: "card", id: "c")
      for v in 1...300 { _ = try await EventsServiceTests.append(h.store, stream, version: Int64(v)) }
      let first = Probe(), second = Probe()
      let one = EventConsumer(name: "projections.visits", relay: h.relay) { e in try first.handle(e) }
      try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await one.run() }
        // Stopped once it has checkpointed (a stop in between would rightly hand everything over again).
        try await Self.waitUntil { (try await h.store.checkpoint(group: one.group) ?? 0) > 0 }
        group.cancelAll()
      }
      for v in 301...400 { _ = try await EventsServiceTests.append(h.store, stream, version: Int64(v)) }
      let two = EventConsumer(name: "projections.visits", relay: h.relay) { e in try second.handle(e) }
      try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await two.run() }
        try await Self.waitUntil { second.seen.last == first.seen.first.map { $0 + 399 } }
        group.cancelAll()
      }
      let all = try await h.store.readCommitted(after: 0, limit: 1000).events.map(\.position)
      #expect(Set(first.seen).union(second.seen) == Set(all))
      #expect(first.seen == first.seen.sorted() && second.seen == second.seen.sorted())
      // It resumed at its checkpoint, not from the start.
      #expect(second.seen.first! > all.first!)
      #expect(second.seen.first! <= first.seen.last! + 1)
    }
  }
}
