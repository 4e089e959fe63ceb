internal import EventRelay
internal import EventStore
internal import EventsService
internal import Foundation
internal import GRPCWire
internal import Postgres
internal import QuadProtobuf
internal import QuadRPC
internal import Synchronization
internal import Testing
internal import TestMessages
internal import TestSupport

/// `quad.events.v1.Events` on a real server, against a real PostgreSQL, through real sockets.
@Suite("Events service", .serialized)
struct EventsServiceTests {
  struct Harness {
    let store: EventStore
    let relay: EventRelay
    let client: Quad_Events_V1_Events.Client
    let pg: TestPostgres
    let port: Int
  }

  static func withService(
    relaySettings: EventRelay.Settings = EventRelay.Settings(),
    serviceSettings: EventsService.Settings = EventsService.Settings(),
    connections: Int = 8,
    upcasters: EventUpcasters = .none,
    startRelay: Bool = true,
    _ body: @Sendable (Harness) async throws -> Void
  ) async throws {
    let pg = try await TestPostgres.start()
    let pool = PostgresPool(conninfo: pg.conninfo, maximumConnections: connections)
    let store = EventStore(pool: pool, upcasters: upcasters)
    let relay = EventRelay(store: store, settings: relaySettings)
    var outcome: Result<Void, any Error>
    do {
      try await store.migrate()
      var router = Router()
      EventsService(relay: relay, settings: serviceSettings).register(in: &router)
      let server = try await GRPCServer.start(router: router, host: "127.0.0.1", port: 0)
      let grpc = try GRPCClient(target: "127.0.0.1:\(server.port)")
      outcome = await withTaskGroup(of: Void.self) { group in
        if startRelay { group.addTask { try? await relay.run() } }
        let r: Result<Void, any Error>
        do {
          try await body(Harness(store: store, relay: relay, client: Quad_Events_V1_Events.Client(grpc), pg: pg, port: server.port))
          r = .success(())
        } catch {
          r = .failure(error)
        }
        group.cancelAll()
        return r
      }
      await grpc.close()
      try await server.stop()
    } catch {
      outcome = .failure(error)
    }
    pool.shutdown()
    await pg.stop()
    try outcome.get()
  }

  static func append(_ store: EventStore, _ stream: StreamID, version: Int64, type: String = "campus.scans.v1.CardScanned", payload: [UInt8] = [8, 1]) async throws -> Int64 {
    try await store.transaction { tx in
      try await tx.append(NewEvent(type: type, payload: payload), to: stream, expectedVersion: version - 1)
    }
  }

  static func request(after cursor: Quad_Events_V1_Cursor? = nil, start: Quad_Events_V1_SubscribeRequest.Start? = nil) -> Quad_Events_V1_SubscribeRequest {
    var r = Quad_Events_V1_SubscribeRequest()
    if let cursor { r.after = cursor }
    if let start { r.start = start }
    return r
  }

  /// Reads `count` envelopes from a subscription, then cancels it.
  static func collect(_ client: Quad_Events_V1_Events.Client, _ request: Quad_Events_V1_SubscribeRequest, count: Int, timeout: Duration = .seconds(120)) async throws -> [Quad_Events_V1_EventEnvelope] {
    guard count > 0 else { return [] }
    return try await client.subscribe(request, options: CallOptions(timeout: timeout)) { stream in
      var got: [Quad_Events_V1_EventEnvelope] = []
      for try await e in stream {
        got.append(e)
        if got.count == count { break }
      }
      return got
    }
  }

