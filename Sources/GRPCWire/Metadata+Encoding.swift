internal import Foundation

/// `grpc-message`: percent-encoding of every byte outside printable ASCII, and of `%`.
package enum PercentEncoding {
  package static func encode(_ message: String) -> String {
    var out = ""
    for b in message.utf8 {
      if b >= 0x20 && b <= 0x7E && b != UInt8(ascii: "%") {
        out.unicodeScalars.append(Unicode.Scalar(b))
      } else {
        let hex = Array("0123456789ABCDEF".unicodeScalars)
        out.unicodeScalars.append("%")
        out.unicodeScalars.append(hex[Int(b >> 4)])
        out.unicodeScalars.append(hex[Int(b & 15)])
      }
    }
    return out
  }

  /// Decodes `%XX` sequences; anything malformed is kept as it is (the spec asks decoders to be
  /// lenient), and invalid UTF-8 after decoding is repaired rather than dropped.
  package static func decode(_ value: String) -> String {
    let bytes = Array(value.utf8)
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count)
    var i = 0
    func hex(_ c: UInt8) -> UInt8? {
      switch c {
      case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - 48
      case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - 87
      case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - 55
      default: return nil
      }
    }
    while i < bytes.count {
      if bytes[i] == UInt8(ascii: "%"), i + 2 < bytes.count, let h = hex(bytes[i + 1]), let l = hex(bytes[i + 2]) {
        out.append(h << 4 | l)
        i += 3
      } else {
        out.append(bytes[i])
        i += 1
      }
    }
    return String(decoding: out, as: UTF8.self)
  }
}

/// Binary metadata: keys ending in `-bin` carry base64 on the wire; emitted unpadded, accepted
/// padded or not.
package enum BinaryMetadata {
  package static func isBinaryKey(_ key: String) -> Bool { key.hasSuffix("-bin") }

  package static func encode(_ value: [UInt8]) -> String {
    var s = Data(value).base64EncodedString()
    while s.last == "=" { s.removeLast() }
    return s
  }

  /// The bytes, or `nil` when the value is not base64 (standard alphabet, padded or not).
  package static func decode(_ value: String) -> [UInt8]? {
    var s = value.trimmingCharacters(in: .whitespaces)
    if s.utf8.count % 4 == 1 { return nil }
    while s.utf8.count % 4 != 0 { s.append("=") }
    return Data(base64Encoded: s).map { [UInt8]($0) }
  }
}

/// `content-type` rules: `application/grpc` or `application/grpc+<subtype>` (`;` parameters
/// allowed); anything else gets HTTP 415 from a server.
package enum GRPCContentType {
  package static func isGRPC(_ value: String) -> Bool {
    let lowered = value.lowercased()
    guard lowered.hasPrefix("application/grpc") else { return false }
    let rest = lowered.dropFirst("application/grpc".count)
    return rest.isEmpty || rest.hasPrefix("+") || rest.hasPrefix(";")
  }
}
