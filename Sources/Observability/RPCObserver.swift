internal import CoreMetrics
internal import GRPCWire
package import Logging
package import QuadRPC
internal import Synchronization

/// Counts, times and logs every call the server handles: `quad_rpc_calls_total{method,code}`,
/// `quad_rpc_duration_seconds{method}` (a histogram), and one log line per call with its
/// method, status, duration, peer, correlation id and `traceparent`.
package struct RPCObserver: ServerInterceptor {
  let logger: Logger
  /// Each labelled path's histogram; any other path is counted as "other", so a client cannot
  /// make the metrics grow without bound by calling made-up methods.
  let timers: [String: Timer]
  /// Counters by method and status, made on first use (a registry lookup per call otherwise).
  let counters = Counters()

  final class Counters: Sendable {
    private let byKey = Mutex<[String: Counter]>([:])
    func counter(_ method: String, _ code: String) -> Counter {
      byKey.withLock { all in
        if let c = all[method + " " + code] { return c }
        let c = Counter(label: "quad_rpc_calls_total", dimensions: [("method", method), ("code", code)])
        all[method + " " + code] = c
        return c
      }
    }
  }

  package init(logger: Logger, methods: [String]) {
    self.logger = logger
    var timers: [String: Timer] = [:]
    for m in methods + ["other"] { timers[m] = Timer(label: "quad_rpc_duration_seconds", dimensions: [("method", m)]) }
    self.timers = timers
  }

  package func intercept<Response: Sendable>(_ context: ServerContext, next: (ServerContext) async throws -> Response) async throws -> Response {
    let start = ContinuousClock.now
    let method = timers[context.path] == nil ? "other" : context.path
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
    counters.counter(method, name).increment()
    timers[method]?.recordNanoseconds(nanoseconds)
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