  @Test("Catch-up from the table switches to live without a gap or duplicate; payloads arrive as Any with their type")
  func catchUpThenLive() async throws {
    try await Self.withService { h in
      // Written before the subscription: read from the table.
      for v in 1...1500 { _ = try await Self.append(h.store, StreamID(type: "card", id: "c-\(v % 7)"), version: Int64((v - 1) / 7 + 1), payload: [8, UInt8(v % 100)]) }
      let total = 3000
      let got = try await withThrowingTaskGroup(of: [Quad_Events_V1_EventEnvelope]?.self) { group in
        group.addTask { try await Self.collect(h.client, Self.request(start: .first), count: total) }
        group.addTask {
          // Written while it catches up and after: read live.
          for v in 1501...total { _ = try await Self.append(h.store, StreamID(type: "card", id: "c-\(v % 7)"), version: Int64((v - 1) / 7 + 1)) }
          return nil
        }
        var result: [Quad_Events_V1_EventEnvelope] = []
        for try await r in group { if let r { result = r } }
        return result
      }
      #expect(got.count == total)
      let positions = got.map(\.cursor.position)
      #expect(positions == positions.sorted() && Set(positions).count == total)
      let committed = try await h.store.readCommitted(after: 0, limit: 10_000).events.map(\.position)
      #expect(positions == committed)
      let log = try await h.store.identity()
      #expect(got.allSatisfy { $0.cursor.log == log && $0.payload.typeUrl == "type.googleapis.com/campus.scans.v1.CardScanned" })
      #expect(got[0].payload.value == [8, 1] && got[0].hasRecordedAt && got[0].recordedAt.seconds > 1_700_000_000)
      // Each stream's versions arrive in order.
      var versions: [String: Int64] = [:]
      for e in got {
        #expect(e.streamVersion == (versions[e.streamId] ?? 0) + 1)
        versions[e.streamId] = e.streamVersion
      }
    }
  }

  @Test("Gap safety under concurrency: 16 writers, 4 subscribers (from the start, from a cursor, filtered); none misses, repeats or reorders an event")
  func concurrentWritersAndSubscribers() async throws {
    try await Self.withService(connections: 24) { h in
      let writers = 16, perWriter = 120
      let total = writers * perWriter
      // One subscriber starts from a cursor taken after the first event.
      let first = try await Self.append(h.store, StreamID(type: "card", id: "first"), version: 1)
      let log = try await h.store.identity()
      var cursor = Quad_Events_V1_Cursor()
      cursor.log = log
      cursor.position = first
      var odd = Self.request(start: .first)
      odd.eventTypes = ["campus.scans.v1.Odd"]
      let (filtered, fromCursor) = (odd, cursor)
      let results = try await withThrowingTaskGroup(of: (String, [Quad_Events_V1_EventEnvelope]).self) { group in
        group.addTask { ("a", try await Self.collect(h.client, Self.request(start: .first), count: total + 1)) }
        group.addTask { ("b", try await Self.collect(h.client, Self.request(start: .first), count: total + 1)) }
        group.addTask { ("cursor", try await Self.collect(h.client, Self.request(after: fromCursor), count: total)) }
        group.addTask { ("odd", try await Self.collect(h.client, filtered, count: total / 2)) }
        for w in 0..<writers {
          group.addTask {
            for v in 1...perWriter {
              let type = v % 2 == 1 ? "campus.scans.v1.Odd" : "campus.scans.v1.Even"
              _ = try await Self.append(h.store, StreamID(type: "card", id: "w\(w)"), version: Int64(v), type: type)
            }
            return ("writer", [])
          }
        }
        var out: [String: [Quad_Events_V1_EventEnvelope]] = [:]
        for try await (name, events) in group where name != "writer" { out[name] = events }
        return out
      }
      let committed = try await h.store.readCommitted(after: 0, limit: 10_000).events
      #expect(committed.count == total + 1)
      let all = committed.map(\.position)
      #expect(results["a"]?.map(\.cursor.position) == all)
      #expect(results["b"]?.map(\.cursor.position) == all)
      #expect(results["cursor"]?.map(\.cursor.position) == Array(all.dropFirst()))
      #expect(results["odd"]?.map(\.cursor.position) == committed.filter { $0.type == "campus.scans.v1.Odd" }.map(\.position))
    }
  }

