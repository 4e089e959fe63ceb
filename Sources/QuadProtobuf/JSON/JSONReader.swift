/// Reads the proto3 JSON form of messages, for generated `decodeJSON(from:)` code.
///
/// Accepts lowerCamelCase and original field names, numbers as JSON numbers or strings,
/// enums by name or number, `null` as "the default"; rejects unknown fields unless
/// ``ignoreUnknownFields`` is set, and nesting deeper than 100.
public struct JSONReader {
  @usableFromInline let text: [UInt8]
  @usableFromInline var index = 0
  @usableFromInline var depth = 0
  @usableFromInline var needsComma = false
  /// Skip fields the message does not know instead of failing.
  public var ignoreUnknownFields: Bool
  /// Resolves `google.protobuf.Any` payloads.
  public var typeRegistry: TypeRegistry?
  /// Set while reading an `Any` payload: its `@type` key is skipped.
  @usableFromInline var skipTypeKey = false

  public init(_ utf8: [UInt8], ignoreUnknownFields: Bool = false, typeRegistry: TypeRegistry? = nil) {
    text = utf8
    self.ignoreUnknownFields = ignoreUnknownFields
    self.typeRegistry = typeRegistry
  }

  // MARK: Errors

  @usableFromInline func error(_ code: QuadProtobufError.Code, _ message: String) -> QuadProtobufError {
    QuadProtobufError(code: code, message: message, offset: index)
  }

  // MARK: Lexing

  @inlinable mutating func skipWhitespace() {
    while index < text.count {
      switch text[index] {
      case 0x20, 0x0A, 0x0D, 0x09: index += 1
      default: return
      }
    }
  }

  @inlinable mutating func peek() throws -> UInt8 {
    skipWhitespace()
    guard index < text.count else { throw error(.invalidJSON, "unexpected end of JSON") }
    return text[index]
  }

  @inlinable mutating func expect(_ c: UInt8) throws {
    guard try peek() == c else {
      throw error(.invalidJSON, "expected '\(Character(Unicode.Scalar(c)))'")
    }
    index += 1
  }

  @usableFromInline mutating func consumeLiteral(_ word: String) -> Bool {
    let w = Array(word.utf8)
    guard index + w.count <= text.count, Array(text[index..<index + w.count]) == w else { return false }
    index += w.count
    return true
  }

  /// Consumes `null` if it comes next.
  @inlinable public mutating func readNull() throws -> Bool {
    if try peek() == UInt8(ascii: "n") {
      guard consumeLiteral("null") else { throw error(.invalidJSON, "invalid literal") }
      return true
    }
    return false
  }

  /// Fails unless only whitespace is left.
  public mutating func expectEnd() throws {
    skipWhitespace()
    guard index == text.count else { throw error(.invalidJSON, "text after the JSON value") }
  }

  // MARK: Objects and arrays

  /// Starts an object.
  public mutating func beginObject() throws {
    try expect(UInt8(ascii: "{"))
    depth += 1
    guard depth <= BinaryDecoder.maximumDepth else {
      throw error(.recursionLimitExceeded, "JSON nested deeper than \(BinaryDecoder.maximumDepth)")
    }
    needsComma = false
  }

  /// The next key of the current object, or `nil` after its closing brace.
  public mutating func nextKey() throws -> String? {
    while true {
      let c = try peek()
      if c == UInt8(ascii: "}") {
        index += 1
        depth -= 1
        needsComma = true
        return nil
      }
      if needsComma {
        guard c == UInt8(ascii: ",") else { throw error(.invalidJSON, "expected ',' or '}'") }
        index += 1
      }
      let key = try readQuoted()
      try expect(UInt8(ascii: ":"))
      needsComma = true
      if skipTypeKey && depth == 1 && key == "@type" {
        try skipValue()
        continue
      }
      return key
    }
  }

  /// Starts an array.
  public mutating func beginArray() throws {
    try expect(UInt8(ascii: "["))
    depth += 1
    guard depth <= BinaryDecoder.maximumDepth else {
      throw error(.recursionLimitExceeded, "JSON nested deeper than \(BinaryDecoder.maximumDepth)")
    }
    needsComma = false
  }

  /// Whether another element follows in the current array (consumes the `]` when not).
  public mutating func nextElement() throws -> Bool {
    let c = try peek()
    if c == UInt8(ascii: "]") {
      index += 1
      depth -= 1
      needsComma = true
      return false
    }
    if needsComma {
      guard c == UInt8(ascii: ",") else { throw error(.invalidJSON, "expected ',' or ']'") }
      index += 1
    }
    needsComma = true
    return true
  }

