internal import ArgumentParser
internal import Authentication
internal import Authorization
internal import Foundation
internal import Logging
internal import QuadRPC
internal import RateLimiting
internal import ServiceLifecycle
internal import Synchronization
internal import UnixSignals

/// `quad serve`'s TLS, identity and policy options.
struct SecurityOptions: ParsableArguments {
  @Option(name: .customLong("tls-cert"), help: "Serve TLS with this PEM certificate chain (with --tls-key).")
  var tlsCertificate: String?

  @Option(name: .customLong("tls-key"), help: "The PEM private key of --tls-cert.")
  var tlsKey: String?

  @Option(name: .customLong("client-ca"), help: "Verify client certificates against this PEM CA (mutual TLS); a certificate's first DNS name names the calling service.")
  var clientCA: String?

  @Flag(name: .customLong("require-client-cert"), help: "With --client-ca: refuse connections without a client certificate (else such clients authenticate with a bearer token).")
  var requireClientCertificate = false

  @Option(help: "Verify bearer tokens (RS256, ES256) against this JWKS file.")
  var jwks: String?

  @Option(name: .customLong("jwt-issuer"), help: "The iss a token must carry (with --jwks).")
  var jwtIssuer: String?

  @Option(name: .customLong("jwt-audience"), help: "The aud a token must carry (with --jwks).")
  var jwtAudience: String?

  @Option(name: .customLong("jwt-leeway"), help: "Clock skew tolerated on exp and nbf, in seconds (at most 300).")
  var jwtLeeway = 60

  @Option(help: "Enforce this JSON policy: which services and roles may call which methods and receive which events.")
  var policy: String?

  @Option(name: .customLong("rate-limit"), help: "Calls per second each identity may make (principal, else client address; 0: no limit).")
  var rateLimit: Double = 0

  @Option(name: .customLong("rate-burst"), help: "Calls an identity may make at once after a quiet spell (default: one second's worth).")
  var rateBurst: Double?

  func validate() throws {
    guard rateLimit >= 0 && rateLimit <= 1_000_000 else { throw ValidationError("--rate-limit must be 0 to 1000000 calls per second") }
    guard rateBurst.map({ $0 >= 1 && $0 <= 1_000_000 }) ?? true else { throw ValidationError("--rate-burst must be 1 to 1000000") }
    guard (tlsCertificate == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
    guard clientCA == nil || tlsCertificate != nil else { throw ValidationError("--client-ca needs --tls-cert and --tls-key") }
    guard !requireClientCertificate || clientCA != nil else { throw ValidationError("--require-client-cert needs --client-ca") }
    guard jwks == nil || (jwtIssuer != nil && jwtAudience != nil) else { throw ValidationError("--jwks needs --jwt-issuer and --jwt-audience") }
    guard (0...300).contains(jwtLeeway) else { throw ValidationError("--jwt-leeway must be 0 to 300 seconds") }
  }

  /// Reads the files named; the error names the file at fault and why.
  func load() async throws -> Security {
    let tls = tlsCertificate.flatMap { certificate in
      tlsKey.map {
        ServerTLS(certificateChainPath: certificate, privateKeyPath: $0, clientCAPath: clientCA, requireClientCertificate: requireClientCertificate)
      }
    }
    let tokens = try await loadTokens()
    let policy = try loadPolicy()
    return Security(options: self, tls: tls, tokens: tokens, policy: policy)
  }

  func loadTokens() async throws -> TokenVerifier? {
    guard let jwks, let jwtIssuer, let jwtAudience else { return nil }
    let bytes = try Self.read(jwks, "--jwks")
    do {
      return try await TokenVerifier(jwks: bytes, settings: .init(issuer: jwtIssuer, audience: jwtAudience, leeway: .seconds(jwtLeeway)))
    } catch {
      throw ServeFailure(message: "quad serve: --jwks \(jwks): \(error)")
    }
  }

  func loadPolicy() throws -> Policy? {
    guard let policy else { return nil }
    do {
      return try Policy(json: try Self.read(policy, "--policy"))
    } catch let error as PolicyError {
      throw ServeFailure(message: "quad serve: --policy \(policy): \(error)")
    }
  }

  /// The files whose changes are reloaded.
  var files: [String] { [tlsCertificate, tlsKey, clientCA, jwks, policy].compactMap { $0 } }

  static func read(_ path: String, _ option: String) throws -> [UInt8] {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw ServeFailure(message: "quad serve: \(option) \(path): cannot read the file")
    }
    return [UInt8](data)
  }
}

