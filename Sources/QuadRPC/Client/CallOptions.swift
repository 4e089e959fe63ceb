package import GRPCWire
internal import Foundation

/// Per-call settings: deadline, metadata and request compression.
package struct CallOptions: Sendable {
  /// How long the call may take; sent as `grpc-timeout` and enforced here too.
  package var timeout: Duration?
  /// Custom metadata for the request headers.
  package var metadata: Metadata
  /// Compress request messages with gzip.
  package var compressRequests: Bool
  /// The call may be repeated without harm (a query, or a write with an `idempotency-key`,
  /// which counts as idempotent by itself). Only such calls are retried by a `retryPolicy`
  /// once the server may have seen them.
  package var idempotent: Bool

  package init(timeout: Duration? = nil, metadata: Metadata = [], compressRequests: Bool = false, idempotent: Bool = false) {
    self.timeout = timeout
    self.metadata = metadata
    self.compressRequests = compressRequests
    self.idempotent = idempotent
  }

  /// Whether the call may be sent again after the server may have seen it.
  var mayRepeat: Bool { idempotent || metadata.first("idempotency-key") != nil }

  /// Options that end the call at `deadline`: a handler passes its own `context.deadline` on to
  /// the calls it makes.
  package init(deadline: ContinuousClock.Instant?, metadata: Metadata = [], compressRequests: Bool = false) {
    self.init(timeout: deadline.map { max(.zero, $0 - .now) }, metadata: metadata, compressRequests: compressRequests)
  }
}

/// How a client spreads calls over the addresses a target resolves to.
package enum LoadBalancingPolicy: String, Sendable {
  /// The first address that connects takes every call (gRPC's default).
  case pickFirst = "pick_first"
  /// Calls rotate over every address with a ready connection.
  case roundRobin = "round_robin"
}

/// gRPC's retry policy (gRFC A6) for the methods it names.
package struct RetryPolicy: Sendable, Hashable {
  package var maxAttempts: Int
  package var initialBackoff: Duration
  package var maxBackoff: Duration
  package var backoffMultiplier: Double
  package var retryableStatusCodes: Set<GRPCStatus.Code>
}

/// gRPC's hedging policy (gRFC A6) for the methods it names: up to `maxAttempts` copies of a
/// call, one every `hedgingDelay` until one answers, the next at once after a non-fatal status.
/// Off unless a service config names it, and only for calls that may be repeated.
package struct HedgingPolicy: Sendable, Hashable {
  package var maxAttempts: Int
  package var hedgingDelay: Duration
  package var nonFatalStatusCodes: Set<GRPCStatus.Code>
}

