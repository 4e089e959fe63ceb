internal import EventsService
internal import Glibc
package import QuadRPC

/// What every campus context's service shares: page tokens, page sizes, field checks, the
/// clock, and how database failures reach callers.
package enum CampusSupport {
  /// The most refused items a batch (a roster import, a controller's scans) lists; its count
  /// covers them all.
  package static let maximumListedRejections = 1000

  /// A page size as requests give it: 1 to `maximum`, 0 meaning `default`.
  package static func pageSize(_ requested: Int32, _ violations: inout [RPCError.FieldViolation], maximum: Int = 1000, default: Int = 100) -> Int {
    guard (0...Int32(maximum)).contains(requested) else {
      violations.append(RPCError.FieldViolation("page_size", "must be 0 to \(maximum)"))
      return 0
    }
    return requested == 0 ? `default` : Int(requested)
  }

  /// Microseconds since the Unix epoch, by this machine's clock.
  package static func nowMicroseconds() -> Int64 {
    var t = timespec()
    clock_gettime(CLOCK_REALTIME, &t)
    return Int64(t.tv_sec) * 1_000_000 + Int64(t.tv_nsec / 1000)
  }

  /// Runs `body`, answering database failures with the status a caller can act on.
  package static func mapped<R>(_ body: () async throws -> R) async throws -> R {
    do { return try await body() } catch let e as RPCError { throw e } catch { throw EventsService.status(for: error) }
  }

  /// Throws INVALID_ARGUMENT with every violation, when there is one.
  package static func check(_ violations: [RPCError.FieldViolation]) throws {
    guard violations.isEmpty else { throw RPCError.invalidArgument(violations) }
  }

  /// The violation for `field` when `why` says what is wrong with it.
  package static func violations(_ checks: [(field: String, why: String?)]) -> [RPCError.FieldViolation] {
    checks.compactMap { c in c.why.map { RPCError.FieldViolation(c.field, $0) } }
  }

  // MARK: Field checks (each returns why the value is bad, or nil)

  package static func isAlphanumeric(_ c: UInt8) -> Bool {
    (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
  }

  /// `length` printable ASCII characters (no spaces or controls).
  package static func token(_ v: String, _ length: ClosedRange<Int>) -> String? {
    if v.isEmpty && length.lowerBound > 0 { return "is required" }
    guard length.contains(v.utf8.count) else { return "must be \(length.lowerBound) to \(length.upperBound) characters" }
    return v.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F } ? nil : "must be printable characters without spaces"
  }

  /// Empty, or a real calendar date YYYY-MM-DD between 1900 and 2199.
  package static func date(_ v: String) -> String? {
    if v.isEmpty { return nil }
    let b = Array(v.utf8)
    func number(_ r: Range<Int>) -> Int? {
      var n = 0
      for i in r {
        guard b[i] >= 0x30, b[i] <= 0x39 else { return nil }
        n = n * 10 + Int(b[i] - 0x30)
      }
      return n
    }
    guard b.count == 10, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-"),
          let y = number(0..<4), let m = number(5..<7), let d = number(8..<10),
          (1900...2199).contains(y), (1...12).contains(m)
    else { return "must be a date YYYY-MM-DD" }
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
    let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]
    return (1...days).contains(d) ? nil : "is not a day of that month"
  }

  /// Letters, digits and the `extra` punctuation, `length` long, starting with a letter or digit.
  package static func code(_ v: String, _ length: ClosedRange<Int>, extra: String = "-_", lowercaseOnly: Bool = false) -> String? {
    if v.isEmpty && length.lowerBound > 0 { return "is required" }
    guard length.contains(v.utf8.count) else { return "must be \(length.lowerBound) to \(length.upperBound) characters" }
    let punctuation = Set(extra.utf8)
    let ok = v.utf8.enumerated().allSatisfy { i, c in
      (isAlphanumeric(c) && !(lowercaseOnly && c >= 0x41 && c <= 0x5A)) || (i > 0 && punctuation.contains(c))
    }
    let letters = lowercaseOnly ? "lower-case letters" : "letters"
    return ok ? nil : "must be \(letters), digits or \(extra.map { "'\($0)'" }.joined(separator: " or ")), starting with a letter or digit"
  }
}

/// Opaque page tokens: the hex of where the next page starts.
package enum PageToken {
  package static func encode(_ value: String) -> String { encode(value.utf8) }

  package static func encode(_ bytes: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    return String(decoding: bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] }, as: UTF8.self)
  }

  /// The value `token` holds; nil for an empty token, and a violation for one no page handed out.
  package static func decode(_ token: String, field: String = "page_token", _ violations: inout [RPCError.FieldViolation]) -> String? {
    if token.isEmpty { return nil }
    let b = Array(token.utf8)
    var bytes: [UInt8] = []
    if b.count.isMultiple(of: 2), b.count <= 512 {
      for i in stride(from: 0, to: b.count, by: 2) {
        guard let byte = UInt8(String(decoding: b[i..<(i + 2)], as: UTF8.self), radix: 16) else { break }
        bytes.append(byte)
      }
    }
    guard bytes.count * 2 == b.count, let value = String(validating: bytes, as: UTF8.self) else {
      violations.append(RPCError.FieldViolation(field, "is not a page token this service handed out"))
      return nil
    }
    return value
  }
}