/// What `quad serve` enforces: TLS, the JWKS and the policy, each replaced when its file changes
/// (or on SIGHUP) by ``SecurityReloader``. A file that no longer loads leaves the last good
/// version in force.
final class Security: Sendable {
  let options: SecurityOptions
  let tls: ServerTLS?
  private let tokens: Mutex<TokenVerifier?>
  private let policy: Mutex<Policy?>

  init(options: SecurityOptions, tls: ServerTLS?, tokens: TokenVerifier?, policy: Policy?) {
    self.options = options
    self.tls = tls
    self.tokens = Mutex(tokens)
    self.policy = Mutex(policy)
  }

  /// The interceptors that authenticate and authorize every call (none when nothing is set).
  var interceptors: [any ServerInterceptor] {
    var out: [any ServerInterceptor] = []
    let auth = Logger(label: "quad.auth")
    if options.jwks != nil || options.clientCA != nil || options.policy != nil || options.rateLimit > 0 {
      out.append(Authenticator(tokens: { self.tokens.withLock { $0 } }, logger: auth))
    }
    if options.rateLimit > 0 {
      // Before the policy: a flood of denied calls is limited too.
      let settings = RateLimiter.Settings(rate: options.rateLimit, burst: options.rateBurst ?? max(options.rateLimit, 1))
      out.append(RateLimiter(settings: settings, logger: auth))
    }
    if options.policy != nil {
      // Never nil once loaded: a failed reload keeps the last good policy.
      out.append(Authorizer(policy: { self.policy.withLock { $0 } ?? Policy(open: [], grants: []) }, logger: auth))
    }
    return out
  }

  /// For the ready line: what is enforced ("; mutual TLS, bearer tokens, policy").
  var summary: String {
    var notes: [String] = []
    if tls != nil { notes.append(options.clientCA == nil ? "TLS" : "mutual TLS") }
    if options.jwks != nil { notes.append("bearer tokens") }
    if options.policy != nil { notes.append("policy") }
    if options.rateLimit > 0 { notes.append("rate limit \(options.rateLimit)/s") }
    return notes.isEmpty ? "" : "; \(notes.joined(separator: ", "))"
  }

  /// Loads every file again; what loads replaces what was in force, what does not is logged.
  func reload(_ server: GRPCServer, why: String, logger: Logger) async {
    var reloaded: [String] = []
    if tls != nil {
      do {
        try server.reloadTLS()
        reloaded.append("TLS")
      } catch {
        logger.error("TLS reload failed; the previous certificates stay in force", metadata: ["error": "\(error)"])
      }
    }
    if options.jwks != nil {
      do {
        let loaded = try await options.loadTokens()
        tokens.withLock { $0 = loaded }
        reloaded.append("JWKS")
      } catch {
        logger.error("JWKS reload failed; the previous keys stay in force", metadata: ["error": "\(error)"])
      }
    }
    if options.policy != nil {
      do {
        let loaded = try options.loadPolicy()
        policy.withLock { $0 = loaded }
        reloaded.append("policy")
      } catch {
        logger.error("policy reload failed; the previous policy stays in force", metadata: ["error": "\(error)"])
      }
    }
    if !reloaded.isEmpty {
      logger.notice("security configuration reloaded", metadata: ["why": "\(why)", "reloaded": "\(reloaded.joined(separator: ", "))"])
    }
  }

  /// Each file's identity, size and modification time: a change (or an atomic replace) shows.
  func fingerprint() -> [String] {
    options.files.map { path in
      guard let a = try? FileManager.default.attributesOfItem(atPath: path) else { return "\(path): missing" }
      let modified = (a[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
      return "\(path) \(a[.systemFileNumber] ?? 0) \(a[.size] ?? 0) \(modified)"
    }
  }
}

/// Reloads ``Security`` on SIGHUP and when one of its files changes (checked every second),
/// until the service group shuts down.
struct SecurityReloader: Service {
  let security: Security
  let server: GRPCServer
  let logger: Logger

  func run() async throws {
    guard !security.options.files.isEmpty else {
      // Nothing to reload; a service that returned early would end the group.
      try? await gracefulShutdown()
      return
    }
    let signals = await UnixSignalsSequence(trapping: .sighup)
    await cancelWhenGracefulShutdown {
      await withTaskGroup(of: Void.self) { group in
        group.addTask {
          for await _ in signals { await security.reload(server, why: "SIGHUP", logger: logger) }
        }
        group.addTask {
          var seen = security.fingerprint()
          while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            let now = security.fingerprint()
            if now != seen {
              seen = now
              await security.reload(server, why: "a file changed", logger: logger)
            }
          }
        }
        await group.waitForAll()
      }
    }
  }
}
