internal import EventStore
internal import EventsService
internal import Postgres
internal import QuadProtobuf
internal import QuadRPC
internal import Testing
internal import TestMessages
internal import TestSupport

/// Superseded event types are read as their successors, through every read path, while the log
/// keeps what was written.
@Suite("Upcasting", .serialized)
struct UpcastingTests {
  typealias V1 = Quad_Test_V1_DoorOpened
  typealias V2 = Quad_Test_V1_DoorOpenedV2
  typealias V3 = Quad_Test_V1_DoorOpenedV3

  /// v1 → v2: "building/door" split in two; v2 → v3: the card as a number.
  static func upcasters() throws -> EventUpcasters {
    try EventUpcasters([
      EventUpcaster(from: V1.self, to: V2.self) { old in
        var new = V2()
        new.card = old.card
        let parts = old.door.split(separator: "/", maxSplits: 1).map(String.init)
        new.building = parts.count == 2 ? parts[0] : ""
        new.door = parts.last ?? ""
        return new
      },
      EventUpcaster(from: V2.self, to: V3.self) { old in
        var new = V3()
        new.card = UInt64(old.card) ?? 0
        new.building = old.building
        new.door = old.door
        return new
      },
    ])
  }

  static func v1(card: String, door: String) -> NewEvent {
    var m = V1()
    m.card = card
    m.door = door
    return NewEvent(m)
  }

  static func v2(card: String, building: String, door: String) -> NewEvent {
    var m = V2()
    m.card = card
    m.building = building
    m.door = door
    return NewEvent(m)
  }

  static func v3(card: UInt64, building: String, door: String) -> NewEvent {
    var m = V3()
    m.card = card
    m.building = building
    m.door = door
    return NewEvent(m)
  }

  /// One stream with an event of each version and a closed door; with `corrupt`, also an old
  /// event whose bytes are not a valid message.
  static func writeHistory(_ store: EventStore, corrupt: Bool = false) async throws {
    let stream = StreamID(type: V1.streamType, id: "library-north")
    var w = EventWrite()
    w.events = [
      EventWrite.Append(v1(card: "7731", door: "library/north"), to: stream, expectedVersion: 0),
      EventWrite.Append(v2(card: "7732", building: "library", door: "north"), to: stream, expectedVersion: 1),
      EventWrite.Append(v3(card: 7733, building: "library", door: "north"), to: stream, expectedVersion: 2),
    ]
    _ = try await store.write(w)
    var closed = Quad_Test_V1_DoorClosed()
    closed.door = "north"
    _ = try await store.transaction { tx in
      try await tx.append(NewEvent(closed), to: StreamID(type: "door", id: "library-north"), expectedVersion: 3)
      // A truncated field: not a DoorOpened, so it is read as it was logged.
      guard corrupt else { return }
      try await tx.append(NewEvent(type: V1.protoMessageName, payload: [0x0A, 0x05, 0x31]), to: StreamID(type: "door", id: "broken"), expectedVersion: 0)
    }
  }

  static func decodeV3(_ event: StoredEvent) throws -> V3 {
    #expect(event.type == V3.protoMessageName)
    return try V3(serializedBytes: event.payload)
  }