  /// Handles a key the message does not know: skips its value or fails.
  public mutating func unknownField(_ key: String, in messageName: String) throws {
    guard ignoreUnknownFields else {
      throw QuadProtobufError(
        code: .unknownJSONField,
        message: "unknown field \"\(key)\"",
        offset: index,
        messageName: messageName
      )
    }
    try skipValue()
  }

  /// Skips any JSON value.
  public mutating func skipValue() throws {
    let c = try peek()
    switch c {
    case UInt8(ascii: "{"):
      try beginObject()
      let saved = skipTypeKey
      skipTypeKey = false
      while try nextKey() != nil { try skipValue() }
      skipTypeKey = saved
    case UInt8(ascii: "["):
      try beginArray()
      while try nextElement() { try skipValue() }
    case UInt8(ascii: "\""):
      _ = try readQuoted()
    case UInt8(ascii: "t"), UInt8(ascii: "f"):
      _ = try readBool()
    case UInt8(ascii: "n"):
      _ = try readNull()
    default:
      _ = try readNumberToken()
    }
    needsComma = true
  }

  /// The first byte of the next value, after whitespace (what kind of value comes).
  public mutating func peekByte() throws -> UInt8 { try peek() }

  /// The raw text of the next value, consumed (for `Any`, which must find `@type` first).
  public mutating func captureValue() throws -> [UInt8] {
    skipWhitespace()
    let start = index
    let savedDepth = depth
    let savedComma = needsComma
    try skipValue()
    depth = savedDepth
    needsComma = savedComma
    return Array(text[start..<index])
  }

  // MARK: Scalars

  @usableFromInline mutating func readQuoted() throws -> String {
    try expect(UInt8(ascii: "\""))
    let start = index
    // Fast path: no escapes.
    while index < text.count {
      let b = text[index]
      if b == UInt8(ascii: "\"") {
        let s = try text.withUnsafeBufferPointer { buf -> String in
          guard let s = UTF8Validation.string(buf.baseAddress! + start, count: index - start) else {
            throw error(.invalidUTF8, "invalid UTF-8 in a JSON string")
          }
          return s
        }
        index += 1
        return s
      }
      if b == UInt8(ascii: "\\") || b < 0x20 { break }
      index += 1
    }
    var out = Array(text[start..<index])
    while true {
      guard index < text.count else { throw error(.invalidJSON, "unterminated string") }
      let b = text[index]
      index += 1
      switch b {
      case UInt8(ascii: "\""):
        guard let s = out.isEmpty ? "" : out.withUnsafeBufferPointer({ UTF8Validation.string($0.baseAddress!, count: $0.count) }) else {
          throw error(.invalidUTF8, "invalid UTF-8 in a JSON string")
        }
        return s
      case UInt8(ascii: "\\"):
        guard index < text.count else { throw error(.invalidJSON, "unterminated escape") }
        let e = text[index]
        index += 1
        switch e {
        case UInt8(ascii: "\""): out.append(0x22)
        case UInt8(ascii: "\\"): out.append(0x5C)
        case UInt8(ascii: "/"): out.append(0x2F)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
          var scalar = try readHex4()
          if (0xD800..<0xDC00).contains(scalar) {
            guard consumeLiteral("\\u") else { throw error(.invalidJSON, "unpaired surrogate") }
            let low = try readHex4()
            guard (0xDC00..<0xE000).contains(low) else { throw error(.invalidJSON, "unpaired surrogate") }
            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
          } else if (0xDC00..<0xE000).contains(scalar) {
            throw error(.invalidJSON, "unpaired surrogate")
          }
          guard let u = Unicode.Scalar(scalar) else { throw error(.invalidJSON, "invalid \\u escape") }
          out.append(contentsOf: Array(String(Character(u)).utf8))
        default:
          throw error(.invalidJSON, "invalid escape")
        }
      case ..<0x20:
        throw error(.invalidJSON, "control character in a string")
      default:
        out.append(b)
      }
    }
  }

  @usableFromInline mutating func readHex4() throws -> UInt32 {
    guard index + 4 <= text.count else { throw error(.invalidJSON, "truncated \\u escape") }
    var v: UInt32 = 0
    for _ in 0..<4 {
      let c = text[index]
      index += 1
      let d: UInt8
      switch c {
      case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
      case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
      case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
      default: throw error(.invalidJSON, "invalid \\u escape")
      }
      v = v << 4 | UInt32(d)
    }
    return v
  }

