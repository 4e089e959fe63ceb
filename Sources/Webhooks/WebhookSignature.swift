internal import Crypto
package import Foundation

/// The `Quad-Signature` header of a webhook delivery: `t=<unix seconds>,v1=<hex HMAC-SHA256 of
/// "<t>.<body>" under the shared secret>`. A receiver recomputes it, compares in constant time
/// and refuses timestamps outside its tolerance (replays). swift-crypto computes the HMAC.
package enum WebhookSignature {
  package static let header = "Quad-Signature"

  package static func sign(_ body: [UInt8], secret: [UInt8], timestamp: Int64) -> String {
    "t=\(timestamp),v1=\(hex(mac(body, secret: secret, timestamp: timestamp)))"
  }

  /// Whether `header` signs `body` under `secret`, within `tolerance` seconds of `now`.
  package static func verify(_ header: String, body: [UInt8], secret: [UInt8], now: Int64, tolerance: Int64 = 300) -> Bool {
    var timestamp: Int64?
    var signatures: [String] = []
    for part in header.split(separator: ",") {
      let kv = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
      guard kv.count == 2 else { continue }
      if kv[0] == "t" { timestamp = Int64(kv[1]) }
      if kv[0] == "v1" { signatures.append(kv[1]) }
    }
    guard let timestamp, abs(now - timestamp) <= tolerance else { return false }
    let key = SymmetricKey(data: secret)
    let message = Array("\(timestamp).".utf8) + body
    return signatures.contains { s in
      guard let bytes = unhex(s) else { return false }
      return HMAC<SHA256>.isValidAuthenticationCode(bytes, authenticating: message, using: key)
    }
  }

  static func mac(_ body: [UInt8], secret: [UInt8], timestamp: Int64) -> [UInt8] {
    Array(HMAC<SHA256>.authenticationCode(for: Array("\(timestamp).".utf8) + body, using: SymmetricKey(data: secret)))
  }

  static func hex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count * 2)
    for b in bytes {
      out.append(digits[Int(b >> 4)])
      out.append(digits[Int(b & 15)])
    }
    return String(decoding: out, as: UTF8.self)
  }

  static func unhex(_ text: String) -> [UInt8]? {
    let chars = Array(text.utf8)
    guard chars.count % 2 == 0 else { return nil }
    var out: [UInt8] = []
    for i in stride(from: 0, to: chars.count, by: 2) {
      guard let hi = nibble(chars[i]), let lo = nibble(chars[i + 1]) else { return nil }
      out.append(hi << 4 | lo)
    }
    return out
  }

  static func nibble(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
    default: nil
    }
  }
}
