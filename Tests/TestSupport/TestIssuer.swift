public import Foundation
internal import JWTKit

/// A token issuer for tests, made at test time: an ES256 key (`ec1`) and an RS256 key (`rsa1`,
/// from `openssl genrsa`) published in a JWKS, and a stranger's EC key that signs forgeries
/// under the same key id.
public struct TestIssuer: Sendable {
  public let issuer = "https://id.campus.test"
  public let audience = "quad"
  /// The JWKS document with the public keys.
  public let jwks: [UInt8]
  private let keys: JWTKeyCollection
  private let stranger: JWTKeyCollection

  struct Claims: JWTPayload {
    var sub: SubjectClaim?
    var iss: IssuerClaim?
    var aud: AudienceClaim?
    var exp: ExpirationClaim?
    var nbf: NotBeforeClaim?
    var roles: [String]?
    func verify(using algorithm: some JWTAlgorithm) async throws {}
  }

  public static func make() async throws -> TestIssuer {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quad-jwt-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let (status, output) = try await runProcess(["openssl", "genrsa", "-out", dir.appendingPathComponent("rsa.pem").path, "2048"])
    guard status == 0 else { throw IssuerError(description: "openssl genrsa: \(output)") }
    let rsa = try Insecure.RSA.PrivateKey(pem: String(contentsOf: dir.appendingPathComponent("rsa.pem"), encoding: .utf8))
    let ec = ES256PrivateKey()
    let keys = JWTKeyCollection()
    await keys.add(ecdsa: ec, kid: "ec1")
    await keys.add(rsa: rsa, digestAlgorithm: .sha256, kid: "rsa1")
    let stranger = JWTKeyCollection()
    await stranger.add(ecdsa: ES256PrivateKey(), kid: "ec1")
    guard let point = ec.publicKey.parameters else { throw IssuerError(description: "no EC parameters") }
    let (n, e) = try rsa.publicKey.getKeyPrimitives()
    let document: [String: Any] = ["keys": [
      ["kty": "EC", "crv": "P-256", "kid": "ec1", "use": "sig", "x": point.x, "y": point.y],
      ["kty": "RSA", "kid": "rsa1", "alg": "RS256", "n": base64URL(n), "e": base64URL(e)],
    ]]
    let jwks = try JSONSerialization.data(withJSONObject: document)
    return TestIssuer(jwks: [UInt8](jwks), keys: keys, stranger: stranger)
  }

  /// A token for `subject` with `roles`, signed by `kid` (`ec1` or `rsa1`). Times are seconds
  /// from now; `audience` and `issuer` default to the expected ones.
  public func token(
    _ subject: String, roles: [String] = [], kid: String = "ec1", expiresIn: Double = 300, notBefore: Double? = nil,
    audience: String? = nil, issuer: String? = nil, forged: Bool = false
  ) async throws -> String {
    let claims = Claims(
      sub: SubjectClaim(value: subject), iss: IssuerClaim(value: issuer ?? self.issuer), aud: AudienceClaim(value: [audience ?? self.audience]),
      exp: ExpirationClaim(value: Date().addingTimeInterval(expiresIn)), nbf: notBefore.map { NotBeforeClaim(value: Date().addingTimeInterval($0)) },
      roles: roles)
    return try await (forged ? stranger : keys).sign(claims, kid: JWKIdentifier(string: kid))
  }

  /// A token with `alg` in its header and whatever `signature` (no real signature): `none`,
  /// or an algorithm the key was not published for.
  public static func unsigned(_ subject: String, alg: String, kid: String = "ec1", signature: String = "") -> String {
    let header = #"{"alg":"\#(alg)","kid":"\#(kid)","typ":"JWT"}"#
    let exp = Int(Date().timeIntervalSince1970) + 300
    let payload = #"{"sub":"\#(subject)","iss":"https://id.campus.test","aud":"quad","exp":\#(exp),"roles":["registrar"]}"#
    return base64URL(Data(header.utf8)) + "." + base64URL(Data(payload.utf8)) + "." + signature
  }

  public static func base64URL(_ data: Data) -> String {
    data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
      .replacingOccurrences(of: "=", with: "")
  }

  struct IssuerError: Error, CustomStringConvertible { let description: String }
}
