internal import Authentication
package import Logging
package import QuadRPC
internal import GRPCWire
internal import Synchronization

/// Limits how fast each identity may call, around every call, after the ``Authenticator``: a
/// token bucket per principal (per client address for anonymous callers). A call over the
/// limit ends with RESOURCE_EXHAUSTED, a `retry-after` trailer (seconds, rounded up) and a
/// `google.rpc.RetryInfo` with the exact delay. Health checks are not limited.
package struct RateLimiter: ServerInterceptor {
  /// Calls per second, and how many may come at once after a quiet spell.
  package struct Settings: Sendable, Hashable {
    package var rate: Double
    package var burst: Double
    /// Identities remembered at most; beyond, idle (full) buckets are forgotten first, and a
    /// new identity is limited as one shared "overflow" identity until room is made.
    package var maximumIdentities = 100_000

    package init(rate: Double, burst: Double) {
      self.rate = rate
      self.burst = max(burst, 1)
    }
  }

  let settings: Settings
  let logger: Logger
  let buckets: Buckets

  package init(settings: Settings, logger: Logger) {
    self.settings = settings
    self.logger = logger
    buckets = Buckets()
  }

  package func intercept<Response: Sendable>(_ context: ServerContext, next: (ServerContext) async throws -> Response) async throws -> Response {
    guard !context.path.hasPrefix("/grpc.health.v1.Health/") else { return try await next(context) }
    let identity = Principal.current?.description ?? "peer:" + Self.host(context.peer)
    if let wait = buckets.take(identity, settings, now: ContinuousClock.now) {
      let seconds = Int((wait / .seconds(1)).rounded(.up))
      context.addTrailingMetadata([("retry-after", .text(String(max(seconds, 1))))])
      logger.notice("rate limited", metadata: ["identity": "\(identity)", "method": "\(context.path)"])
      throw RPCError.resourceExhausted("rate limit: \(settings.rate) calls/s for \(identity); retry later", retryAfter: wait)
    }
    return try await next(context)
  }

  /// `ip` of `ip:port` (IPv6 addresses keep their colons).
  static func host(_ peer: String) -> String {
    guard let colon = peer.lastIndex(of: ":") else { return peer }
    return String(peer[..<colon])
  }

  /// The buckets, one per identity.
  package final class Buckets: Sendable {
    struct Bucket {
      var tokens: Double
      var at: ContinuousClock.Instant
    }
    private let state = Mutex<[String: Bucket]>([:])

    /// Takes one token for `identity`: nil when the call may go, else how long until it could.
    package func take(_ identity: String, _ settings: Settings, now: ContinuousClock.Instant) -> Duration? {
      state.withLock { all in
        var key = identity
        if all[key] == nil && all.count >= settings.maximumIdentities {
          Self.forgetIdle(&all, settings, now: now)
          if all.count >= settings.maximumIdentities { key = "overflow" }
        }
        var bucket = all[key] ?? Bucket(tokens: settings.burst, at: now)
        let elapsed = now - bucket.at
        let refill = elapsed / .seconds(1) * settings.rate
        bucket.tokens = min(settings.burst, bucket.tokens + refill)
        bucket.at = now
        defer { all[key] = bucket }
        if bucket.tokens >= 1 {
          bucket.tokens -= 1
          return nil
        }
        return .seconds((1 - bucket.tokens) / settings.rate)
      }
    }

    /// Drops buckets that would be full by now: forgetting them changes nothing.
    static func forgetIdle(_ all: inout [String: Bucket], _ settings: Settings, now: ContinuousClock.Instant) {
      let fullAfter = Duration.seconds(settings.burst / settings.rate)
      all = all.filter { now - $0.value.at < fullAfter }
    }

    package var count: Int { state.withLock { $0.count } }

    package init() {}
  }
}
