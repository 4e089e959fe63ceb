// The proto3 JSON forms of the well-known types, which are not objects of their fields.
// Generated code for these types calls `encodeWellKnownJSON` / `decodeWellKnownJSON`.

// MARK: - Timestamp and Duration

/// Civil-calendar arithmetic for RFC 3339 timestamps (proleptic Gregorian, UTC).
enum CivilTime {
  /// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the range the JSON mapping allows.
  static let minSeconds: Int64 = -62_135_596_800
  static let maxSeconds: Int64 = 253_402_300_799

  static func daysFromCivil(_ y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
    let y = m <= 2 ? y0 - 1 : y0
    let era = (y >= 0 ? y : y - 399) / 400
    let yoe = y - era * 400
    let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    return era * 146_097 + doe - 719_468
  }

  static func civilFromDays(_ z0: Int64) -> (Int64, Int64, Int64) {
    let z = z0 + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
    let y = yoe + era * 400
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let d = doy - (153 * mp + 2) / 5 + 1
    let m = mp < 10 ? mp + 3 : mp - 9
    return (m <= 2 ? y + 1 : y, m, d)
  }

  static func pad(_ v: Int64, _ width: Int) -> String {
    let s = String(v)
    return String(repeating: "0", count: max(0, width - s.count)) + s
  }

  /// 0, 3, 6 or 9 fractional digits, as the JSON mapping prefers.
  static func fraction(_ nanos: Int32) -> String {
    if nanos == 0 { return "" }
    if nanos % 1_000_000 == 0 { return "." + pad(Int64(nanos / 1_000_000), 3) }
    if nanos % 1000 == 0 { return "." + pad(Int64(nanos / 1000), 6) }
    return "." + pad(Int64(nanos), 9)
  }
}

/// A cursor over ASCII text, for the small grammars of timestamps and durations.
struct TextScanner {
  var bytes: [UInt8]
  var i = 0
  init(_ s: String) { bytes = Array(s.utf8) }
  var atEnd: Bool { i == bytes.count }
  mutating func digits(_ count: Int) -> Int64? {
    guard i + count <= bytes.count else { return nil }
    var v: Int64 = 0
    for _ in 0..<count {
      let c = bytes[i]
      guard c >= 0x30 && c <= 0x39 else { return nil }
      v = v * 10 + Int64(c - 0x30)
      i += 1
    }
    return v
  }
  mutating func take(_ c: Character) -> Bool {
    guard i < bytes.count, bytes[i] == c.asciiValue! else { return false }
    i += 1
    return true
  }
  /// Optional `.ddddddddd` (1 to 9 digits) as nanoseconds.
  mutating func fractionNanos() -> Int32? {
    guard take(".") else { return 0 }
    var v: Int64 = 0
    var n = 0
    while i < bytes.count, bytes[i] >= 0x30 && bytes[i] <= 0x39 {
      guard n < 9 else { return nil }
      v = v * 10 + Int64(bytes[i] - 0x30)
      n += 1
      i += 1
    }
    guard n > 0 else { return nil }
    for _ in n..<9 { v *= 10 }
    return Int32(v)
  }
}

extension Google_Protobuf_Timestamp {
  func encodeWellKnownJSON(to writer: inout JSONWriter) throws {
    guard seconds >= CivilTime.minSeconds, seconds <= CivilTime.maxSeconds, nanos >= 0, nanos < 1_000_000_000 else {
      throw QuadProtobufError(code: .invalidValue, message: "timestamp out of range: \(seconds)s \(nanos)ns",
                              messageName: Self.protoMessageName)
    }
    let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
    let secs = seconds - days * 86400
    let (y, m, d) = CivilTime.civilFromDays(days)
    let text = "\(CivilTime.pad(y, 4))-\(CivilTime.pad(m, 2))-\(CivilTime.pad(d, 2))T"
      + "\(CivilTime.pad(secs / 3600, 2)):\(CivilTime.pad(secs / 60 % 60, 2)):\(CivilTime.pad(secs % 60, 2))"
      + CivilTime.fraction(nanos) + "Z"
    writer.writeString(text)
  }

