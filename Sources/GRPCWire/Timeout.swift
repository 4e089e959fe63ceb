/// The `grpc-timeout` header: at most 8 ASCII digits and a unit (H, M, S, m, u, n).
package enum GRPCTimeout {
  /// The timeout in nanoseconds, or `nil` when the value is malformed (the spec's answer to a
  /// malformed header is to treat the call as invalid; callers map `nil` to INTERNAL).
  package static func parse(_ value: String) -> Int64? {
    let utf8 = Array(value.utf8)
    guard utf8.count >= 2, utf8.count <= 9 else { return nil }
    var amount: Int64 = 0
    for b in utf8.dropLast() {
      guard b >= 0x30 && b <= 0x39 else { return nil }
      amount = amount * 10 + Int64(b - 0x30)
    }
    let perUnit: Int64
    switch utf8.last! {
    case UInt8(ascii: "H"): perUnit = 3_600_000_000_000
    case UInt8(ascii: "M"): perUnit = 60_000_000_000
    case UInt8(ascii: "S"): perUnit = 1_000_000_000
    case UInt8(ascii: "m"): perUnit = 1_000_000
    case UInt8(ascii: "u"): perUnit = 1_000
    case UInt8(ascii: "n"): perUnit = 1
    default: return nil
    }
    let (ns, overflow) = amount.multipliedReportingOverflow(by: perUnit)
    return overflow ? Int64.max : ns
  }

  /// The header value for a timeout: the finest unit whose amount fits in 8 digits, rounded up
  /// so the server never sees a shorter deadline than the client's.
  package static func encode(nanoseconds: Int64) -> String {
    let ns = max(0, nanoseconds)
    let units: [(Int64, Character)] = [
      (1, "n"), (1_000, "u"), (1_000_000, "m"), (1_000_000_000, "S"), (60_000_000_000, "M"), (3_600_000_000_000, "H"),
    ]
    for (perUnit, unit) in units {
      let amount = ns / perUnit + (ns % perUnit == 0 ? 0 : 1)
      if amount <= 99_999_999 { return "\(amount)\(unit)" }
    }
    return "99999999H"
  }
}
