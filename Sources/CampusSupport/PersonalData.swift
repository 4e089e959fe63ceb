package import Crypto
internal import Foundation

/// Fields marked `[(quad.v1.personal) = true]` in the log: each value encrypted (AES-256-GCM)
/// with its subject's key into a `quad-enc:v1:` token, bound to the subject, event type and
/// field, so that destroying the key makes every copy unreadable (crypto-shredding). The rest of
/// the payload is left byte for byte as it was.
package enum PersonalData {
  static let prefix = Array("quad-enc:v1:".utf8)

  /// A new key for one subject.
  package static func newKey() -> SymmetricKey { SymmetricKey(size: .bits256) }

  /// `payload` with each personal field's value replaced by its token.
  package static func seal(_ payload: [UInt8], type: String, fields: [Int32], subject: String, key: SymmetricKey) throws -> [UInt8] {
    try rewrite(payload, fields: Set(fields)) { number, value in
      guard !value.isEmpty, !value.starts(with: prefix) else { return value }
      let box = try AES.GCM.seal(value, using: key, authenticating: aad(subject, type, number))
      guard let combined = box.combined else { throw CryptoKitError.incorrectParameterSize }
      return prefix + Array(combined.base64EncodedString().utf8)
    }
  }

  /// `payload` with each token opened; with no key (the subject was erased), or a token that
  /// does not open, the field is left out (empty). Values that are not tokens stay.
  package static func open(_ payload: [UInt8], type: String, fields: [Int32], subject: String, key: SymmetricKey?) throws -> [UInt8] {
    try rewrite(payload, fields: Set(fields)) { number, value in
      guard value.starts(with: prefix) else { return value }
      guard let key, let combined = Data(base64Encoded: Data(value.dropFirst(prefix.count))),
        let box = try? AES.GCM.SealedBox(combined: combined),
        let plain = try? AES.GCM.open(box, using: key, authenticating: aad(subject, type, number))
      else { return nil }
      return Array(plain)
    }
  }

  /// `payload` without the fields numbered in `fields` (anonymised: they read as empty).
  package static func strip(_ payload: [UInt8], fields: [Int32]) throws -> [UInt8] {
    try rewrite(payload, fields: Set(fields)) { _, _ in nil }
  }

  static func aad(_ subject: String, _ type: String, _ number: Int32) -> [UInt8] {
    Array("\(subject)\u{0}\(type)\u{0}\(number)".utf8)
  }

  /// The payload with each length-delimited top-level field numbered in `fields` replaced by
  /// what `transform` returns for its value (nil: the field is dropped).
  ///
  /// - Throws: ``Malformed`` when the payload is not protobuf wire data.
  static func rewrite(_ payload: [UInt8], fields: Set<Int32>, _ transform: (Int32, [UInt8]) throws -> [UInt8]?) throws -> [UInt8] {
    guard !fields.isEmpty else { return payload }
    var out: [UInt8] = []
    out.reserveCapacity(payload.count + 64)
    var i = 0
    func varint() throws -> UInt64 {
      var value: UInt64 = 0
      for shift in stride(from: 0, to: 64, by: 7) {
        guard i < payload.count else { throw Malformed() }
        let b = payload[i]
        i += 1
        value |= UInt64(b & 0x7F) << UInt64(shift)
        if b < 0x80 { return value }
      }
      throw Malformed()
    }
    while i < payload.count {
      let start = i
      let tag = try varint()
      let number = Int32(truncatingIfNeeded: tag >> 3)
      switch tag & 7 {
      case 0: _ = try varint()
      case 1: i += 8
      case 5: i += 4
      case 2:
        let lengthStart = i
        let length = try varint()
        guard length <= UInt64(payload.count - i) else { throw Malformed() }
        let valueStart = i
        i += Int(length)
        if fields.contains(number) {
          if let replaced = try transform(number, Array(payload[valueStart..<i])) {
            out += payload[start..<lengthStart]
            appendVarint(UInt64(replaced.count), to: &out)
            out += replaced
          }
          continue
        }
      default: throw Malformed()
      }
      guard i <= payload.count else { throw Malformed() }
      out += payload[start..<i]
    }
    return out
  }

  static func appendVarint(_ value: UInt64, to out: inout [UInt8]) {
    var v = value
    while v >= 0x80 {
      out.append(UInt8(v & 0x7F) | 0x80)
      v >>= 7
    }
    out.append(UInt8(v))
  }

  /// A payload that is not protobuf wire data.
  package struct Malformed: Error, CustomStringConvertible {
    package var description: String { "the event payload is not protobuf wire data" }
  }
}