  mutating func decodeWellKnownJSON(from reader: inout JSONReader) throws {
    let text = try reader.readString()
    let bad = QuadProtobufError(code: .invalidValue, message: "invalid RFC 3339 timestamp \"\(text)\"",
                                messageName: Self.protoMessageName)
    var s = TextScanner(text)
    guard let y = s.digits(4), s.take("-"), let mo = s.digits(2), s.take("-"), let d = s.digits(2),
      s.take("T") || s.take("t"), let h = s.digits(2), s.take(":"), let mi = s.digits(2), s.take(":"),
      let sec = s.digits(2), let nanos = s.fractionNanos(),
      (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, sec < 60
    else { throw bad }
    var offset: Int64 = 0
    if s.take("Z") || s.take("z") {
    } else {
      let sign: Int64
      if s.take("+") { sign = 1 } else if s.take("-") { sign = -1 } else { throw bad }
      guard let oh = s.digits(2), s.take(":"), let om = s.digits(2), oh < 24, om < 60 else { throw bad }
      offset = sign * (oh * 3600 + om * 60)
    }
    guard s.atEnd else { throw bad }
    let days = CivilTime.daysFromCivil(y, mo, d)
    guard CivilTime.civilFromDays(days) == (y, mo, d) else { throw bad }  // 2023-02-30
    let total = days * 86400 + h * 3600 + mi * 60 + sec - offset
    guard total >= CivilTime.minSeconds, total <= CivilTime.maxSeconds else { throw bad }
    seconds = total
    self.nanos = nanos
  }
}

extension Google_Protobuf_Duration {
  static let maxSeconds: Int64 = 315_576_000_000

  func encodeWellKnownJSON(to writer: inout JSONWriter) throws {
    guard abs(seconds) <= Self.maxSeconds, abs(nanos) < 1_000_000_000,
      !(seconds > 0 && nanos < 0), !(seconds < 0 && nanos > 0)
    else {
      throw QuadProtobufError(code: .invalidValue, message: "duration out of range: \(seconds)s \(nanos)ns",
                              messageName: Self.protoMessageName)
    }
    let negative = seconds < 0 || nanos < 0
    writer.writeString((negative ? "-" : "") + "\(abs(seconds))" + CivilTime.fraction(abs(nanos)) + "s")
  }

  mutating func decodeWellKnownJSON(from reader: inout JSONReader) throws {
    let text = try reader.readString()
    let bad = QuadProtobufError(code: .invalidValue, message: "invalid duration \"\(text)\"",
                                messageName: Self.protoMessageName)
    var s = TextScanner(text)
    let negative = s.take("-")
    var secs: Int64 = 0
    var n = 0
    while !s.atEnd, let d = s.digits(1) {
      secs = secs * 10 + d
      n += 1
      guard n <= 12 else { throw bad }
    }
    guard n > 0, let nanos = s.fractionNanos(), s.take("s"), s.atEnd, secs <= Self.maxSeconds else { throw bad }
    seconds = negative ? -secs : secs
    self.nanos = negative ? -nanos : nanos
  }
}

// MARK: - FieldMask

extension Google_Protobuf_FieldMask {
  func encodeWellKnownJSON(to writer: inout JSONWriter) throws {
    var parts: [String] = []
    for path in paths {
      // Only paths that survive the round trip snake_case -> lowerCamel -> snake_case.
      guard !path.contains(where: { $0.isUppercase }), !path.contains("__") else {
        throw QuadProtobufError(code: .invalidValue, message: "field mask path \"\(path)\" has no JSON form",
                                messageName: Self.protoMessageName)
      }
      parts.append(path.split(separator: ".", omittingEmptySubsequences: false).map { seg in
        var out = ""
        var upper = false
        for c in seg {
          if c == "_" { upper = true; continue }
          out += upper ? c.uppercased() : String(c)
          upper = false
        }
        return out
      }.joined(separator: "."))
    }
    writer.writeString(parts.joined(separator: ","))
  }

