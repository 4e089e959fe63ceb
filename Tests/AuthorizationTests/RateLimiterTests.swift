internal import Authentication
internal import GRPCWire
internal import Logging
internal import QuadProtobuf
internal import QuadRPC
internal import RateLimiting
internal import Testing
internal import TestSupport

/// Per-identity rate limits: a burst passes, the next call gets RESOURCE_EXHAUSTED with when to
/// retry, other identities are unaffected, and the buckets stay bounded.
@Suite("Rate limits")
struct RateLimiterTests {
  @Test("Token buckets: a burst, then one call per 1/rate; at most maximumIdentities remembered")
  func buckets() {
    var settings = RateLimiter.Settings(rate: 2, burst: 3)
    settings.maximumIdentities = 10
    let buckets = RateLimiter.Buckets()
    let t0 = ContinuousClock.now
    #expect((0..<3).map { _ in buckets.take("a", settings, now: t0) } == [nil, nil, nil])
    #expect(buckets.take("a", settings, now: t0) == .milliseconds(500))
    #expect(buckets.take("a", settings, now: t0 + .milliseconds(500)) == nil, "refilled at 2/s")
    #expect(buckets.take("b", settings, now: t0) == nil, "b has its own bucket")
    // Ten thousand identities later, still at most ten buckets.
    for i in 0..<10_000 { _ = buckets.take("id-\(i)", settings, now: t0 + .milliseconds(i)) }
    #expect(buckets.count <= 11)
  }

  @Test("Over real sockets: the fourth call of a burst of three is RESOURCE_EXHAUSTED with retry-after and RetryInfo; another caller and health are not limited")
  func overSockets() async throws {
    let issuer = try await TestIssuer.make()
    let verifier = try await TokenVerifier(jwks: issuer.jwks, settings: .init(issuer: issuer.issuer, audience: issuer.audience))
    var router = Router()
    router.registerUnary("/test.Echo/Say") { bytes, _ in bytes }
    router.registerUnary("/grpc.health.v1.Health/Check") { _, _ in [] }
    router.intercept(with: Authenticator(tokens: { verifier }, logger: Logger(label: "test")))
    // One call per 100 s after the burst: on a loaded machine the calls may take seconds, and
    // the bucket must not refill meanwhile.
    router.intercept(with: RateLimiter(settings: .init(rate: 0.01, burst: 3), logger: Logger(label: "test")))
    let server = try await GRPCServer.start(router: router, host: "127.0.0.1", port: 0)
    let client = try GRPCClient(target: "127.0.0.1:\(server.port)")
    func call(_ path: String, _ token: String?) async -> RPCError? {
      let metadata: Metadata = token.map { [("authorization", .text("Bearer " + $0))] } ?? []
      do {
        _ = try await client.unary(path, request: Google_Protobuf_Duration(), responseType: Google_Protobuf_Duration.self,
          options: CallOptions(timeout: .seconds(60), metadata: metadata))
        return nil
      } catch let e as RPCError {
        return e
      } catch {
        return RPCError(code: .unknown, message: "\(error)")
      }
    }
    let alice = try await issuer.token("alice")
    let bob = try await issuer.token("bob")
    for _ in 0..<3 { #expect(await call("/test.Echo/Say", alice) == nil) }
    let limited = try #require(await call("/test.Echo/Say", alice))
    #expect(limited.code == .resourceExhausted && limited.message.contains("user:alice"))
    let delay = try #require(limited.retryDelay)
    #expect(delay > .seconds(50) && delay <= .seconds(100), "\(delay)")
    let seconds = Double(delay.components.seconds) + Double(delay.components.attoseconds) / 1e18
    #expect(limited.trailers.first("retry-after") == String(Int(seconds.rounded(.up))), "\(limited.trailers)")
    #expect(await call("/test.Echo/Say", bob) == nil, "bob has his own budget")
    for _ in 0..<5 { #expect(await call("/grpc.health.v1.Health/Check", alice) == nil) }
    // Anonymous callers share their address's bucket.
    for _ in 0..<3 { #expect(await call("/test.Echo/Say", nil) == nil) }
    #expect(await call("/test.Echo/Say", nil)?.code == .resourceExhausted)
    await client.close()
    try await server.stop()
  }
}
