package import CoreMetrics
internal import GRPCWire
package import Logging
package import QuadRPC

/// Counts, times and logs every call the server handles: `quad_rpc_calls_total{method,code}`,
/// `quad_rpc_duration_seconds{method}` (a histogram), and one log line per call with its
/// method, status, duration, peer, correlation id and `traceparent`.
package struct RPCObserver: ServerInterceptor {
  let logger: Logger
  /// Paths that get their own label; any other is counted as "other", so a client cannot make
  /// the metrics grow without bound by calling made-up methods.
  let methods: Set<String>

  package init(logger: Logger, methods: [String]) {
    self.logger = logger
    self.methods = Set(methods)
  }

  package func intercept<Response: Sendable>(_ context: ServerContext, next: (ServerContext) async throws -> Response) async throws -> Response {
    let start = ContinuousClock.now
    let method = methods.contains(context.path) ? context.path : "other"
    do {
      let response = try await next(context)
      record(context, method: method, code: .ok, message: nil, since: start)
      return response
    } catch let e as RPCError {
      record(context, method: method, code: e.code, message: e.message, since: start)
      throw e
    } catch is CancellationError {
      record(context, method: method, code: .cancelled, message: nil, since: start)
      throw CancellationError()
    } catch {
      record(context, method: method, code: .unknown, message: "\(error)", since: start)
      throw error
    }
  }

  func record(_ context: ServerContext, method: String, code: GRPCStatus.Code, message: String?, since start: ContinuousClock.Instant) {
    let elapsed = ContinuousClock.now - start
    let nanoseconds = elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
    let name = Self.codeName(code)
    Counter(label: "quad_rpc_calls_total", dimensions: [("method", method), ("code", name)]).increment()
    Timer(label: "quad_rpc_duration_seconds", dimensions: [("method", method)]).recordNanoseconds(nanoseconds)
    var metadata: Logger.Metadata = [
      "method": "\(context.path)", "code": "\(name)", "duration_ms": "\(Double(nanoseconds / 1000) / 1000)", "peer": "\(context.peer)",
    ]
    if let id = context.metadata.first("x-correlation-id") ?? context.metadata.first("x-request-id") { metadata["correlation_id"] = "\(id)" }
    if let trace = context.metadata.first("traceparent") { metadata["traceparent"] = "\(trace)" }
    if let message { metadata["message"] = "\(message.prefix(200))" }
    let level: Logger.Level = switch code {
    case .internal, .unknown, .dataLoss, .unavailable: .error
    default: .info
    }
    logger.log(level: level, "rpc", metadata: metadata)
  }

  /// The status's name as gRPC spells it (`NOT_FOUND`).
  static func codeName(_ code: GRPCStatus.Code) -> String {
    ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED",
     "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
     "UNAUTHENTICATED"][code.rawValue]
  }
}