  mutating func decodeWellKnownJSON(from reader: inout JSONReader) throws {
    let text = try reader.readString()
    paths = text.isEmpty ? [] : text.split(separator: ",", omittingEmptySubsequences: false).map { p in
      var out = ""
      for c in p {
        if c.isUppercase { out += "_" + c.lowercased() } else { out.append(c) }
      }
      return out
    }
  }
}

// MARK: - Wrappers

extension Google_Protobuf_DoubleValue {
  func encodeWellKnownJSON(to writer: inout JSONWriter) throws { writer.writeDouble(value) }
  mutating func decodeWellKnownJSON(from reader: inout JSONReader) throws { value = try reader.readDouble() }
}
extension Google_Protobuf_FloatValue {
  func encodeWellKnownJSON(to writer: inout JSONWriter) throws { writer.writeFloat(value) }
  mutating func decodeWellKnownJSON(from reader: inout JSONReader) throws { value = try reader.readFloat() }
}
extension Google_Protobuf_Int64Value {
  func encodeWellKnownJSON(to writer: inout JSONWriter) throws { writer.writeInt64(value) }
  mutating func decodeWellKnownJSON(from reader: inout JSONReader) throws { value = try reader.readInt64() }
}
extension Google_Protobuf_UInt64Value {
  func encodeWellKnownJSON(to writer: inout JSONWriter) throws { writer.writeUInt64(value) }
  mutating func decodeWellKnownJSON(from reader: inout JSONReader) throws { value = try reader.readUInt64() }
}
extension Google_Protobuf_Int32Value {
  func encodeWellKnownJSON(to writer: inout JSONWriter) throws { writer.writeInt32(value) }
  mutating func decodeWellKnownJSON(from reader: inout JSONReader) throws { value = try reader.readInt32() }
}
extension Google_Protobuf_UInt32Value {
  func encodeWellKnownJSON(to writer: inout JSONWriter) throws { writer.writeUInt32(value) }
  mutating func decodeWellKnownJSON(from reader: inout JSONReader) throws { value = try reader.readUInt32() }
}
extension Google_Protobuf_BoolValue {
  func encodeWellKnownJSON(to writer: inout JSONWriter) throws { writer.writeBool(value) }
  mutating func decodeWellKnownJSON(from reader: inout JSONReader) throws { value = try reader.readBool() }
}
extension Google_Protobuf_StringValue {
  func encodeWellKnownJSON(to writer: inout JSONWriter) throws { writer.writeString(value) }
  mutating func decodeWellKnownJSON(from reader: inout JSONReader) throws { value = try reader.readString() }
}
extension Google_Protobuf_BytesValue {
  func encodeWellKnownJSON(to writer: inout JSONWriter) throws { writer.writeBytes(value) }
  mutating func decodeWellKnownJSON(from reader: inout JSONReader) throws { value = try reader.readBytes() }
}

// MARK: - Struct, Value, ListValue

extension Google_Protobuf_Struct {
  func encodeWellKnownJSON(to writer: inout JSONWriter) throws {
    writer.beginObject()
    for k in fields.keys.sorted() {
      writer.mapKey(k)
      try fields[k]!.encodeWellKnownJSON(to: &writer)
    }
    writer.endObject()
  }

  mutating func decodeWellKnownJSON(from reader: inout JSONReader) throws {
    try reader.beginObject()
    while let key = try reader.nextKey() {
      var v = Google_Protobuf_Value()
      try v.decodeWellKnownJSON(from: &reader)
      fields[key] = v
    }
  }
}

extension Google_Protobuf_ListValue {
  func encodeWellKnownJSON(to writer: inout JSONWriter) throws {
    writer.beginArray()
    for v in values {
      writer.element()
      try v.encodeWellKnownJSON(to: &writer)
    }
    writer.endArray()
  }

  mutating func decodeWellKnownJSON(from reader: inout JSONReader) throws {
    try reader.beginArray()
    while try reader.nextElement() {
      var v = Google_Protobuf_Value()
      try v.decodeWellKnownJSON(from: &reader)
      values.append(v)
    }
  }
}

extension Google_Protobuf_Value {
  func encodeWellKnownJSON(to writer: inout JSONWriter) throws {
    switch kind {
    case .nullValue?: writer.writeNull()
    case .numberValue(let d)?:
      guard d.isFinite else {
        throw QuadProtobufError(code: .invalidValue, message: "Value cannot hold \(d) in JSON",
                                messageName: Self.protoMessageName)
      }
      writer.writeDouble(d)
    case .stringValue(let s)?: writer.writeString(s)
    case .boolValue(let b)?: writer.writeBool(b)
    case .structValue(let s)?: try s.encodeWellKnownJSON(to: &writer)
    case .listValue(let l)?: try l.encodeWellKnownJSON(to: &writer)
    case nil:
      throw QuadProtobufError(code: .invalidValue, message: "Value with no kind set has no JSON form",
                              messageName: Self.protoMessageName)
    }
  }