  @Test("Cursors of another log, beyond the head or negative, and malformed filters get precise statuses")
  func badInput() async throws {
    try await Self.withService { h in
      let p = try await Self.append(h.store, StreamID(type: "card", id: "c"), version: 1)
      let log = try await h.store.identity()
      func code(_ request: Quad_Events_V1_SubscribeRequest) async -> GRPCStatus.Code? {
        do {
          _ = try await Self.collect(h.client, request, count: 1, timeout: .seconds(30))
          return .ok
        } catch let e as RPCError {
          return e.code
        } catch {
          return nil
        }
      }
      var c = Quad_Events_V1_Cursor()
      c.log = "another-log"
      c.position = p
      #expect(await code(Self.request(after: c)) == .failedPrecondition)
      c.log = log
      c.position = p + 1000
      #expect(await code(Self.request(after: c)) == .outOfRange)
      c.position = -1
      #expect(await code(Self.request(after: c)) == .invalidArgument)
      var r = Self.request(start: .first)
      r.eventTypes = ["ok", "bad\u{1}"]
      #expect(await code(r) == .invalidArgument)
      r.eventTypes = (0...100).map { "t\($0)" }
      #expect(await code(r) == .invalidArgument)
      r.eventTypes = [String(repeating: "x", count: 300)]
      #expect(await code(r) == .invalidArgument)
      r.eventTypes = [""]
      #expect(await code(r) == .invalidArgument)
      var unknown = Quad_Events_V1_SubscribeRequest()
      unknown.start = .UNRECOGNIZED(7)
      #expect(await code(unknown) == .invalidArgument)
      var checkpoint = Quad_Events_V1_CommitCheckpointRequest()
      checkpoint.group = "g"
      await #expect(throws: RPCError.self) { _ = try await h.client.commitCheckpoint(checkpoint) }
      var read = Quad_Events_V1_ReadStreamRequest()
      read.streamType = "card"
      await #expect(throws: RPCError.self) { _ = try await h.client.readStream(read) }
      // A cursor exactly at the head is fine: it waits for what comes next.
      c.position = p
      let atHead = c
      let next = try await withThrowingTaskGroup(of: [Quad_Events_V1_EventEnvelope].self) { group in
        group.addTask { try await Self.collect(h.client, Self.request(after: atHead), count: 1) }
        try await Task.sleep(for: .milliseconds(200))
        _ = try await Self.append(h.store, StreamID(type: "card", id: "c"), version: 2)
        return try await group.next()!
      }
      #expect(next.map(\.streamVersion) == [2])
    }
  }

