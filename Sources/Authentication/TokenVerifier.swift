package import Foundation
internal import JWTKit

/// Verifies JWT bearer tokens: RS256 or ES256 signatures by a key of a JWKS, and the `exp`,
/// `nbf`, `iss` and `aud` claims within a bounded clock skew. JWTKit does the cryptography.
package actor TokenVerifier {
  /// What a valid token must say, and how much clock skew is tolerated.
  package struct Settings: Sendable, Hashable {
    package var issuer: String
    package var audience: String
    /// At most ``maximumLeeway``.
    package var leeway: Duration

    package static let maximumLeeway: Duration = .seconds(300)

    package init(issuer: String, audience: String, leeway: Duration = .seconds(60)) {
      self.issuer = issuer
      self.audience = audience
      self.leeway = min(leeway, Self.maximumLeeway)
    }
  }

  /// A token longer than this is refused unread.
  static let maximumTokenBytes = 8 * 1024

  let settings: Settings
  private let keys = JWTKeyCollection()
  /// Each key id's algorithm: a token must name the algorithm its key was published for.
  private let algorithms: [String: String]
  private let now: @Sendable () -> Date

  /// Loads the keys of a JWKS document. Only signature keys for RS256 (RSA) and ES256 (EC
  /// P-256) with a key id are accepted; any other key makes the set invalid.
  package init(jwks json: [UInt8], settings: Settings, now: @escaping @Sendable () -> Date = { Date() }) async throws(JWKSError) {
    let accepted = try Self.signatureKeys(json)
    self.settings = settings
    self.now = now
    algorithms = Dictionary(accepted.map { ($0.kid, $0.alg) }, uniquingKeysWith: { a, _ in a })
    do {
      let data = try JSONSerialization.data(withJSONObject: ["keys": accepted.map(\.jwk)])
      try await keys.add(jwksJSON: String(decoding: data, as: UTF8.self))
    } catch {
      throw JWKSError(reason: "the keys cannot be used: \(error)")
    }
  }

  /// The principal a token names, or why it is not valid.
  package func verify(_ token: String) async throws(TokenRejection) -> Principal {
    guard token.utf8.count <= Self.maximumTokenBytes else { throw .malformed("longer than \(Self.maximumTokenBytes) bytes") }
    let parts = token.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 3, let header = Self.json(base64URL: parts[0]) else { throw .malformed("not a signed JWT") }
    guard let alg = header["alg"] as? String, alg == "RS256" || alg == "ES256" else {
      throw .unsupportedAlgorithm("\(header["alg"] ?? "none")")
    }
    guard let kid = header["kid"] as? String, let published = algorithms[kid] else { throw .unknownKey }
    guard published == alg else { throw .unsupportedAlgorithm("\(alg) with a \(published) key") }
    let claims: Claims
    do {
      claims = try await keys.verify(token, as: Claims.self)
    } catch {
      throw .badSignature("\(error)")
    }
    let current = now()
    let leeway = Double(settings.leeway.components.seconds)
    guard let exp = claims.exp else { throw .missingClaim("exp") }
    guard exp.value.addingTimeInterval(leeway) > current else { throw .expired }
    if let nbf = claims.nbf, nbf.value.addingTimeInterval(-leeway) > current { throw .notYetValid }
    guard claims.iss?.value == settings.issuer else { throw .wrongIssuer }
    guard let aud = claims.aud, aud.value.contains(settings.audience) else { throw .wrongAudience }
    guard let sub = claims.sub?.value, !sub.isEmpty, sub.utf8.count <= 256 else { throw .missingClaim("sub") }
    return Principal(kind: .user, name: sub, roles: Set((claims.roles ?? []).prefix(64)))
  }

  /// The claims Quad reads; the checks are made by ``verify(_:)`` (with the configured leeway).
  struct Claims: JWTPayload {
    var sub: SubjectClaim?
    var iss: IssuerClaim?
    var aud: AudienceClaim?
    var exp: ExpirationClaim?
    var nbf: NotBeforeClaim?
    var roles: [String]?

    func verify(using algorithm: some JWTAlgorithm) async throws {}
  }

  struct AcceptedKey {
    var kid: String
    var alg: String
    var jwk: [String: Any]
  }

  /// The JWKS's keys, each checked and given its algorithm explicitly.
  static func signatureKeys(_ json: [UInt8]) throws(JWKSError) -> [AcceptedKey] {
    guard json.count <= 1 << 20,
      let document = try? JSONSerialization.jsonObject(with: Data(json)) as? [String: Any],
      let keys = document["keys"] as? [[String: Any]]
    else { throw JWKSError(reason: "not a JWKS document (a JSON object with a \"keys\" array, at most 1 MiB)") }
    guard !keys.isEmpty else { throw JWKSError(reason: "the key set is empty") }
    var accepted: [AcceptedKey] = []
    for (i, var key) in keys.enumerated() {
      guard let kid = key["kid"] as? String, !kid.isEmpty else { throw JWKSError(reason: "keys[\(i)]: no \"kid\"") }
      if let use = key["use"] as? String, use != "sig" { throw JWKSError(reason: "keys[\(i)] (\(kid)): use \(use), not sig") }
      guard key["d"] == nil else { throw JWKSError(reason: "keys[\(i)] (\(kid)): a private key; publish only public keys") }
      let alg: String
      switch (key["kty"] as? String, key["crv"] as? String) {
      case ("RSA", _): alg = "RS256"
      case ("EC", "P-256"): alg = "ES256"
      default: throw JWKSError(reason: "keys[\(i)] (\(kid)): only RSA (RS256) and EC P-256 (ES256) keys are accepted")
      }
      if let declared = key["alg"] as? String, declared != alg {
        throw JWKSError(reason: "keys[\(i)] (\(kid)): alg \(declared); only \(alg) for this key type")
      }
      key["alg"] = alg
      accepted.append(AcceptedKey(kid: kid, alg: alg, jwk: key))
    }
    return accepted
  }

  static func json(base64URL part: Substring) -> [String: Any]? {
    var text = part.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while text.count % 4 != 0 { text += "=" }
    guard let data = Data(base64Encoded: text) else { return nil }
    return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
  }
}

/// A JWKS that cannot be used, and why.
package struct JWKSError: Error, Hashable, Sendable, CustomStringConvertible {
  package var reason: String
  package init(reason: String) { self.reason = reason }
  package var description: String { "JWKS: \(reason)" }
}

/// Why a token was refused. Logged on the server; the caller only learns UNAUTHENTICATED.
package enum TokenRejection: Error, Hashable, Sendable, CustomStringConvertible {
  case malformed(String)
  case unsupportedAlgorithm(String)
  case unknownKey
  case badSignature(String)
  case missingClaim(String)
  case expired
  case notYetValid
  case wrongIssuer
  case wrongAudience

  package var description: String {
    switch self {
    case .malformed(let why): "malformed token: \(why)"
    case .unsupportedAlgorithm(let alg): "algorithm not accepted: \(alg)"
    case .unknownKey: "no key with the token's kid"
    case .badSignature(let why): "the signature does not verify: \(why)"
    case .missingClaim(let claim): "no \(claim) claim"
    case .expired: "expired"
    case .notYetValid: "not valid yet (nbf)"
    case .wrongIssuer: "wrong issuer"
    case .wrongAudience: "wrong audience"
    }
  }
}