  /// The text of a JSON number token (checked against the JSON number grammar).
  @usableFromInline mutating func readNumberToken() throws -> String {
    skipWhitespace()
    let start = index
    while index < text.count, Self.isNumberByte(text[index]) { index += 1 }
    guard index > start else { throw error(.invalidJSON, "expected a value") }
    guard Self.isJSONNumber(text, start, index) else {
      throw error(.invalidJSON, "invalid number \(String(decoding: text[start..<index], as: UTF8.self))")
    }
    return String(decoding: text[start..<index], as: UTF8.self)
  }

  @usableFromInline static func isNumberByte(_ b: UInt8) -> Bool {
    (b >= 0x30 && b <= 0x39) || b == 0x2D || b == 0x2B || b == 0x2E || b == 0x65 || b == 0x45
  }

  /// JSON number grammar over `bytes[from..<to]`: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  @usableFromInline static func isJSONNumber(_ bytes: [UInt8], _ from: Int, _ to: Int) -> Bool {
    var i = from
    func digits() -> Int {
      let s = i
      while i < to, bytes[i] >= 0x30 && bytes[i] <= 0x39 { i += 1 }
      return i - s
    }
    if i < to, bytes[i] == 0x2D { i += 1 }
    if i < to, bytes[i] == 0x30 {
      i += 1
    } else if digits() == 0 {
      return false
    }
    if i < to, bytes[i] == 0x2E {
      i += 1
      if digits() == 0 { return false }
    }
    if i < to, bytes[i] == 0x65 || bytes[i] == 0x45 {
      i += 1
      if i < to, bytes[i] == 0x2B || bytes[i] == 0x2D { i += 1 }
      if digits() == 0 { return false }
    }
    return i == to
  }

  @usableFromInline static func isJSONNumber(_ s: String) -> Bool {
    let bytes = Array(s.utf8)
    return isJSONNumber(bytes, 0, bytes.count)
  }

  /// A number given as a JSON number or a string: its text.
  @usableFromInline mutating func readNumberText() throws -> (text: String, quoted: Bool) {
    if try peek() == UInt8(ascii: "\"") {
      return (try readQuoted(), true)
    }
    return (try readNumberToken(), false)
  }

  /// Reads an integer given as a JSON number or a string: digits are parsed in place; exponent
  /// and fraction forms (`1e2`, `5.0`) are accepted when the value is integral and in range.
  @usableFromInline mutating func readIntegral(min: Double, max: Double, what: String) throws -> (negative: Bool, magnitude: UInt64) {
    skipWhitespace()
    let start = index
    let quoted = index < text.count && text[index] == UInt8(ascii: "\"")
    var i = quoted ? index + 1 : index
    let negative = i < text.count && text[i] == UInt8(ascii: "-")
    if negative { i += 1 }
    let digitsStart = i
    var magnitude: UInt64 = 0
    var overflow = false
    while i < text.count, text[i] >= 0x30 && text[i] <= 0x39 {
      let (m1, o1) = magnitude.multipliedReportingOverflow(by: 10)
      let (m2, o2) = m1.addingReportingOverflow(UInt64(text[i] - 0x30))
      magnitude = m2
      overflow = overflow || o1 || o2
      i += 1
    }
    let digitCount = i - digitsStart
    let next: UInt8? = i < text.count ? text[i] : nil
    let simple = digitCount > 0 && (quoted ? next == UInt8(ascii: "\"") : (next.map { !Self.isNumberByte($0) } ?? true))
    if simple && !(!quoted && digitCount > 1 && text[digitsStart] == 0x30) {
      index = quoted ? i + 1 : i
      if overflow { throw error(.jsonTypeMismatch, "\(what) out of range") }
      return (negative && magnitude != 0, magnitude)
    }
    // Exponent or fraction forms: integral values only.
    index = start
    let (t, wasQuoted) = try readNumberText()
    guard !wasQuoted || (t.utf8.first != 0x20 && t.utf8.last != 0x20), Self.isJSONNumber(t),
      let d = Double(t), d == d.rounded(), d >= min, d <= max
    else {
      throw error(.jsonTypeMismatch, "invalid \(what) \(t)")
    }
    if d >= 0, let u = UInt64(exactly: d) { return (false, u) }
    if d < 0, let i = Int64(exactly: d) { return (true, i.magnitude) }
    throw error(.jsonTypeMismatch, "\(what) out of range: \(t)")
  }

  public mutating func readInt32() throws -> Int32 {
    let (negative, magnitude) = try readIntegral(min: -2147483648, max: 2147483647, what: "int32")
    guard magnitude <= (negative ? 2_147_483_648 : 2_147_483_647) else {
      throw error(.jsonTypeMismatch, "int32 out of range")
    }
    return negative ? Int32(truncatingIfNeeded: 0 &- magnitude) : Int32(magnitude)
  }

  public mutating func readUInt32() throws -> UInt32 {
    let (negative, magnitude) = try readIntegral(min: 0, max: 4294967295, what: "uint32")
    guard !negative, magnitude <= UInt64(UInt32.max) else { throw error(.jsonTypeMismatch, "uint32 out of range") }
    return UInt32(magnitude)
  }

  public mutating func readInt64() throws -> Int64 {
    let (negative, magnitude) = try readIntegral(min: -0x1p63, max: 0x1p63, what: "int64")
    guard magnitude <= (negative ? 1 << 63 : UInt64(Int64.max)) else {
      throw error(.jsonTypeMismatch, "int64 out of range")
    }
    return negative ? Int64(truncatingIfNeeded: 0 &- magnitude) : Int64(magnitude)
  }

  public mutating func readUInt64() throws -> UInt64 {
    let (negative, magnitude) = try readIntegral(min: 0, max: 0x1p64, what: "uint64")
    guard !negative else { throw error(.jsonTypeMismatch, "uint64 out of range") }
    return magnitude
  }

  public mutating func readDouble() throws -> Double {
    let (t, quoted) = try readNumberText()
    if quoted {
      switch t {
      case "NaN": return .nan
      case "Infinity": return .infinity
      case "-Infinity": return -.infinity
      default:
        guard Self.isJSONNumber(t) else { throw error(.jsonTypeMismatch, "invalid double \"\(t)\"") }
      }
    }
    guard let v = Double(t), v.isFinite else { throw error(.jsonTypeMismatch, "double out of range: \(t)") }
    return v
  }

  public mutating func readFloat() throws -> Float {
    let d = try readDouble()
    let f = Float(d)
    if d.isFinite, f.isInfinite {
      throw error(.jsonTypeMismatch, "float out of range: \(d)")
    }
    return f
  }

  public mutating func readBool() throws -> Bool {
    _ = try peek()
    if consumeLiteral("true") { return true }
    if consumeLiteral("false") { return false }
    throw error(.jsonTypeMismatch, "expected true or false")
  }

  public mutating func readString() throws -> String {
    guard try peek() == UInt8(ascii: "\"") else { throw error(.jsonTypeMismatch, "expected a string") }
    return try readQuoted()
  }

  public mutating func readBytes() throws -> [UInt8] {
    let s = try readString()
    guard let b = Base64.decode(s) else { throw error(.jsonTypeMismatch, "invalid base64") }
    return b
  }

  /// Reads an enum by name or number; an unknown name of a closed enum fails
  /// (unless unknown fields are ignored, when `nil` means "leave the field unset").
  public mutating func readEnum<E: Enum>(_ type: E.Type) throws -> E? {
    if try peek() == UInt8(ascii: "\"") {
      let name = try readQuoted()
      if let e = E(protoName: name) { return e }
      if ignoreUnknownFields { return nil }
      throw error(.jsonTypeMismatch, "unknown enum value \"\(name)\"")
    }
    let n = try readInt32()
    if let e = E(rawValue: n) { return e }
    if ignoreUnknownFields { return nil }
    throw error(.jsonTypeMismatch, "unknown enum number \(n)")
  }

  /// Reads a nested message (merging into `message`).
  public mutating func readMessage<M: Message>(into message: inout M) throws {
    try message.decodeJSON(from: &self)
  }

  // MARK: Map keys

  public func mapKeyInt32(_ key: String) throws -> Int32 {
    guard let v = Int32(key) else { throw error(.jsonTypeMismatch, "invalid int32 map key \"\(key)\"") }
    return v
  }
  public func mapKeyInt64(_ key: String) throws -> Int64 {
    guard let v = Int64(key) else { throw error(.jsonTypeMismatch, "invalid int64 map key \"\(key)\"") }
    return v
  }
  public func mapKeyUInt32(_ key: String) throws -> UInt32 {
    guard let v = UInt32(key) else { throw error(.jsonTypeMismatch, "invalid uint32 map key \"\(key)\"") }
    return v
  }
  public func mapKeyUInt64(_ key: String) throws -> UInt64 {
    guard let v = UInt64(key) else { throw error(.jsonTypeMismatch, "invalid uint64 map key \"\(key)\"") }
    return v
  }
  public func mapKeyBool(_ key: String) throws -> Bool {
    switch key {
    case "true": return true
    case "false": return false
    default: throw error(.jsonTypeMismatch, "invalid bool map key \"\(key)\"")
    }
  }
}