  @Test("SQL-looking text in every field is stored and read back verbatim; an oversized event is refused whole")
  func hostileText() async throws {
    try await Self.withService { h in
      let evil = "'; DROP TABLE quad_events; --"
      let stream = StreamID(type: "x\"); DELETE FROM quad_events; --", id: evil)
      let metadata = { () -> [UInt8] in
        var m = Quad_Events_V1_EventMetadata()
        m.correlationId = evil
        m.identity = "robert'); DROP TABLE students;--"
        return m.serializedBytes()
      }()
      _ = try await h.store.transaction { tx in
        try await tx.append(NewEvent(type: "a.b'; SELECT pg_sleep(10); --", payload: Array(evil.utf8), metadata: metadata), to: stream, expectedVersion: 0)
      }
      await #expect(throws: EventStoreError.self) {
        _ = try await h.store.transaction { tx in
          try await tx.append(NewEvent(type: "big", payload: [UInt8](repeating: 1, count: EventStore.maximumEventBytes + 1)), to: StreamID(type: "card", id: "big"), expectedVersion: 0)
        }
      }
      var read = Quad_Events_V1_ReadStreamRequest()
      read.streamType = stream.type
      read.streamId = stream.id
      let answer = try await h.client.readStream(read)
      #expect(answer.events.count == 1)
      #expect(answer.events.first?.eventType == "a.b'; SELECT pg_sleep(10); --")
      #expect(answer.events.first?.payload.value == Array(evil.utf8))
      #expect(answer.events.first?.metadata.correlationId == evil)
      #expect(answer.events.first?.metadata.identity == "robert'); DROP TABLE students;--")
      var filtered = Self.request(start: .first)
      filtered.streamTypes = [stream.type]
      filtered.eventTypes = ["a.b'; SELECT pg_sleep(10); --"]
      #expect(try await Self.collect(h.client, filtered, count: 1).map(\.streamId) == [evil])
      #expect(try await h.store.readCommitted(after: 0).events.count == 1)
    }
  }

  @Test("ReadStream pages through a stream in version order and shows it as it was at a past time")
  func readStream() async throws {
    try await Self.withService { h in
      let stream = StreamID(type: "student", id: "s-1")
      for v in 1...5 { _ = try await Self.append(h.store, stream, version: Int64(v)) }
      let middle = try await h.store.readStream(stream)[2].recordedAtMicroseconds
      try await Task.sleep(for: .milliseconds(20))
      for v in 6...7 { _ = try await Self.append(h.store, stream, version: Int64(v)) }
      var read = Quad_Events_V1_ReadStreamRequest()
      read.streamType = "student"
      read.streamId = "s-1"
      read.limit = 3
      let page1 = try await h.client.readStream(read)
      #expect(page1.events.map(\.streamVersion) == [1, 2, 3] && page1.nextVersion == 4)
      read.fromVersion = page1.nextVersion
      read.limit = 0
      let page2 = try await h.client.readStream(read)
      #expect(page2.events.map(\.streamVersion) == [4, 5, 6, 7] && page2.nextVersion == 0)
      read.fromVersion = 0
      read.asOf.seconds = middle / 1_000_000
      read.asOf.nanos = Int32(middle % 1_000_000) * 1000
      #expect(try await h.client.readStream(read).events.map(\.streamVersion) == [1, 2, 3])
      let head = try await h.client.getHead(Quad_Events_V1_GetHeadRequest())
      #expect(head.head.position == (try await h.store.head()))
    }
  }

  @Test("A consumer group resumes after its checkpoint, has one reader at a time, and a waiting reader takes over when the holder stops")
  func consumerGroups() async throws {
    var service = EventsService.Settings()
    service.leaseTTL = .seconds(2)
    service.leaseRenewal = .milliseconds(200)
    try await Self.withService(serviceSettings: service) { h in
      for v in 1...10 { _ = try await Self.append(h.store, StreamID(type: "card", id: "c"), version: Int64(v)) }
      let request = { () -> Quad_Events_V1_SubscribeRequest in
        var r = Self.request(start: .first)
        r.group = "projections.occupancy"
        return r
      }()
      // The first reader reads 4 and checkpoints the 3rd: at-least-once, so the 4th comes again.
      let firstFour = try await Self.collect(h.client, request, count: 4)
      #expect(firstFour.map(\.streamVersion) == [1, 2, 3, 4])
      var commit = Quad_Events_V1_CommitCheckpointRequest()
      commit.group = request.group
      commit.cursor = firstFour[2].cursor
      #expect(try await h.client.commitCheckpoint(commit).checkpoint.position == firstFour[2].cursor.position)
      // Checkpoints never move back.
      commit.cursor = firstFour[0].cursor
      #expect(try await h.client.commitCheckpoint(commit).checkpoint.position == firstFour[2].cursor.position)
      let resumed = try await Self.collect(h.client, request, count: 7)
      #expect(resumed.map(\.streamVersion) == Array(4...10))

      // While one reader holds the group, a second one waits, then takes over.
      let order = Lines()
      try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask {
          try await h.client.subscribe(request, options: CallOptions(timeout: .seconds(60))) { stream in
            for try await _ in stream {
              order.append("holder")
              break
            }
            // Holds the lease a while (the call stays open), then lets go.
            try await Task.sleep(for: .seconds(1))
            order.append("holder stops")
          }
        }
        try await Task.sleep(for: .milliseconds(300))
        group.addTask {
          let got = try await Self.collect(h.client, request, count: 1, timeout: .seconds(60))
          order.append("standby got \(got[0].streamVersion)")
        }
        try await group.waitForAll()
      }
      #expect(order.all == ["holder", "holder stops", "standby got 4"])
    }
  }
}