/// The parts of a gRPC service config (JSON, as in gRPC's service_config.proto) this client
/// applies: per-method `timeout`, `retryPolicy` or `hedgingPolicy`, and `loadBalancingConfig`.
package struct ServiceConfig: Sendable {
  struct MethodConfig: Sendable {
    var timeout: Duration?
    var retryPolicy: RetryPolicy?
    var hedgingPolicy: HedgingPolicy?
  }
  /// Keyed by `service/method`, `service/` or `/` (the default).
  private var methods: [String: MethodConfig] = [:]
  package private(set) var loadBalancing: LoadBalancingPolicy?

  package init() {}

  /// Parses a service config.
  ///
  /// - Throws: ``ServiceConfigError`` naming what is malformed.
  package init(json: String) throws(ServiceConfigError) {
    guard let data = json.data(using: .utf8),
      let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
    else { throw ServiceConfigError(reason: "service config is not a JSON object") }
    if let lbs = root["loadBalancingConfig"] as? [[String: Any]] {
      for lb in lbs {
        if let name = lb.keys.first, let policy = LoadBalancingPolicy(rawValue: name) {
          loadBalancing = policy
          break
        }
      }
    } else if let name = root["loadBalancingPolicy"] as? String {
      guard let policy = LoadBalancingPolicy(rawValue: name.lowercased()) else {
        throw ServiceConfigError(reason: "unknown loadBalancingPolicy \(name)")
      }
      loadBalancing = policy
    }
    for mc in root["methodConfig"] as? [[String: Any]] ?? [] {
      var config = MethodConfig()
      if let t = mc["timeout"] {
        config.timeout = try Self.duration(t, "timeout")
      }
      if let rp = mc["retryPolicy"] as? [String: Any] {
        config.retryPolicy = try Self.retryPolicy(rp)
      }
      if let hp = mc["hedgingPolicy"] as? [String: Any] {
        guard config.retryPolicy == nil else { throw ServiceConfigError(reason: "a method config has both retryPolicy and hedgingPolicy") }
        config.hedgingPolicy = try Self.hedgingPolicy(hp)
      }
      for name in mc["name"] as? [[String: Any]] ?? [[:]] {
        let service = name["service"] as? String ?? ""
        let method = name["method"] as? String ?? ""
        if service.isEmpty && !method.isEmpty {
          throw ServiceConfigError(reason: "a method name without its service")
        }
        methods["\(service)/\(method)"] = config
      }
    }
  }

  func config(forPath path: String) -> MethodConfig? {
    let parts = path.dropFirst().split(separator: "/", maxSplits: 1).map(String.init)
    guard parts.count == 2 else { return methods["/"] }
    return methods["\(parts[0])/\(parts[1])"] ?? methods["\(parts[0])/"] ?? methods["/"]
  }

  private static func hedgingPolicy(_ hp: [String: Any]) throws(ServiceConfigError) -> HedgingPolicy {
    guard let max = hp["maxAttempts"] as? Int, max >= 2 else {
      throw ServiceConfigError(reason: "hedgingPolicy.maxAttempts must be an integer of at least 2")
    }
    let delay = try hp["hedgingDelay"].map { v throws(ServiceConfigError) in try duration(v, "hedgingPolicy.hedgingDelay") } ?? .zero
    let codes = try statusCodes(hp["nonFatalStatusCodes"] as? [Any] ?? [], "nonFatalStatusCodes")
    // gRFC A6: clients cap maxAttempts at 5.
    return HedgingPolicy(maxAttempts: min(max, 5), hedgingDelay: delay, nonFatalStatusCodes: codes)
  }

  private static func statusCodes(_ values: [Any], _ what: String) throws(ServiceConfigError) -> Set<GRPCStatus.Code> {
    var codes: Set<GRPCStatus.Code> = []
    for c in values {
      if let n = c as? Int, let code = GRPCStatus.Code(rawValue: n) {
        codes.insert(code)
      } else if let s = c as? String, let code = GRPCStatus.Code(name: s) {
        codes.insert(code)
      } else {
        throw ServiceConfigError(reason: "unknown status code \(c) in \(what)")
      }
    }
    return codes
  }

  private static func retryPolicy(_ rp: [String: Any]) throws(ServiceConfigError) -> RetryPolicy {
    guard let max = rp["maxAttempts"] as? Int, max >= 2 else {
      throw ServiceConfigError(reason: "retryPolicy.maxAttempts must be an integer of at least 2")
    }
    guard let ib = rp["initialBackoff"] else { throw ServiceConfigError(reason: "retryPolicy.initialBackoff is required") }
    guard let mb = rp["maxBackoff"] else { throw ServiceConfigError(reason: "retryPolicy.maxBackoff is required") }
    let initial = try duration(ib, "retryPolicy.initialBackoff")
    let maxBackoff = try duration(mb, "retryPolicy.maxBackoff")
    guard let multiplier = (rp["backoffMultiplier"] as? NSNumber)?.doubleValue, multiplier > 0 else {
      throw ServiceConfigError(reason: "retryPolicy.backoffMultiplier must be a number above 0")
    }
    let codes = try statusCodes(rp["retryableStatusCodes"] as? [Any] ?? [], "retryableStatusCodes")
    guard !codes.isEmpty else { throw ServiceConfigError(reason: "retryPolicy.retryableStatusCodes is empty") }
    guard initial > .zero, maxBackoff > .zero else { throw ServiceConfigError(reason: "retry backoffs must be above 0") }
    // gRFC A6: clients cap maxAttempts at 5.
    return RetryPolicy(maxAttempts: min(max, 5), initialBackoff: initial, maxBackoff: maxBackoff, backoffMultiplier: multiplier, retryableStatusCodes: codes)
  }

  /// A protobuf-JSON Duration ("1.5s").
  private static func duration(_ value: Any, _ what: String) throws(ServiceConfigError) -> Duration {
    guard let s = value as? String, s.hasSuffix("s"), let seconds = Double(s.dropLast()), seconds >= 0, seconds < 1e9 else {
      throw ServiceConfigError(reason: "\(what) must be a duration like \"1.5s\"")
    }
    return .milliseconds(Int64((seconds * 1000).rounded()))
  }
}

/// A service config the client cannot use, and why.
package struct ServiceConfigError: Error, Hashable, Sendable, CustomStringConvertible {
  package var reason: String
  package var description: String { "invalid service config: \(reason)" }
}
