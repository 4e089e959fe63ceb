internal import Crypto
package import EventStore
internal import GRPCWire
internal import Logging
internal import Postgres
package import QuadProtobuf
package import QuadRPC

/// What every write RPC does around its own logic: honours an `idempotency-key` (a retry gets
/// the first answer, nothing is written twice; the same key with another request is
/// FAILED_PRECONDITION), stamps each event with who and what caused it (correlation and
/// causation ids, W3C `traceparent`, the caller's identity, the key), commits the write in one
/// round trip, and answers the event store's refusals with the gRPC status a client acts on.
///
/// ```swift
/// func recordScan(_ request: RecordScanRequest, context: ServerContext) async throws -> RecordScanResponse {
///   try await writes.perform(request, context: context) {
///     var write = EventWrite()
///     … state statements and events …
///     return (write, response)
///   }
/// }
/// ```
package struct WriteRPC: Sendable {
  package let store: EventStore
  /// How long idempotency keys are kept.
  package let retention: Duration

  package init(store: EventStore, retention: Duration = EventStore.defaultIdempotencyRetention) {
    self.store = store
    self.retention = retention
  }

  /// The longest idempotency key accepted.
  static let maximumKeyBytes = 256

  /// Runs `decide` (which builds the write and its answer) unless the call's idempotency key has
  /// answered already, then commits the write with the answer under the key.
  ///
  /// - Throws: ``RPCError``: INVALID_ARGUMENT (bad key, oversized event), FAILED_PRECONDITION (key
  ///   reused for another request), ABORTED (a stream moved on: retry with its new version),
  ///   UNAVAILABLE / DEADLINE_EXCEEDED (database), whatever `decide` threw.
  package func perform<Request: Message, Response: Message>(
    _ request: Request, context: ServerContext, _ decide: () async throws -> (EventWrite, Response)
  ) async throws -> Response {
    try await perform(key: try idempotencyKey(request, context), context: context, decide).response
  }

  /// ``perform(_:context:_:)`` under a key the caller derived itself (an imported record's),
  /// saying whether the answer is a replay of the key's first.
  package func perform<Response: Message>(
    key: IdempotencyKey?, context: ServerContext, _ decide: () async throws -> (EventWrite, Response)
  ) async throws -> (response: Response, replayed: Bool) {
    if let key {
      switch try await mapped({ try await store.answered(key, retention: retention) }) {
      case .answered(let bytes): return (try Response(serializedBytes: bytes), true)
      case .mismatch: throw Self.mismatch(key.key)
      case .new: break
      }
    }
    var (write, response) = try await decide()
    let metadata = Self.metadata(context, key: key?.key).serializedBytes()
    write.events = write.events.map { a in
      EventWrite.Append(
        NewEvent(type: a.event.type, payload: a.event.payload, metadata: a.event.metadata.isEmpty ? metadata : a.event.metadata),
        to: a.stream, expectedVersion: a.expectedVersion)
    }
    if let key { write.idempotency = (key, response.serializedBytes()) }
    switch try await mapped({ try await store.write(write, idempotencyRetention: retention) }) {
    case .committed(let positions):
      Self.log(write, positions: positions, context: context)
      return (response, false)
    case .replayed(let bytes): return (try Response(serializedBytes: bytes), true)
    }
  }

  /// The call's idempotency key, scoped to its caller and method; `nil` when it sent none.
  func idempotencyKey(_ request: some Message, _ context: ServerContext) throws -> IdempotencyKey? {
    guard let key = context.metadata.first("idempotency-key") else { return nil }
    guard !key.isEmpty, key.utf8.count <= Self.maximumKeyBytes, !key.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
      throw RPCError(code: .invalidArgument, message: "idempotency-key must be 1 to \(Self.maximumKeyBytes) printable bytes")
    }
    let hash = Array(SHA256.hash(data: request.serializedBytes()))
    return IdempotencyKey(caller: Self.caller(context), method: context.path, key: key, requestHash: hash)
  }

  /// Who called: the client certificate's identity when there is one.
  package static func caller(_ context: ServerContext) -> String {
    guard let peer = context.peerIdentity else { return "anonymous" }
    return peer.uris.first ?? peer.commonName ?? peer.subject
  }

  static func metadata(_ context: ServerContext, key: String?) -> Quad_Events_V1_EventMetadata {
    var m = Quad_Events_V1_EventMetadata()
    m.correlationId = context.metadata.first("x-correlation-id") ?? context.metadata.first("x-request-id") ?? ""
    m.causationId = context.metadata.first("x-causation-id") ?? ""
    m.traceparent = context.metadata.first("traceparent") ?? ""
    m.identity = caller(context)
    m.idempotencyKey = key ?? ""
    return m
  }

  static let logger = Logger(label: "quad.events")

  /// One log line per committed event, with what caused it.
  static func log(_ write: EventWrite, positions: [Int64], context: ServerContext) {
    guard logger.logLevel <= .info else { return }
    let correlation = context.metadata.first("x-correlation-id") ?? context.metadata.first("x-request-id")
    let trace = context.metadata.first("traceparent")
    for (a, position) in zip(write.events, positions) {
      var metadata: Logger.Metadata = [
        "event_type": "\(a.event.type)", "stream": "\(a.stream)", "position": "\(position)", "method": "\(context.path)",
      ]
      if let correlation { metadata["correlation_id"] = "\(correlation)" }
      if let trace { metadata["traceparent"] = "\(trace)" }
      logger.info("event committed", metadata: metadata)
    }
  }

  static func mismatch(_ key: String) -> RPCError {
    RPCError(code: .failedPrecondition, message: "idempotency-key \(key.prefix(64)) was already used for a different request")
  }

  private func mapped<R>(_ body: () async throws -> R) async throws -> R {
    do {
      return try await body()
    } catch let e as EventStoreError {
      switch e.kind {
      case .versionConflict: throw RPCError(code: .aborted, message: e.description)
      case .tooLarge: throw RPCError(code: .invalidArgument, message: e.description)
      case .idempotencyMismatch(let key): throw Self.mismatch(key)
      }
    } catch {
      throw EventsService.status(for: error)
    }
  }
}
