/// UTF-8 validation for `string` fields (strict: no overlong forms, no surrogates, nothing above
/// U+10FFFF), with an 8-bytes-at-a-time ASCII fast path, and String creation without a second
/// generic pass.
public enum UTF8Validation {
  /// A String of the `count` bytes at `start`, or `nil` when they are not valid UTF-8.
  @inlinable public static func string(_ start: UnsafePointer<UInt8>, count: Int) -> String? {
    var i = 0
    while i &+ 8 <= count {
      if UnsafeRawPointer(start + i).loadUnaligned(as: UInt64.self) & 0x8080_8080_8080_8080 != 0 { break }
      i &+= 8
    }
    if i < count, !isValid(start + i, count: count &- i) { return nil }
    return String(unsafeUninitializedCapacity: count) { buffer in
      buffer.baseAddress!.initialize(from: start, count: count)
      return count
    }
  }

  /// Whether the bytes are valid UTF-8 (Unicode 15, table 3-7).
  @usableFromInline static func isValid(_ p: UnsafePointer<UInt8>, count n: Int) -> Bool {
    var i = 0
    @inline(__always) func continuation(_ j: Int) -> Bool { j < n && p[j] & 0xC0 == 0x80 }
    while i < n {
      let b = p[i]
      if b < 0x80 {
        i += 1
      } else if b < 0xC2 {
        return false
      } else if b < 0xE0 {
        guard continuation(i + 1) else { return false }
        i += 2
      } else if b < 0xF0 {
        guard i + 1 < n else { return false }
        let c = p[i + 1]
        switch b {
        case 0xE0: guard c >= 0xA0 && c <= 0xBF else { return false }
        case 0xED: guard c >= 0x80 && c <= 0x9F else { return false }
        default: guard c & 0xC0 == 0x80 else { return false }
        }
        guard continuation(i + 2) else { return false }
        i += 3
      } else if b < 0xF5 {
        guard i + 1 < n else { return false }
        let c = p[i + 1]
        switch b {
        case 0xF0: guard c >= 0x90 && c <= 0xBF else { return false }
        case 0xF4: guard c >= 0x80 && c <= 0x8F else { return false }
        default: guard c & 0xC0 == 0x80 else { return false }
        }
        guard continuation(i + 2), continuation(i + 3) else { return false }
        i += 4
      } else {
        return false
      }
    }
    return true
  }
}