extension Message {
  /// Decodes a message from its proto3 JSON form.
  ///
  /// - Throws: ``QuadProtobufError`` (invalid JSON, unknown field, wrong value kind).
  public init(jsonString: String, ignoreUnknownFields: Bool = false, typeRegistry: TypeRegistry? = nil) throws {
    try self.init(jsonUTF8Bytes: Array(jsonString.utf8), ignoreUnknownFields: ignoreUnknownFields, typeRegistry: typeRegistry)
  }

  /// Decodes a message from proto3 JSON given as UTF-8 bytes.
  public init(jsonUTF8Bytes: [UInt8], ignoreUnknownFields: Bool = false, typeRegistry: TypeRegistry? = nil) throws {
    self.init()
    var reader = JSONReader(jsonUTF8Bytes, ignoreUnknownFields: ignoreUnknownFields, typeRegistry: typeRegistry)
    do {
      try decodeJSON(from: &reader)
      try reader.expectEnd()
    } catch var e as QuadProtobufError {
      if e.messageName == nil { e.messageName = Self.protoMessageName }
      throw e
    }
  }
}

/// The message types an `Any` may carry, by full proto name.
public struct TypeRegistry: Sendable {
  var types: [String: any Message.Type] = [:]

  public init(_ types: [any Message.Type] = []) {
    for t in types { register(t) }
  }

