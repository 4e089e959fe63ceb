/// Writes the proto3 JSON form of messages into a UTF-8 buffer, for generated `encodeJSON(to:)` code.
///
/// Field names are lowerCamelCase, 64-bit integers are strings, bytes are base64, enums are names,
/// non-finite floats are `"NaN"`, `"Infinity"` and `"-Infinity"`; fields at their default are left out.
public struct JSONWriter {
  /// The UTF-8 text written so far.
  public var bytes: [UInt8] = []
  @usableFromInline var needsComma = false
  /// Resolves `google.protobuf.Any` payloads; without one, an `Any` fails to encode.
  public var typeRegistry: TypeRegistry?

  public init(typeRegistry: TypeRegistry? = nil) {
    self.typeRegistry = typeRegistry
    bytes.reserveCapacity(128)
  }

  // MARK: Structure

  @inlinable public mutating func beginObject() {
    bytes.append(UInt8(ascii: "{"))
    needsComma = false
  }

  @inlinable public mutating func endObject() {
    bytes.append(UInt8(ascii: "}"))
    needsComma = true
  }

  @inlinable public mutating func beginArray() {
    bytes.append(UInt8(ascii: "["))
    needsComma = false
  }

  @inlinable public mutating func endArray() {
    bytes.append(UInt8(ascii: "]"))
    needsComma = true
  }

  /// Starts the next array element.
  @inlinable public mutating func element() {
    if needsComma { bytes.append(UInt8(ascii: ",")) }
    needsComma = true
  }

  /// Writes `"name":` (a name known to need no escaping).
  @inlinable public mutating func key(_ name: StaticString) {
    if needsComma { bytes.append(UInt8(ascii: ",")) }
    bytes.append(UInt8(ascii: "\""))
    name.withUTF8Buffer { bytes.append(contentsOf: $0) }
    bytes.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
    needsComma = true
  }

  /// Writes a map key, quoted and escaped, followed by `:`.
  @inlinable public mutating func mapKey(_ name: String) {
    if needsComma { bytes.append(UInt8(ascii: ",")) }
    writeQuoted(name)
    bytes.append(UInt8(ascii: ":"))
    needsComma = true
  }

  /// Writes a map key that is an integer or bool (JSON object keys are always strings).
  @inlinable public mutating func mapKey<T: CustomStringConvertible>(_ key: T) {
    mapKey(key.description)
  }

  // MARK: Values

  @inlinable public mutating func writeNull() { appendASCII("null") }

  @inlinable public mutating func writeBool(_ v: Bool) { appendASCII(v ? "true" : "false") }

  @inlinable public mutating func writeInt32(_ v: Int32) { appendInteger(Int64(v)) }

  @inlinable public mutating func writeUInt32(_ v: UInt32) { appendInteger(Int64(v)) }

  @inlinable public mutating func writeInt64(_ v: Int64) {
    bytes.append(UInt8(ascii: "\""))
    appendInteger(v)
    bytes.append(UInt8(ascii: "\""))
  }

  @inlinable public mutating func writeUInt64(_ v: UInt64) {
    bytes.append(UInt8(ascii: "\""))
    appendASCII(String(v))
    bytes.append(UInt8(ascii: "\""))
  }

  @inlinable public mutating func writeDouble(_ v: Double) {
    if v.isNaN {
      appendASCII("\"NaN\"")
    } else if v.isInfinite {
      appendASCII(v < 0 ? "\"-Infinity\"" : "\"Infinity\"")
    } else if v == 0 {
      appendASCII(v.sign == .minus ? "-0.0" : "0")  // "-0" would read back as the integer 0
    } else if v == v.rounded(.towardZero), abs(v) < 1e15 {
      appendInteger(Int64(v))
    } else {
      appendASCII(v.description)
    }
  }

