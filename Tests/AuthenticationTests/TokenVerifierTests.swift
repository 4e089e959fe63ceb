internal import Authentication
internal import Foundation
internal import Testing
internal import TestSupport

/// Bearer tokens: every forgery and bad claim is refused for its own reason; valid RS256 and
/// ES256 tokens name their subject and roles.
@Suite("JWT verification")
struct TokenVerifierTests {
  static func verifier(_ issuer: TestIssuer, leeway: Duration = .seconds(60)) async throws -> TokenVerifier {
    try await TokenVerifier(jwks: issuer.jwks, settings: .init(issuer: issuer.issuer, audience: issuer.audience, leeway: leeway))
  }

  @Test("Valid ES256 and RS256 tokens name their subject and roles")
  func valid() async throws {
    let issuer = try await TestIssuer.make()
    let verifier = try await Self.verifier(issuer)
    let ec = try await verifier.verify(try await issuer.token("s-100", roles: ["student"]))
    #expect(ec == Principal(kind: .user, name: "s-100", roles: ["student"]))
    let rsa = try await verifier.verify(try await issuer.token("registrar-1", roles: ["registrar", "staff"], kid: "rsa1"))
    #expect(rsa == Principal(kind: .user, name: "registrar-1", roles: ["registrar", "staff"]))
  }

  @Test("Forged, unsigned, confused and tampered tokens are refused")
  func forgeries() async throws {
    let issuer = try await TestIssuer.make()
    let verifier = try await Self.verifier(issuer)
    let good = try await issuer.token("s-100", roles: ["student"])
    let parts = good.split(separator: ".").map(String.init)
    // The payload swapped for one naming another subject and role, the signature kept.
    let tampered = parts[0] + "." + TestIssuer.unsigned("s-999", alg: "ES256").split(separator: ".")[1] + "." + parts[2]
    let cases: [(String, String, TokenRejection)] = [
      ("another key under the same kid", try await issuer.token("s-100", forged: true), .badSignature("")),
      ("alg none", TestIssuer.unsigned("s-100", alg: "none"), .unsupportedAlgorithm("none")),
      ("HS256 (the public key as an HMAC secret)", TestIssuer.unsigned("s-100", alg: "HS256", signature: "c2lnbmF0dXJl"), .unsupportedAlgorithm("HS256")),
      ("RS256 claimed for the EC key", TestIssuer.unsigned("s-100", alg: "RS256", kid: "ec1", signature: "c2ln"), .unsupportedAlgorithm("RS256 with a ES256 key")),
      ("an unknown kid", TestIssuer.unsigned("s-100", alg: "ES256", kid: "other", signature: "c2ln"), .unknownKey),
      ("a tampered payload", tampered, .badSignature("")),
      ("no signature part", parts[0] + "." + parts[1], .malformed("not a signed JWT")),
      ("not base64", "%%%.%%%.%%%", .malformed("not a signed JWT")),
      ("a megabyte", String(repeating: "a", count: 1 << 20), .malformed("longer than 8192 bytes")),
    ]
    for (what, token, expected) in cases {
      do {
        let principal = try await verifier.verify(token)
        Issue.record("\(what): accepted as \(principal)")
      } catch {
        if case .badSignature = expected, case .badSignature = error { continue }
        #expect(error == expected, "\(what)")
      }
    }
  }

  @Test("exp, nbf, iss and aud are checked, within the configured clock skew")
  func claims() async throws {
    let issuer = try await TestIssuer.make()
    let verifier = try await Self.verifier(issuer, leeway: .seconds(60))
    let cases: [(String, String, TokenRejection?)] = [
      ("expired two minutes ago", try await issuer.token("a", expiresIn: -120), .expired),
      ("expired 30 s ago (within the skew)", try await issuer.token("a", expiresIn: -30), nil),
      ("valid from in two minutes", try await issuer.token("a", notBefore: 120), .notYetValid),
      ("valid from in 30 s (within the skew)", try await issuer.token("a", notBefore: 30), nil),
      ("for another audience", try await issuer.token("a", audience: "another-service"), .wrongAudience),
      ("from another issuer", try await issuer.token("a", issuer: "https://evil.example"), .wrongIssuer),
      ("without a subject", try await issuer.token(""), .missingClaim("sub")),
    ]
    for (what, token, expected) in cases {
      do {
        _ = try await verifier.verify(token)
        #expect(expected == nil, "\(what): accepted")
      } catch {
        #expect(error == expected, "\(what)")
      }
    }
    // A zero skew refuses the token that expired 30 s ago.
    let strict = try await Self.verifier(issuer, leeway: .zero)
    await #expect(throws: TokenRejection.expired) { try await strict.verify(try await issuer.token("a", expiresIn: -30)) }
  }

  @Test("A JWKS with anything but public RS256 and ES256 signature keys is refused, saying which key")
  func keySets() async throws {
    let settings = TokenVerifier.Settings(issuer: "i", audience: "a")
    let cases: [(String, String)] = [
      (#"{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}"#, "keys[0] (h): only RSA (RS256) and EC P-256 (ES256) keys are accepted"),
      (#"{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}"#, "keys[0]: no \"kid\""),
      (#"{"keys":[{"kty":"EC","crv":"P-256","kid":"e","alg":"ES384","x":"AA","y":"AA"}]}"#, "keys[0] (e): alg ES384; only ES256 for this key type"),
      (#"{"keys":[{"kty":"EC","crv":"P-256","kid":"e","d":"AA","x":"AA","y":"AA"}]}"#, "keys[0] (e): a private key; publish only public keys"),
      (#"{"keys":[{"kty":"RSA","kid":"r","use":"enc","n":"AA","e":"AQAB"}]}"#, "keys[0] (r): use enc, not sig"),
      (#"{"keys":[]}"#, "the key set is empty"),
      (#"[1,2]"#, "not a JWKS document (a JSON object with a \"keys\" array, at most 1 MiB)"),
    ]
    for (json, reason) in cases {
      await #expect(throws: JWKSError(reason: reason), "\(json)") { try await TokenVerifier(jwks: Array(json.utf8), settings: settings) }
    }
    #expect(TokenVerifier.Settings(issuer: "i", audience: "a", leeway: .seconds(3600)).leeway == .seconds(300), "the skew is bounded")
  }
}
