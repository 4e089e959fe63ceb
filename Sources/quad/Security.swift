internal import ArgumentParser
internal import Authentication
internal import Authorization
internal import Foundation
internal import Logging
internal import QuadRPC

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

  func validate() throws {
    guard (tlsCertificate == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
    guard clientCA == nil || tlsCertificate != nil else { throw ValidationError("--client-ca needs --tls-cert and --tls-key") }
    guard !requireClientCertificate || clientCA != nil else { throw ValidationError("--require-client-cert needs --client-ca") }
    guard jwks == nil || (jwtIssuer != nil && jwtAudience != nil) else { throw ValidationError("--jwks needs --jwt-issuer and --jwt-audience") }
    guard (0...300).contains(jwtLeeway) else { throw ValidationError("--jwt-leeway must be 0 to 300 seconds") }
  }

  /// What `quad serve` serves with: TLS, and the interceptors that authenticate and authorize.
  struct Loaded {
    var tls: ServerTLS?
    var interceptors: [any ServerInterceptor]
    /// For the ready line: what is enforced ("; mutual TLS, bearer tokens, policy").
    var summary: String
  }

  /// Reads the files named; the error names the file at fault and why.
  func load() async throws -> Loaded {
    var loaded = Loaded(interceptors: [], summary: "")
    var notes: [String] = []
    if let tlsCertificate, let tlsKey {
      loaded.tls = ServerTLS(
        certificateChainPath: tlsCertificate, privateKeyPath: tlsKey, clientCAPath: clientCA, requireClientCertificate: requireClientCertificate)
      notes.append(clientCA == nil ? "TLS" : "mutual TLS")
    }
    var tokens: TokenVerifier?
    if let jwks, let jwtIssuer, let jwtAudience {
      let bytes = try Self.read(jwks, "--jwks")
      do {
        tokens = try await TokenVerifier(jwks: bytes, settings: .init(issuer: jwtIssuer, audience: jwtAudience, leeway: .seconds(jwtLeeway)))
      } catch {
        throw ServeFailure(message: "quad serve: --jwks \(jwks): \(error)")
      }
      notes.append("bearer tokens")
    }
    if tokens != nil || clientCA != nil || policy != nil {
      loaded.interceptors.append(Authenticator(tokens: tokens, logger: Logger(label: "quad.auth")))
    }
    if let policy {
      let parsed: Policy
      do {
        parsed = try Policy(json: try Self.read(policy, "--policy"))
      } catch let error as PolicyError {
        throw ServeFailure(message: "quad serve: --policy \(policy): \(error)")
      }
      loaded.interceptors.append(Authorizer(policy: { parsed }, logger: Logger(label: "quad.auth")))
      notes.append("policy")
    }
    loaded.summary = notes.isEmpty ? "" : "; \(notes.joined(separator: ", "))"
    return loaded
  }

  static func read(_ path: String, _ option: String) throws -> [UInt8] {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw ServeFailure(message: "quad serve: \(option) \(path): cannot read the file")
    }
    return [UInt8](data)
  }
}
