/// One field as it stands on the wire, before a descriptor gives it meaning.
enum WireValue {
  case varint(UInt64)
  case fixed64(UInt64)
  case lengthDelimited([UInt8])
  case group([UInt8])
  case fixed32(UInt32)
}

/// Reads protobuf wire fields from bytes, checking every length against what is left: the
/// descriptor-driven codec's input side (generated types use `QuadProtobuf.BinaryDecoder`).
struct WireReader {
  private let bytes: [UInt8]
  private var index: Int
  private let end: Int

  init(_ bytes: [UInt8]) {
    self.bytes = bytes
    index = 0
    end = bytes.count
  }

  private func fail(_ why: String) -> DynamicMessageError {
    DynamicMessageError("malformed protobuf at offset \(index): \(why)")
  }

  mutating func varint() throws(DynamicMessageError) -> UInt64 {
    var result: UInt64 = 0
    var shift: UInt64 = 0
    while true {
      guard index < end else { throw fail("truncated varint") }
      let b = bytes[index]
      index += 1
      guard shift < 64 else { throw fail("varint longer than 10 bytes") }
      result |= UInt64(b & 0x7F) << shift
      if b < 0x80 { return result }
      shift += 7
    }
  }

  /// Whether every byte has been read.
  var atEnd: Bool { index >= end }

  /// A little-endian fixed-width value of `n` bytes.
  mutating func fixed(_ n: Int) throws(DynamicMessageError) -> UInt64 {
    guard end - index >= n else { throw fail("truncated fixed\(n * 8) value") }
    var v: UInt64 = 0
    for i in 0..<n { v |= UInt64(bytes[index + i]) << UInt64(8 * i) }
    index += n
    return v
  }

  private mutating func slice(_ n: Int) throws(DynamicMessageError) -> [UInt8] {
    guard n >= 0, end - index >= n else { throw fail("length \(n) exceeds the \(end - index) bytes left") }
    defer { index += n }
    return Array(bytes[index..<index + n])
  }

  /// The next field (number and value), or `nil` at the end.
  mutating func next(depth: Int = 0) throws(DynamicMessageError) -> (number: Int32, value: WireValue)? {
    guard index < end else { return nil }
    let tag = try varint()
    let number = tag >> 3
    guard number > 0, number <= 536_870_911 else { throw fail("field number \(number) out of range") }
    switch tag & 7 {
    case 0: return (Int32(number), .varint(try varint()))
    case 1: return (Int32(number), .fixed64(try fixed(8)))
    case 2:
      let n = try varint()
      guard n <= UInt64(Int32.max) else { throw fail("length \(n) too large") }
      return (Int32(number), .lengthDelimited(try slice(Int(n))))
    case 3:
      guard depth < 100 else { throw fail("groups nested deeper than 100") }
      let start = index
      while true {
        guard index < end else { throw fail("group \(number) not closed") }
        let save = index
        let inner = try varint()
        if inner & 7 == 4 {
          guard inner >> 3 == number else { throw fail("group \(number) closed by end-group \(inner >> 3)") }
          return (Int32(number), .group(Array(bytes[start..<save])))
        }
        index = save
        _ = try next(depth: depth + 1)
      }
    case 5: return (Int32(number), .fixed32(UInt32(try fixed(4))))
    default: throw fail("wire type \(tag & 7) of field \(number)")
    }
  }
}

/// Writes protobuf wire fields: the descriptor-driven codec's output side.
struct WireWriter {
  var bytes: [UInt8] = []

  mutating func varint(_ v: UInt64) {
    var v = v
    while v >= 0x80 {
      bytes.append(UInt8(v & 0x7F) | 0x80)
      v >>= 7
    }
    bytes.append(UInt8(v))
  }

  mutating func tag(_ number: Int32, _ wireType: UInt64) { varint(UInt64(number) << 3 | wireType) }

  mutating func fixed32(_ v: UInt32) { for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: v >> UInt32(8 * i))) } }

  mutating func fixed64(_ v: UInt64) { for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v >> UInt64(8 * i))) } }

  mutating func lengthDelimited(_ number: Int32, _ payload: [UInt8]) {
    tag(number, 2)
    varint(UInt64(payload.count))
    bytes.append(contentsOf: payload)
  }
}

/// Why a message could not be converted between JSON and binary by its descriptor.
package struct DynamicMessageError: Error, CustomStringConvertible, Sendable {
  /// What failed and where.
  package let message: String

  package init(_ message: String) { self.message = message }

  package var description: String { message }
}