  /// Adds a type.
  public mutating func register(_ type: any Message.Type) {
    types[type.protoMessageName] = type
  }

  /// The type named by a type URL (`type.googleapis.com/pkg.Name`) or a full name.
  public func type(forURL url: String) -> (any Message.Type)? {
    let name = url.split(separator: "/").last.map(String.init) ?? url
    return types[name]
  }
}

/// Standard base64 (RFC 4648) for the JSON form of `bytes`: writes padded, reads padded,
/// unpadded and URL-safe.
public enum Base64 {
  @usableFromInline static let alphabet: [UInt8] = Array(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

  @inlinable public static func encode(_ input: [UInt8], into out: inout [UInt8]) {
    var i = 0
    let n = input.count
    out.reserveCapacity(out.count + (n + 2) / 3 * 4)
    while i + 3 <= n {
      let v = UInt32(input[i]) << 16 | UInt32(input[i + 1]) << 8 | UInt32(input[i + 2])
      out.append(alphabet[Int(v >> 18 & 63)])
      out.append(alphabet[Int(v >> 12 & 63)])
      out.append(alphabet[Int(v >> 6 & 63)])
      out.append(alphabet[Int(v & 63)])
      i += 3
    }
    if n - i == 1 {
      let v = UInt32(input[i]) << 16
      out.append(alphabet[Int(v >> 18 & 63)])
      out.append(alphabet[Int(v >> 12 & 63)])
      out.append(contentsOf: [61, 61])
    } else if n - i == 2 {
      let v = UInt32(input[i]) << 16 | UInt32(input[i + 1]) << 8
      out.append(alphabet[Int(v >> 18 & 63)])
      out.append(alphabet[Int(v >> 12 & 63)])
      out.append(alphabet[Int(v >> 6 & 63)])
      out.append(61)
    }
  }

  /// Decodes standard or URL-safe base64, padded or not; `nil` if malformed.
  public static func decode(_ s: String) -> [UInt8]? {
    var out: [UInt8] = []
    out.reserveCapacity(s.utf8.count * 3 / 4)
    var acc: UInt32 = 0
    var bits = 0
    var padding = 0
    var count = 0
    for c in s.utf8 {
      let v: UInt32
      switch c {
      case UInt8(ascii: "A")...UInt8(ascii: "Z"): v = UInt32(c - 65)
      case UInt8(ascii: "a")...UInt8(ascii: "z"): v = UInt32(c - 97 + 26)
      case UInt8(ascii: "0")...UInt8(ascii: "9"): v = UInt32(c - 48 + 52)
      case UInt8(ascii: "+"), UInt8(ascii: "-"): v = 62
      case UInt8(ascii: "/"), UInt8(ascii: "_"): v = 63
      case UInt8(ascii: "="):
        padding += 1
        count += 1
        continue
      default: return nil
      }
      if padding > 0 { return nil }
      count += 1
      acc = acc << 6 | v
      bits += 6
      if bits >= 8 {
        bits -= 8
        out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
      }
    }
    if padding > 2 || (padding > 0 && count % 4 != 0) || count % 4 == 1 { return nil }
    return out
  }
}
