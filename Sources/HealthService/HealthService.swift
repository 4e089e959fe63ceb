package import QuadRPC
internal import GRPCWire
internal import Synchronization

/// `grpc.health.v1.Health`: the serving status the application sets per service, with the
/// server's overall status under `""` (SERVING from the start). `Check` answers NOT_FOUND for a
/// service never set; `Watch` sends the current status at once (SERVICE_UNKNOWN for an unknown
/// service, keeping the stream open) and then every change.
package final class HealthService: Grpc_Health_V1_Health.ServiceProtocol {
  package typealias Status = Grpc_Health_V1_HealthCheckResponse.ServingStatus

  private struct State {
    var statuses: [String: Status] = ["": .serving]
    var watchers: [String: [Int: AsyncStream<Status>.Continuation]] = [:]
    var nextWatcher = 0
  }

  private let state = Mutex(State())

  /// At most this many services in a `List` answer (gRPC's documented bound).
  static let listLimit = 100

  /// The descriptor of `health.proto`, for server reflection.
  package static let protoFiles = [QuadFile_grpc_health_v1_health_proto.serializedDescriptor]

  package init() {}

  /// Sets a service's status (`""` for the whole server) and tells its watchers.
  package func setStatus(_ status: Status, for service: String = "") {
    let watchers = state.withLock { s -> [AsyncStream<Status>.Continuation] in
      guard s.statuses[service] != status else { return [] }
      s.statuses[service] = status
      return Array((s.watchers[service] ?? [:]).values)
    }
    for w in watchers { w.yield(status) }
  }

  /// How many `Watch` calls follow `service` now (for metrics and tests).
  package func watcherCount(for service: String) -> Int {
    state.withLock { $0.watchers[service]?.count ?? 0 }
  }

  /// The status of a service, `nil` when never set.
  package func status(of service: String) -> Status? {
    state.withLock { $0.statuses[service] }
  }

  package func check(_ request: Grpc_Health_V1_HealthCheckRequest, context: ServerContext) async throws -> Grpc_Health_V1_HealthCheckResponse {
    guard let status = status(of: request.service) else {
      throw RPCError(code: .notFound, message: "unknown service \(request.service)")
    }
    var response = Grpc_Health_V1_HealthCheckResponse()
    response.status = status
    return response
  }

  package func list(_ request: Grpc_Health_V1_HealthListRequest, context: ServerContext) async throws -> Grpc_Health_V1_HealthListResponse {
    let statuses = state.withLock { $0.statuses }
    guard statuses.count <= Self.listLimit else {
      throw RPCError(code: .resourceExhausted, message: "more than \(Self.listLimit) services")
    }
    var response = Grpc_Health_V1_HealthListResponse()
    for (service, status) in statuses {
      var r = Grpc_Health_V1_HealthCheckResponse()
      r.status = status
      response.statuses[service] = r
    }
    return response
  }

  package func watch(
    _ request: Grpc_Health_V1_HealthCheckRequest,
    writer: ResponseStreamWriter<Grpc_Health_V1_HealthCheckResponse>,
    context: ServerContext
  ) async throws {
    // Only the newest status matters to a watcher: the buffer holds one.
    let (changes, continuation) = AsyncStream<Status>.makeStream(bufferingPolicy: .bufferingNewest(1))
    let service = request.service
    let (id, current) = state.withLock { s -> (Int, Status?) in
      let id = s.nextWatcher
      s.nextWatcher += 1
      s.watchers[service, default: [:]][id] = continuation
      return (id, s.statuses[service])
    }
    defer {
      state.withLock { s in
        s.watchers[service]?[id] = nil
        if s.watchers[service]?.isEmpty == true { s.watchers[service] = nil }
      }
    }
    var last = current ?? .serviceUnknown
    var response = Grpc_Health_V1_HealthCheckResponse()
    response.status = last
    try await writer.write(response)
    try await withTaskCancellationHandler {
      for await status in changes where status != last {
        last = status
        response.status = status
        try await writer.write(response)
      }
    } onCancel: {
      continuation.finish()
    }
  }
}