  @Test("Registering: the contract must name the successor; one upcaster per type")
  func registration() throws {
    #expect(V1.supersededBy == V2.protoMessageName && V3.supersededBy == nil)
    #expect(throws: UpcastingError.self) {
      try EventUpcaster(from: Quad_Test_V1_DoorClosed.self, to: V3.self) { _ in V3() }
    }
    #expect(throws: UpcastingError.self) {
      try EventUpcaster(from: V1.self, to: V3.self) { _ in V3() }
    }
    let one = try EventUpcaster(from: V1.self, to: V2.self) { _ in V2() }
    #expect(throws: UpcastingError.self) { try EventUpcasters([one, one]) }
    let chain = try Self.upcasters()
    #expect(chain.newest(V1.protoMessageName) == V3.protoMessageName)
    #expect(chain.loggedTypes(for: [V3.protoMessageName]) == [V1.protoMessageName, V2.protoMessageName, V3.protoMessageName])
  }

  @Test("A stream's history, a committed read and the log itself: old events read as the newest type, the log keeps them as written")
  func storeReads() async throws {
    let pg = try await TestPostgres.start()
    let pool = PostgresPool(conninfo: pg.conninfo, maximumConnections: 4)
    let outcome: Result<Void, any Error>
    do {
      let store = EventStore(pool: pool, upcasters: try Self.upcasters())
      try await store.migrate()
      try await Self.writeHistory(store, corrupt: true)
      let history = try await store.readStream(StreamID(type: "door", id: "library-north"))
      #expect(history.map(\.version) == [1, 2, 3, 4])
      let opened = try history.prefix(3).map(Self.decodeV3)
      #expect(opened.map(\.card) == [7731, 7732, 7733])
      #expect(opened.allSatisfy { $0.building == "library" && $0.door == "north" })
      #expect(history[3].type == Quad_Test_V1_DoorClosed.protoMessageName)
      let (committed, _) = try await store.readCommitted(after: 0)
      #expect(committed.map(\.type) == [V3.protoMessageName, V3.protoMessageName, V3.protoMessageName, Quad_Test_V1_DoorClosed.protoMessageName, V1.protoMessageName], "the corrupt one as logged")
      #expect(committed.map(\.position) == history.map(\.position) + [committed[4].position])
      let logged = try await pool.withConnection { db in
        try await db.query("SELECT event_type FROM quad_events ORDER BY position", named: "test.logged").map { try $0.decode("event_type", as: String.self) }
      }
      #expect(logged == [V1.protoMessageName, V2.protoMessageName, V3.protoMessageName, Quad_Test_V1_DoorClosed.protoMessageName, V1.protoMessageName])
      let filtered = try await store.read(after: 0, through: committed[4].position, filter: EventFilter(eventTypes: [V3.protoMessageName]))
      #expect(filtered.events.map(\.type) == [V3.protoMessageName, V3.protoMessageName, V3.protoMessageName, V1.protoMessageName],
        "the filter for the newest type matches its superseded types (the corrupt one as logged)")
      outcome = .success(())
    } catch {
      outcome = .failure(error)
    }
    pool.shutdown()
    await pg.stop()
    try outcome.get()
  }

  @Test("Subscribers over gRPC get the newest type, caught up and live, with a filter naming either the old or the new type")
  func subscriptions() async throws {
    try await EventsServiceTests.withService(upcasters: try Self.upcasters()) { h in
      try await Self.writeHistory(h.store)
      for name in [V3.protoMessageName, V1.protoMessageName] {
        var request = EventsServiceTests.request(start: .first)
        request.eventTypes = [name]
        let got = try await h.client.subscribe(request) { stream in
          var got: [Quad_Events_V1_EventEnvelope] = []
          for try await e in stream {
            got.append(e)
            if got.count == 3 { break }
          }
          return got
        }
        #expect(got.map(\.eventType) == Array(repeating: V3.protoMessageName, count: 3), "filter \(name)")
        #expect(got.map(\.payload.typeUrl) == Array(repeating: "type.googleapis.com/" + V3.protoMessageName, count: 3))
        #expect(try got.map { try V3(serializedBytes: $0.payload.value).card } == [7731, 7732, 7733])
      }
      // The generated set lists every version; each event arrives once, as the newest.
      let typed = try await h.client.subscribe(QuadEvents_quad_test_v1_upcasting_proto.self, from: EventsServiceTests.request(start: .first)) { stream in
        var got: [QuadEvents_quad_test_v1_upcasting_proto] = []
        for try await e in stream {
          got.append(e.event)
          if got.count == 5 { break }
          if got.count == 4 {
            // Live: an old instance still writing the superseded type during a rolling upgrade.
            _ = try await h.store.transaction { tx in
              try await tx.append(Self.v1(card: "9", door: "gym/east"), to: StreamID(type: "door", id: "gym-east"), expectedVersion: 0)
            }
          }
        }
        return got
      }
      guard typed.count == 5, case .doorOpenedV3(let first) = typed[0], case .doorClosed = typed[3], case .doorOpenedV3(let live) = typed[4]
      else {
        Issue.record("got \(typed)")
        return
      }
      #expect(first.card == 7731 && live.card == 9 && live.building == "gym" && live.door == "east")
    }
  }
}