/// Lines appended by concurrent tasks, in the order they happened.
final class Lines: Sendable {
  private let lines = Mutex<[String]>([])
  func append(_ line: String) { lines.withLock { $0.append(line) } }
  var all: [String] { lines.withLock { $0 } }
}

/// Events typed by contract: generated sets decode payloads in Swift, and a Python client built
/// from the `.proto` files alone decodes them too.
@Suite("Typed events", .serialized)
struct TypedEventTests {
  static func appendTestEvents(_ store: EventStore) async throws {
    var scan = Quad_Test_V1_DoorScanned()
    scan.card = "7731"
    scan.door = "library-north"
    var forced = Quad_Test_V1_DoorScanned.Forced()
    forced.door = "lab-2"
    var blocked = Quad_Test_V1_CardBlocked()
    blocked.card = "7731"
    var w = EventWrite()
    w.events = [
      EventWrite.Append(NewEvent(scan), to: StreamID(type: Quad_Test_V1_DoorScanned.streamType, id: "library-north"), expectedVersion: 0),
      EventWrite.Append(NewEvent(type: "campus.other.v1.Unrelated", payload: [1]), to: StreamID(type: "other", id: "x"), expectedVersion: 0),
      EventWrite.Append(NewEvent(forced), to: StreamID(type: Quad_Test_V1_DoorScanned.Forced.streamType, id: "lab-2"), expectedVersion: 0),
      EventWrite.Append(NewEvent(blocked), to: StreamID(type: Quad_Test_V1_CardBlocked.streamType, id: "7731"), expectedVersion: 0),
    ]
    _ = try await store.write(w)
  }

  @Test("A generated event set subscribes to its own types only and decodes each payload")
  func typedSubscription() async throws {
    try await EventsServiceTests.withService { h in
      try await Self.appendTestEvents(h.store)
      #expect(QuadEvents_quad_test_v1_events_proto.eventTypes == ["quad.test.v1.DoorScanned", "quad.test.v1.DoorScanned.Forced", "quad.test.v1.CardBlocked"])
      let got = try await h.client.subscribe(QuadEvents_quad_test_v1_events_proto.self, from: EventsServiceTests.request(start: .first)) { stream in
        var got: [QuadEvents_quad_test_v1_events_proto] = []
        for try await e in stream {
          got.append(e.event)
          if got.count == 3 { break }
        }
        return got
      }
      guard got.count == 3, case .doorScanned(let scan) = got[0], case .doorScannedForced(let forced) = got[1], case .cardBlocked(let blocked) = got[2] else {
        Issue.record("got \(got)")
        return
      }
      #expect(scan.door == "library-north" && forced.door == "lab-2" && blocked.card == "7731")
    }
  }

  @Test("A grpcio client generated from the .proto files decodes payloads by type URL, resumes from a cursor, and gets the right statuses")
  func pythonClient() async throws {
    try await EventsServiceTests.withService { h in
      try await Self.appendTestEvents(h.store)
      let script = repositoryRoot.appendingPathComponent("Tests/EventsServiceTests/python/events_client.py").path
      let (status, output) = try await runProcess(["sh", "-c", #"python3 "$0" "$@" 2>&1"#, script, String(h.port), "4"])
      #expect(status == 0, "\(output)")
      let lines = output.split(separator: "\n").map(String.init)
      let events = lines.filter { $0.hasPrefix("event ") }
      #expect(events.count == 4, "\(output)")
      #expect(events.first?.contains(#"door library-north 1 quad.test.v1.DoorScanned {"card": "7731", "door": "library-north"}"#) == true, "\(events)")
      #expect(events.contains { $0.contains(#"quad.test.v1.DoorScanned.Forced {"door": "lab-2"}"#) }, "\(events)")
      #expect(lines.contains("resumed True"))
      #expect(lines.contains("filtered quad.test.v1.CardBlocked"))
      #expect(lines.contains("status foreign-log FAILED_PRECONDITION"), "\(lines)")
      #expect(lines.contains("status beyond-head OUT_OF_RANGE"))
      #expect(lines.contains("status bad-filter INVALID_ARGUMENT"))
      #expect(lines.contains("head True"))
    }
  }
}
