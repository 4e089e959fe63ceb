package import CampusContracts
internal import CampusSupport
package import EventStore
internal import EventsService
internal import GRPCWire
internal import Postgres
internal import QuadProtobuf
package import QuadRPC

/// `campus.cards.v1.CardOffice`: starts card issues (each a saga the ``SagaRunner`` drives) and
/// answers how far they are. A saga's state is its stream (`card-issue/<saga_id>`); the
/// `cards.sagas` row is that stream folded, written in the same transaction as each event.
package struct CardOfficeService: Campus_Cards_V1_CardOffice.ServiceProtocol {
  package let store: EventStore
  let writes: WriteRPC
  let runner: SagaRunner

  /// The contract reflection serves for this context.
  package static let protoFiles = [QuadFile_campus_cards_v1_cards_proto.serializedDescriptor]

  /// The largest card fee, in cents.
  static let maximumFee: Int64 = 100_000

  package init(store: EventStore, runner: SagaRunner) {
    self.store = store
    writes = WriteRPC(store: store)
    self.runner = runner
  }

  /// Creates or updates the context's tables (under the migration lock).
  package func migrate() async throws {
    try await store.pool.withConnection { db in _ = try await Migrator.migrate(CardOfficeSchema.migrations, on: db) }
  }

  package func issueCard(_ request: Campus_Cards_V1_IssueCardRequest, context: ServerContext) async throws -> Saga {
    var violations = CampusSupport.violations([("saga_id", CampusSupport.token(request.sagaId, 1...128)), ("student_id", CampusSupport.code(request.studentId, 1...32))])
    if !(0...Self.maximumFee).contains(request.feeCents) { violations.append(RPCError.FieldViolation("fee_cents", "must be 0 to \(Self.maximumFee)")) }
    try CampusSupport.check(violations)
    let saga = try await writes.perform(request, context: context) {
      if let (existing, _) = try await CampusSupport.mapped({ try await Self.load(request.sagaId, store: store) }) {
        guard existing.studentId == request.studentId, existing.feeCents == request.feeCents else {
          throw RPCError(code: .alreadyExists, message: "card issue \(request.sagaId) was started for another student or fee")
        }
        return (EventWrite(), existing)
      }
      var e = Campus_Cards_V1_CardIssueStarted()
      e.sagaId = request.sagaId
      e.studentId = request.studentId
      e.feeCents = request.feeCents
      var saga = Saga(started: e)
      saga.version = 1
      let traceparent = context.metadata.first("traceparent") ?? ""
      var write = EventWrite()
      write.statements = [(
        "INSERT INTO cards.sagas (saga_id, version, state, traceparent, record) VALUES (\(saga.sagaId), 1, \(saga.state.rawValue), \(traceparent), \(saga.serializedBytes()))",
        "cards.saga.insert")]
      write.events = [EventWrite.Append(NewEvent(e), to: Self.stream(request.sagaId), expectedVersion: 0)]
      return (write, saga)
    }
    runner.poke()
    return saga
  }

  package func getSaga(_ request: Campus_Cards_V1_GetSagaRequest, context: ServerContext) async throws -> Saga {
    try CampusSupport.check(CampusSupport.violations([("saga_id", CampusSupport.token(request.sagaId, 1...128))]))
    guard let (saga, _) = try await CampusSupport.mapped({ try await Self.load(request.sagaId, store: store) }) else {
      throw RPCError(code: .notFound, message: "no card issue \(request.sagaId)")
    }
    return saga
  }

  // MARK: Storage

  static func stream(_ id: String) -> StreamID { StreamID(type: "card-issue", id: id) }

  /// A saga as its row has it, with the `traceparent` of the call that started it.
  static func load(_ id: String, store: EventStore) async throws -> (Saga, String)? {
    try await store.pool.withConnection { db in
      try await db.query("SELECT record, traceparent FROM cards.sagas WHERE saga_id = \(id)", named: "cards.saga.get").first.map {
        (try Saga(serializedBytes: $0.decode("record", as: [UInt8].self)), try $0.decode("traceparent", as: String.self))
      }
    }
  }

  static func newEvent(_ e: CardOfficeEvent, metadata: [UInt8]) -> NewEvent {
    switch e {
    case .cardIssueStarted(let m): NewEvent(m, metadata: metadata)
    case .cardIssueStepDone(let m): NewEvent(m, metadata: metadata)
    case .cardIssueStepFailed(let m): NewEvent(m, metadata: metadata)
    case .cardIssueStepCompensated(let m): NewEvent(m, metadata: metadata)
    case .cardIssueCompleted(let m): NewEvent(m, metadata: metadata)
    case .cardIssueCompensated(let m): NewEvent(m, metadata: metadata)
    case .cardNumberReserved(let m): NewEvent(m, metadata: metadata)
    case .cardNumberReleased(let m): NewEvent(m, metadata: metadata)
    }
  }

  /// The metadata of the events the runner writes: the saga's trace, and who wrote them.
  static func eventMetadata(traceparent: String) -> [UInt8] {
    var m = Quad_Events_V1_EventMetadata()
    m.traceparent = traceparent
    m.identity = "card-office"
    m.causationId = "card-office"
    return m.serializedBytes()
  }
}