  mutating func decodeWellKnownJSON(from reader: inout JSONReader) throws {
    switch try reader.peek() {
    case UInt8(ascii: "n"):
      _ = try reader.readNull()
      kind = .nullValue(.nullValue)
    case UInt8(ascii: "t"), UInt8(ascii: "f"): kind = .boolValue(try reader.readBool())
    case UInt8(ascii: "\""): kind = .stringValue(try reader.readString())
    case UInt8(ascii: "{"):
      var s = Google_Protobuf_Struct()
      try s.decodeWellKnownJSON(from: &reader)
      kind = .structValue(s)
    case UInt8(ascii: "["):
      var l = Google_Protobuf_ListValue()
      try l.decodeWellKnownJSON(from: &reader)
      kind = .listValue(l)
    default:
      kind = .numberValue(try reader.readDouble())
    }
  }
}

// MARK: - Any

extension Google_Protobuf_Any {
  func encodeWellKnownJSON(to writer: inout JSONWriter) throws {
    if typeUrl.isEmpty && value.isEmpty {
      writer.beginObject()
      writer.endObject()
      return
    }
    guard let type = writer.typeRegistry?.type(forURL: typeUrl) else {
      throw QuadProtobufError(code: .anyTypeUnknown, message: "no type registered for Any \"\(typeUrl)\"",
                              messageName: Self.protoMessageName)
    }
    let message = try type.init(serializedBytes: value)
    var inner = JSONWriter(typeRegistry: writer.typeRegistry)
    try message.encodeJSON(to: &inner)
    writer.beginObject()
    writer.key("@type")
    writer.writeString(typeUrl)
    if wellKnownJSONNames.contains(type.protoMessageName) {
      writer.key("value")
      writer.bytes.append(contentsOf: inner.bytes)
      writer.endObject()
    } else if inner.bytes.count > 2 {
      // Splice the payload's fields in after "@type": `{"a":1}` → `,"a":1}`.
      writer.bytes.append(UInt8(ascii: ","))
      writer.bytes.append(contentsOf: inner.bytes.dropFirst())
      writer.needsComma = true
    } else {
      writer.endObject()
    }
  }

  mutating func decodeWellKnownJSON(from reader: inout JSONReader) throws {
    let raw = try reader.captureValue()
    // First pass: find "@type" wherever it is among the keys.
    var scan = JSONReader(raw, ignoreUnknownFields: true)
    try scan.beginObject()
    var url: String?
    while let key = try scan.nextKey() {
      if key == "@type" { url = try scan.readString() } else { try scan.skipValue() }
    }
    guard let url else {
      if raw.filter({ $0 > 0x20 }).count == 2 { return }  // {} is the empty Any
      throw QuadProtobufError(code: .invalidJSON, message: "Any without \"@type\"", messageName: Self.protoMessageName)
    }
    guard let type = reader.typeRegistry?.type(forURL: url) else {
      throw QuadProtobufError(code: .anyTypeUnknown, message: "no type registered for Any \"\(url)\"",
                              messageName: Self.protoMessageName)
    }
    var message = type.init()
    var body = JSONReader(raw, ignoreUnknownFields: reader.ignoreUnknownFields, typeRegistry: reader.typeRegistry)
    if wellKnownJSONNames.contains(type.protoMessageName) {
      try body.beginObject()
      while let key = try body.nextKey() {
        switch key {
        case "@type": try body.skipValue()
        case "value": try message.decodeJSON(from: &body)
        default: try body.unknownField(key, in: Self.protoMessageName)
        }
      }
    } else {
      body.skipTypeKey = true
      try message.decodeJSON(from: &body)
    }
    typeUrl = url
    value = message.serializedBytes()
  }
}

/// Full names of the types whose JSON is not an object of fields (an `Any` wraps them in "value").
let wellKnownJSONNames: Set<String> = [
  "google.protobuf.Any", "google.protobuf.Timestamp", "google.protobuf.Duration",
  "google.protobuf.FieldMask", "google.protobuf.Struct", "google.protobuf.Value",
  "google.protobuf.ListValue", "google.protobuf.DoubleValue", "google.protobuf.FloatValue",
  "google.protobuf.Int64Value", "google.protobuf.UInt64Value", "google.protobuf.Int32Value",
  "google.protobuf.UInt32Value", "google.protobuf.BoolValue", "google.protobuf.StringValue",
  "google.protobuf.BytesValue",
]
