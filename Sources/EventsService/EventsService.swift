internal import Authorization
package import EventRelay
internal import EventStore
package import QuadRPC
internal import GRPCWire
internal import Postgres
internal import QuadProtobuf
internal import Synchronization

/// `quad.events.v1.Events`: the log's committed events over gRPC. `Subscribe` catches up from
/// the table and then follows the relay live, with no gap or duplicate at the switch; with a
/// group it holds the group's lease and starts after the group's checkpoint.
package final class EventsService: Quad_Events_V1_Events.ServiceProtocol {
  /// How consumer groups' leases behave.
  package struct Settings: Sendable {
    /// A lease not renewed for this long is free for another reader.
    package var leaseTTL: Duration = .seconds(5)
    /// How often a holder renews, and a waiting reader tries to take over.
    package var leaseRenewal: Duration = .seconds(1)

    package init() {}
  }

  package let relay: EventRelay
  package let settings: Settings
  private var store: EventStore { relay.store }
  /// Tells this instance's lease holders apart from another's.
  private let instance = String(UInt64.random(in: 0...UInt64.max), radix: 16)
  private let nextSubscription = Atomic<Int>(0)
  /// The log's identity, read once.
  private let identityCache = Mutex<String?>(nil)
  /// Envelopes encoded once for all subscribers.
  private let envelopes = EnvelopeCache()

  /// The descriptors of `events.proto` and its options, for reflection.
  package static let protoFiles = [
    QuadFile_quad_v1_options_proto.serializedDescriptor, QuadFile_quad_events_v1_events_proto.serializedDescriptor,
  ]

  /// Runs around each event's delivery to a subscriber (tracing), when set.
  private let instrumentation: (any EventInstrumentation)?

  package init(relay: EventRelay, settings: Settings = Settings(), instrumentation: (any EventInstrumentation)? = nil) {
    self.relay = relay
    self.settings = settings
    self.instrumentation = instrumentation
  }

  /// Forgets what the service and its relay hold in memory of events whose payloads were
  /// rewritten in the table (the retention job's): subscribers read them from the table again.
  package func forget(rewritten positions: [Int64]) {
    guard !positions.isEmpty else { return }
    relay.forgetTail()
    envelopes.forget(positions)
  }

  // MARK: Subscribe

  package func subscribe(
    _ request: Quad_Events_V1_SubscribeRequest,
    writer: ResponseStreamWriter<Quad_Events_V1_EventEnvelope>,
    context: ServerContext
  ) async throws {
    let filter = try Self.filter(request)
    try Validate.name(request.group, "group", optional: true)
    let log = try await identity()
    let start = try await startPosition(request, log: log)
    if request.group.isEmpty {
      try await stream(after: start, filter: filter, log: log, writer: writer, group: nil)
      return
    }
    let holder = "\(instance)/\(nextSubscription.add(1, ordering: .relaxed).newValue)"
    let lease = try await waitForLease(group: request.group, holder: holder, initialCheckpoint: start)
    do {
      try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await self.stream(after: lease.checkpoint, filter: filter, log: log, writer: writer, group: request.group) }
        group.addTask { try await self.holdLease(lease) }
        try await group.next()
        group.cancelAll()
      }
    } catch {
      await release(lease)
      throw Self.status(for: error)
    }
    await release(lease)
  }

  /// Gives the lease back so a waiting reader takes over at once, even when the call is being
  /// cancelled (the release runs in a task of its own, awaited here; a failure leaves the lease
  /// to expire).
  private func release(_ lease: ConsumerGroupLease) async {
    let store = store
    await Task { try? await store.releaseLease(group: lease.group, holder: lease.holder) }.value
  }

  /// Writes every matching event after `position`: from the tail or the table while behind,
  /// then live; until the client goes away or the call is cancelled.
  private func stream(
    after position: Int64, filter: EventFilter, log: String,
    writer: ResponseStreamWriter<Quad_Events_V1_EventEnvelope>, group: String?
  ) async throws {
    var seen = position
    // Under a policy, only the event types the caller's grants name reach it.
    let access = Access.current
    while !Task.isCancelled {
      let (events, through) = try await mapErrors { try await relay.next(after: seen, filter: filter) }
      if events.isEmpty && through == seen {
        // Caught up: follow live, fed by the relay on the connection's event loop (unless each
        // delivery is traced, which takes a task); back here once the stream is full or the
        // relay has moved on without it.
        if instrumentation == nil, relay.through == seen,
          let reached = await LiveStream(after: seen, filter: filter, access: access, log: log, writer: writer.raw, envelopes: envelopes, relay: relay).follow()
        {
          seen = reached
        } else {
          await relay.waitForEvents(after: seen)
        }
        continue
      }
      for e in events where access?.permitsEvent(e.type) ?? true {
        if let instrumentation {
          try await instrumentation.around([e], .deliver(subscription: group ?? "")) { try await writer.raw.write(envelopes.encoded(e, log: log)) }
        } else {
          try await writer.raw.write(envelopes.encoded(e, log: log))
        }
      }
      seen = through
    }
    throw RPCError(code: .cancelled, message: "the subscription was cancelled")
  }

  /// Waits until this reader holds the group (another reader may hold it now).
  private func waitForLease(group: String, holder: String, initialCheckpoint: Int64) async throws -> ConsumerGroupLease {
    try await mapErrors {
      try await store.waitForLease(
        group: group, holder: holder, ttl: settings.leaseTTL, retry: min(settings.leaseRenewal, .milliseconds(500)),
        initialCheckpoint: initialCheckpoint)
    }
  }

  /// Renews the lease until cancelled; throws ABORTED when another reader took it over.
  private func holdLease(_ lease: ConsumerGroupLease) async throws {
    do {
      try await store.holdLease(lease, ttl: settings.leaseTTL, renewal: settings.leaseRenewal)
    } catch let lost as LeaseLost {
      throw RPCError(code: .aborted, message: lost.description)
    } catch {
      throw Self.status(for: error)
    }
  }

  private func startPosition(_ request: Quad_Events_V1_SubscribeRequest, log: String) async throws -> Int64 {
    switch request.from {
    case nil, .start(.first):
      return 0
    case .start(.end):
      return relay.through
    case .start(.UNRECOGNIZED(let n)):
      throw RPCError(code: .invalidArgument, message: "start: unknown value \(n)")
    case .after(let cursor):
      return try await position(of: cursor, log: log)
    }
  }

  /// Checks that `cursor` is one of this log's, not beyond its head.
  private func position(of cursor: Quad_Events_V1_Cursor, log: String) async throws -> Int64 {
    guard cursor.log == log else {
      throw RPCError(code: .failedPrecondition, message: "the cursor is of log \"\(cursor.log.prefix(64))\", not of this log (\(log)): it may come from another database or from before a restore")
    }
    guard cursor.position >= 0 else {
      throw RPCError(code: .invalidArgument, message: "cursor position \(cursor.position) is negative")
    }
    let head = try await mapErrors { try await store.head() }
    guard cursor.position <= head else {
      throw RPCError(code: .outOfRange, message: "cursor position \(cursor.position) is beyond the log's head (\(head))")
    }
    return cursor.position
  }

  // MARK: Other RPCs

  package func commitCheckpoint(_ request: Quad_Events_V1_CommitCheckpointRequest, context: ServerContext) async throws -> Quad_Events_V1_CommitCheckpointResponse {
    try Validate.name(request.group, "group", optional: false)
    guard request.hasCursor else { throw RPCError(code: .invalidArgument, message: "cursor is required") }
    let log = try await identity()
    let position = try await position(of: request.cursor, log: log)
    let stored = try await mapErrors { try await store.commitCheckpoint(group: request.group, position: position) }
    var response = Quad_Events_V1_CommitCheckpointResponse()
    response.checkpoint = Self.cursor(stored, log: log)
    return response
  }

  package func readStream(_ request: Quad_Events_V1_ReadStreamRequest, context: ServerContext) async throws -> Quad_Events_V1_ReadStreamResponse {
    try Validate.name(request.streamType, "stream_type", optional: false)
    try Validate.name(request.streamId, "stream_id", optional: false)
    guard request.fromVersion >= 0 else { throw RPCError(code: .invalidArgument, message: "from_version \(request.fromVersion) is negative") }
    guard request.limit >= 0 else { throw RPCError(code: .invalidArgument, message: "limit \(request.limit) is negative") }
    let limit = request.limit == 0 ? 100 : min(Int(request.limit), 1000)
    var asOf: Int64?
    if request.hasAsOf {
      // RFC 3339's range, as the Timestamp type defines it.
      guard let microseconds = request.asOf.microseconds else {
        throw RPCError(code: .invalidArgument, message: "as_of is not a valid timestamp")
      }
      asOf = microseconds
    }
    let log = try await identity()
    let stream = StreamID(type: request.streamType, id: request.streamId)
    let events = try await mapErrors {
      try await store.readStream(stream, fromVersion: max(request.fromVersion, 1), limit: limit + 1, recordedUpToMicroseconds: asOf)
    }
    var response = Quad_Events_V1_ReadStreamResponse()
    response.events = events.prefix(limit).map { Self.envelope($0, log: log) }
    response.nextVersion = events.count > limit ? events[limit].version : 0
    return response
  }

  package func getHead(_ request: Quad_Events_V1_GetHeadRequest, context: ServerContext) async throws -> Quad_Events_V1_GetHeadResponse {
    let log = try await identity()
    let fence = try await mapErrors { try await store.fence(deadline: context.deadline) }
    var response = Quad_Events_V1_GetHeadResponse()
    response.head = Self.cursor(fence, log: log)
    return response
  }

  package func listParked(_ request: Quad_Events_V1_ListParkedRequest, context: ServerContext) async throws -> Quad_Events_V1_ListParkedResponse {
    try Validate.name(request.consumer, "consumer", optional: true)
    guard request.limit >= 0 else { throw RPCError(code: .invalidArgument, message: "limit \(request.limit) is negative") }
    guard request.afterPosition >= 0 else { throw RPCError(code: .invalidArgument, message: "after_position \(request.afterPosition) is negative") }
    let limit = request.limit == 0 ? 100 : min(Int(request.limit), 1000)
    let log = try await identity()
    let parked = try await mapErrors {
      try await store.parked(consumer: request.consumer.isEmpty ? nil : request.consumer, after: request.afterPosition, limit: limit)
    }
    var response = Quad_Events_V1_ListParkedResponse()
    response.events = parked.map { p in
      var e = Quad_Events_V1_ParkedEvent()
      e.consumer = p.consumer
      e.event = Self.envelope(p.event, log: log)
      e.attempts = p.attempts
      e.error = p.error
      e.parkedAt = Google_Protobuf_Timestamp(microseconds: p.parkedAtMicroseconds)
      e.retryRequested = p.retryRequested
      return e
    }
    return response
  }

  package func retryParked(_ request: Quad_Events_V1_ParkedEventsRequest, context: ServerContext) async throws -> Quad_Events_V1_ParkedEventsResponse {
    try Self.validate(request)
    var response = Quad_Events_V1_ParkedEventsResponse()
    response.affected = Int32(try await mapErrors { try await store.requestRetry(consumer: request.consumer, positions: request.positions) })
    return response
  }

  package func discardParked(_ request: Quad_Events_V1_ParkedEventsRequest, context: ServerContext) async throws -> Quad_Events_V1_ParkedEventsResponse {
    try Self.validate(request)
    var response = Quad_Events_V1_ParkedEventsResponse()
    response.affected = Int32(try await mapErrors { try await store.discardParked(consumer: request.consumer, positions: request.positions) })
    return response
  }

  static func validate(_ request: Quad_Events_V1_ParkedEventsRequest) throws {
    try Validate.name(request.consumer, "consumer", optional: false)
    guard (1...1000).contains(request.positions.count) else {
      throw RPCError(code: .invalidArgument, message: "positions: \(request.positions.count) given, 1 to 1000 allowed")
    }
  }

  // MARK: Helpers

  private func identity() async throws -> String {
    if let known = identityCache.withLock({ $0 }) { return known }
    let id = try await mapErrors { try await store.identity() }
    identityCache.withLock { $0 = id }
    return id
  }

  static func filter(_ request: Quad_Events_V1_SubscribeRequest) throws -> EventFilter {
    for (list, field) in [(request.eventTypes, "event_types"), (request.streamTypes, "stream_types")] {
      guard list.count <= Validate.maximumFilterEntries else {
        throw RPCError(code: .invalidArgument, message: "\(field): \(list.count) entries, more than \(Validate.maximumFilterEntries)")
      }
      for (i, name) in list.enumerated() { try Validate.name(name, "\(field)[\(i)]", optional: false) }
    }
    return EventFilter(eventTypes: Set(request.eventTypes), streamTypes: Set(request.streamTypes))
  }

  static func cursor(_ position: Int64, log: String) -> Quad_Events_V1_Cursor {
    var c = Quad_Events_V1_Cursor()
    c.log = log
    c.position = position
    return c
  }

  static func envelope(_ e: StoredEvent, log: String) -> Quad_Events_V1_EventEnvelope {
    var envelope = Quad_Events_V1_EventEnvelope()
    envelope.cursor = cursor(e.position, log: log)
    envelope.streamType = e.stream.type
    envelope.streamId = e.stream.id
    envelope.streamVersion = e.version
    envelope.eventType = e.type
    var any = Google_Protobuf_Any()
    any.typeUrl = "type.googleapis.com/" + e.type
    any.value = e.payload
    envelope.payload = any
    if !e.metadata.isEmpty, let metadata = try? Quad_Events_V1_EventMetadata(serializedBytes: e.metadata) {
      envelope.metadata = metadata
    }
    envelope.recordedAt = Google_Protobuf_Timestamp(microseconds: e.recordedAtMicroseconds)
    return envelope
  }

  /// Runs `body`, answering database failures with the gRPC status a caller can act on.
  private func mapErrors<R>(_ body: () async throws -> R) async throws -> R {
    do { return try await body() } catch { throw Self.status(for: error) }
  }

  package static func status(for error: any Error) -> any Error {
    switch error {
    case let e as PostgresError:
      switch e.code {
      case .deadlineExceeded: return RPCError(code: .deadlineExceeded, message: "the database did not answer in time")
      case .cancelled: return RPCError(code: .cancelled, message: "cancelled")
      case .connection, .connectionLost: return RPCError(code: .unavailable, message: "the event log's database is unavailable")
      case _ where e.isUniqueViolation:
        return RPCError(code: .alreadyExists, message: "a concurrent write already made it (\(e.queryName ?? "query")); read it again")
      default: return RPCError(code: .internal, message: "the event log failed (\(e.queryName ?? "query"))")
      }
    case is CancellationError:
      return RPCError(code: .cancelled, message: "cancelled")
    default:
      return error
    }
  }
}

/// Checks on the names clients send (types, ids, groups): stored and compared verbatim, so only
/// their size and control characters are limited.
enum Validate {
  static let maximumNameBytes = 256
  static let maximumFilterEntries = 100

  static func name(_ value: String, _ field: String, optional: Bool) throws {
    if value.isEmpty {
      if optional { return }
      throw RPCError(code: .invalidArgument, message: "\(field) is required")
    }
    guard value.utf8.count <= maximumNameBytes else {
      throw RPCError(code: .invalidArgument, message: "\(field) is \(value.utf8.count) bytes, more than \(maximumNameBytes)")
    }
    guard !value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
      throw RPCError(code: .invalidArgument, message: "\(field) contains a control character")
    }
  }
}