  @inlinable public mutating func writeFloat(_ v: Float) {
    if v.isNaN {
      appendASCII("\"NaN\"")
    } else if v.isInfinite {
      appendASCII(v < 0 ? "\"-Infinity\"" : "\"Infinity\"")
    } else if v == 0 {
      appendASCII(v.sign == .minus ? "-0.0" : "0")
    } else if v == v.rounded(.towardZero), abs(v) < 1e7 {
      appendInteger(Int64(v))
    } else {
      // The shortest text that reads back as this float; near the top of the range that text can
      // exceed FLT_MAX as a double (3.4028235e+38), which strict readers refuse: write the exact value.
      let text = v.description
      if let d = Double(text), abs(d) > Double(Float.greatestFiniteMagnitude) {
        appendASCII(Double(v).description)
      } else {
        appendASCII(text)
      }
    }
  }

  @inlinable public mutating func writeString(_ v: String) { writeQuoted(v) }

  @inlinable public mutating func writeBytes(_ v: [UInt8]) {
    bytes.append(UInt8(ascii: "\""))
    Base64.encode(v, into: &bytes)
    bytes.append(UInt8(ascii: "\""))
  }

  /// Writes an enum by name, or by number when the number has no name.
  @inlinable public mutating func writeEnum<E: Enum>(_ v: E) {
    if let name = v.protoName {
      writeQuoted(name)
    } else {
      appendInteger(Int64(v.rawValue))
    }
  }

  /// Writes a nested message.
  @inlinable public mutating func writeMessage<M: Message>(_ m: M) throws {
    try m.encodeJSON(to: &self)
  }

  // MARK: Text

  @inlinable mutating func appendASCII(_ s: String) {
    bytes.append(contentsOf: s.utf8)
  }

  @inlinable mutating func appendInteger(_ v: Int64) {
    if v >= 0 && v < 10 {
      bytes.append(UInt8(ascii: "0") + UInt8(v))
      return
    }
    var magnitude = v.magnitude
    var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes of scratch
    let count = withUnsafeMutableBytes(of: &digits) { scratch -> Int in
      var i = scratch.count
      repeat {
        i -= 1
        scratch[i] = UInt8(ascii: "0") + UInt8(magnitude % 10)
        magnitude /= 10
      } while magnitude > 0
      if v < 0 {
        i -= 1
        scratch[i] = UInt8(ascii: "-")
      }
      bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[i...]))
      return scratch.count - i
    }
    _ = count
  }

  @inlinable mutating func writeQuoted(_ s: String) {
    bytes.append(UInt8(ascii: "\""))
    var needsEscape = false
    for b in s.utf8 where b < 0x20 || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") {
      needsEscape = true
      break
    }
    if !needsEscape {
      bytes.append(contentsOf: s.utf8)
    } else {
      for b in s.utf8 {
        switch b {
        case UInt8(ascii: "\""): appendASCII("\\\"")
        case UInt8(ascii: "\\"): appendASCII("\\\\")
        case 0x0A: appendASCII("\\n")
        case 0x0D: appendASCII("\\r")
        case 0x09: appendASCII("\\t")
        case 0x08: appendASCII("\\b")
        case 0x0C: appendASCII("\\f")
        case ..<0x20:
          let hex: [UInt8] = Array("0123456789abcdef".utf8)
          bytes.append(contentsOf: [92, 117, 48, 48, hex[Int(b >> 4)], hex[Int(b & 15)]])
        default: bytes.append(b)
        }
      }
    }
    bytes.append(UInt8(ascii: "\""))
  }
}

extension Message {
  /// The proto3 JSON form of this message.
  ///
  /// - Throws: ``QuadProtobufError`` for values JSON cannot carry (a `Timestamp` out of range,
  ///   an `Any` whose type the registry does not know).
  public func jsonString(typeRegistry: TypeRegistry? = nil) throws -> String {
    String(decoding: try jsonUTF8Bytes(typeRegistry: typeRegistry), as: UTF8.self)
  }

  /// The proto3 JSON form as UTF-8 bytes.
  public func jsonUTF8Bytes(typeRegistry: TypeRegistry? = nil) throws -> [UInt8] {
    var writer = JSONWriter(typeRegistry: typeRegistry)
    try encodeJSON(to: &writer)
    return writer.bytes
  }
}
