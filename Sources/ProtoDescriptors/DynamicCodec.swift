internal import QuadProtobuf

/// Converts messages between proto3 JSON and protobuf binary knowing only their descriptors:
/// what `quad call` does with types it learned from reflection or a `.proto` file.
///
/// Follows the proto3 JSON mapping as the generated types do: lowerCamelCase names out (either
/// name in), 64-bit integers as strings, bytes as base64, enums by name, `null` for unset, and
/// the well-known types in their special forms (`Timestamp`, `Duration`, `FieldMask`, `Struct`,
/// `Value`, `ListValue`, the wrappers, and `Any` with its type resolved in the pool).
///
/// - Important: nesting is limited to 100 levels both ways, so no input can exhaust the stack.
package struct DynamicCodec: Sendable {
  package let pool: DescriptorPool
  /// Skip JSON keys the message does not declare instead of failing.
  package var ignoreUnknownFields: Bool

  package init(pool: DescriptorPool, ignoreUnknownFields: Bool = false) {
    self.pool = pool
    self.ignoreUnknownFields = ignoreUnknownFields
  }

  static let maximumDepth = 100

  // MARK: Entry points

  /// The binary encoding of the message of type `type` written as `json`.
  ///
  /// - Throws: ``DynamicMessageError`` for an unknown type, or a `QuadProtobufError` /
  ///   ``DynamicMessageError`` saying what in the JSON does not fit the type.
  package func binary(fromJSON json: [UInt8], type: String) throws -> [UInt8] {
    let message = try messageType(type)
    var reader = JSONReader(json, ignoreUnknownFields: ignoreUnknownFields)
    let bytes = try encodeMessage(message, &reader, depth: 0)
    try reader.expectEnd()
    return bytes
  }

  /// The proto3 JSON (compact) of the binary message `bytes` of type `type`.
  ///
  /// - Throws: ``DynamicMessageError`` for an unknown type or bytes that are not that message.
  package func json(fromBinary bytes: [UInt8], type: String) throws -> String {
    let message = try messageType(type)
    var writer = JSONWriter()
    try writeMessage(message, bytes, &writer, depth: 0)
    return String(decoding: writer.bytes, as: UTF8.self)
  }

  private func messageType(_ name: String) throws(DynamicMessageError) -> DescriptorPool.MessageType {
    guard let m = pool.message(name) else { throw DynamicMessageError("unknown message type \(name)") }
    return m
  }

  // MARK: Field facts

  typealias Field = Google_Protobuf_FieldDescriptorProto

  /// The JSON name protoc gives a field (lowerCamelCase of the proto name).
  static func jsonName(_ f: Field) -> String {
    if f.hasJsonName { return f.jsonName }
    var out = ""
    var upper = false
    for c in f.name {
      if c == "_" {
        upper = true
      } else {
        out.append(upper ? Character(c.uppercased()) : c)
        upper = false
      }
    }
    return out
  }

  private func mapEntry(_ f: Field) -> DescriptorPool.MessageType? {
    guard f.label == .repeated, f.type == .message, let m = pool.message(f.typeName), m.descriptor.options.mapEntry else {
      return nil
    }
    return m
  }

  /// A proto3 scalar without `optional` or a oneof: its default value is not written.
  private static func implicitPresence(_ f: Field, in m: DescriptorPool.MessageType) -> Bool {
    m.proto3 && f.label != .repeated && !f.proto3Optional && !f.hasOneofIndex && f.type != .message && f.type != .group
  }

  private static func packable(_ f: Field) -> Bool {
    switch f.type {
    case .string, .bytes, .message, .group: return false
    default: return true
    }
  }

  // MARK: Well-known types

  private struct WellKnown: Sendable {
    let read: @Sendable (inout JSONReader) throws -> [UInt8]
    let write: @Sendable ([UInt8], inout JSONWriter) throws -> Void
  }

  private static func wellKnown<M: Message>(_ type: M.Type) -> (String, WellKnown) {
    (M.protoMessageName, WellKnown(
      read: { reader in
        var m = M()
        try reader.readMessage(into: &m)
        return m.serializedBytes()
      },
      write: { bytes, writer in try writer.writeMessage(M(serializedBytes: bytes)) }))
  }

  private static let wellKnownTypes: [String: WellKnown] = Dictionary(uniqueKeysWithValues: [
    wellKnown(Google_Protobuf_Timestamp.self), wellKnown(Google_Protobuf_Duration.self),
    wellKnown(Google_Protobuf_FieldMask.self), wellKnown(Google_Protobuf_Struct.self),
    wellKnown(Google_Protobuf_Value.self), wellKnown(Google_Protobuf_ListValue.self),
    wellKnown(Google_Protobuf_DoubleValue.self), wellKnown(Google_Protobuf_FloatValue.self),
    wellKnown(Google_Protobuf_Int64Value.self), wellKnown(Google_Protobuf_UInt64Value.self),
    wellKnown(Google_Protobuf_Int32Value.self), wellKnown(Google_Protobuf_UInt32Value.self),
    wellKnown(Google_Protobuf_BoolValue.self), wellKnown(Google_Protobuf_StringValue.self),
    wellKnown(Google_Protobuf_BytesValue.self),
  ])

  private static let anyName = "google.protobuf.Any"

  /// Types whose JSON is not an object of fields (inside an `Any` they go under `"value"`).
  private static func isSpecial(_ name: String) -> Bool { wellKnownTypes[name] != nil || name == anyName }

  // MARK: JSON → binary

  private func encodeMessage(_ m: DescriptorPool.MessageType, _ reader: inout JSONReader, depth: Int) throws -> [UInt8] {
    guard depth < Self.maximumDepth else { throw DynamicMessageError("JSON nested deeper than \(Self.maximumDepth)") }
    if let wkt = Self.wellKnownTypes[m.name] { return try wkt.read(&reader) }
    if m.name == Self.anyName { return try encodeAny(&reader, depth: depth) }
    try reader.beginObject()
    return try encodeFields(m, &reader, skipTypeKey: false, depth: depth)
  }

  private func field(_ m: DescriptorPool.MessageType, jsonKey: String) -> Field? {
    m.descriptor.field.first { Self.jsonName($0) == jsonKey } ?? m.descriptor.field.first { $0.name == jsonKey }
  }

  /// The fields of an object whose `{` has been read, up to and including its `}`.
  private func encodeFields(_ m: DescriptorPool.MessageType, _ reader: inout JSONReader, skipTypeKey: Bool, depth: Int) throws -> [UInt8] {
    var w = WireWriter()
    var seen: Set<Int32> = []
    var oneofs: Set<Int32> = []
    while let key = try reader.nextKey() {
      if skipTypeKey && key == "@type" {
        try reader.skipValue()
        continue
      }
      guard let f = field(m, jsonKey: key) else {
        try reader.unknownField(key, in: m.name)
        continue
      }
      guard seen.insert(f.number).inserted else { throw DynamicMessageError("field \(key) of \(m.name) given twice") }
      if try reader.readNull() {
        // null is "unset", except for google.protobuf.Value, whose null is a value.
        if f.type == .message, f.label != .repeated, pool.message(f.typeName)?.name == "google.protobuf.Value" {
          w.lengthDelimited(f.number, [0x08, 0x00])
        }
        continue
      }
      if f.hasOneofIndex && !f.proto3Optional {
        guard oneofs.insert(f.oneofIndex).inserted else {
          throw DynamicMessageError("more than one field of oneof \(m.descriptor.oneofDecl[Int(f.oneofIndex)].name) in \(m.name)")
        }
      }
      if let entry = mapEntry(f) {
        try encodeMap(f, entry, &reader, &w, depth: depth)
      } else if f.label == .repeated {
        try encodeRepeated(f, m, &reader, &w, depth: depth)
      } else {
        var one = WireWriter()
        let isDefault = try encodeSingle(f, &reader, &one, depth: depth)
        if !(isDefault && Self.implicitPresence(f, in: m)) { w.bytes.append(contentsOf: one.bytes) }
      }
    }
    return w.bytes
  }

  private func encodeMap(_ f: Field, _ entry: DescriptorPool.MessageType, _ reader: inout JSONReader, _ w: inout WireWriter, depth: Int) throws {
    guard let keyField = entry.descriptor.field.first(where: { $0.number == 1 }),
      let valueField = entry.descriptor.field.first(where: { $0.number == 2 })
    else { throw DynamicMessageError("map entry \(entry.name) lacks its key or value field") }
    try reader.beginObject()
    while let key = try reader.nextKey() {
      var e = WireWriter()
      // The key, given as a JSON string, read as the key field's type.
      var keyReader = JSONReader(Array(Self.quotedKey(key, keyField).utf8))
      _ = try encodeSingle(keyField, &keyReader, &e, depth: depth)
      if try reader.readNull() {
        guard valueField.type == .message, pool.message(valueField.typeName)?.name == "google.protobuf.Value" else {
          throw DynamicMessageError("null value for key \(key) of map \(f.name)")
        }
        e.lengthDelimited(2, [0x08, 0x00])
      } else {
        _ = try encodeSingle(valueField, &reader, &e, depth: depth)
      }
      w.lengthDelimited(f.number, e.bytes)
    }
  }

  /// A map key as JSON text its key type reads: string keys stay strings, numbers and bools bare.
  private static func quotedKey(_ key: String, _ f: Field) -> String {
    var w = JSONWriter()
    w.writeString(key)
    let quoted = String(decoding: w.bytes, as: UTF8.self)
    switch f.type {
    case .string: return quoted
    case .bool: return key == "true" || key == "false" ? key : quoted
    default: return quoted  // integers are accepted as quoted strings
    }
  }

  private func encodeRepeated(_ f: Field, _ m: DescriptorPool.MessageType, _ reader: inout JSONReader, _ w: inout WireWriter, depth: Int) throws {
    try reader.beginArray()
    let packed = Self.packable(f) && (f.options.hasPacked ? f.options.packed : m.proto3)
    var run = WireWriter()
    while try reader.nextElement() {
      if try reader.readNull() {
        guard f.type == .message, pool.message(f.typeName)?.name == "google.protobuf.Value" else {
          throw DynamicMessageError("null element in repeated field \(f.name)")
        }
        w.lengthDelimited(f.number, [0x08, 0x00])
        continue
      }
      if packed {
        var one = WireWriter()
        _ = try encodeSingle(f, &reader, &one, depth: depth)
        // Drop the tag: a packed run holds bare values.
        var r = WireReader(one.bytes)
        if let (_, value) = try r.next() {
          switch value {
          case .varint(let v): run.varint(v)
          case .fixed32(let v): run.fixed32(v)
          case .fixed64(let v): run.fixed64(v)
          case .lengthDelimited, .group: break
          }
        }
      } else {
        _ = try encodeSingle(f, &reader, &w, depth: depth)
      }
    }
    if packed && !run.bytes.isEmpty { w.lengthDelimited(f.number, run.bytes) }
  }

  /// Writes one value of field `f` (tag included); returns whether it is the type's default.
  private func encodeSingle(_ f: Field, _ reader: inout JSONReader, _ w: inout WireWriter, depth: Int) throws -> Bool {
    let n = f.number
    switch f.type {
    case .int32:
      let v = try reader.readInt32()
      w.tag(n, 0)
      w.varint(UInt64(bitPattern: Int64(v)))
      return v == 0
    case .sint32:
      let v = try reader.readInt32()
      w.tag(n, 0)
      w.varint(UInt64(UInt32(bitPattern: (v << 1) ^ (v >> 31))))
      return v == 0
    case .sfixed32:
      let v = try reader.readInt32()
      w.tag(n, 5)
      w.fixed32(UInt32(bitPattern: v))
      return v == 0
    case .int64:
      let v = try reader.readInt64()
      w.tag(n, 0)
      w.varint(UInt64(bitPattern: v))
      return v == 0
    case .sint64:
      let v = try reader.readInt64()
      w.tag(n, 0)
      w.varint(UInt64(bitPattern: (v << 1) ^ (v >> 63)))
      return v == 0
    case .sfixed64:
      let v = try reader.readInt64()
      w.tag(n, 1)
      w.fixed64(UInt64(bitPattern: v))
      return v == 0
    case .uint32:
      let v = try reader.readUInt32()
      w.tag(n, 0)
      w.varint(UInt64(v))
      return v == 0
    case .fixed32:
      let v = try reader.readUInt32()
      w.tag(n, 5)
      w.fixed32(v)
      return v == 0
    case .uint64:
      let v = try reader.readUInt64()
      w.tag(n, 0)
      w.varint(v)
      return v == 0
    case .fixed64:
      let v = try reader.readUInt64()
      w.tag(n, 1)
      w.fixed64(v)
      return v == 0
    case .double:
      let v = try reader.readDouble()
      w.tag(n, 1)
      w.fixed64(v.bitPattern)
      return v.bitPattern == 0
    case .float:
      let v = try reader.readFloat()
      w.tag(n, 5)
      w.fixed32(v.bitPattern)
      return v.bitPattern == 0
    case .bool:
      let v = try reader.readBool()
      w.tag(n, 0)
      w.varint(v ? 1 : 0)
      return !v
    case .string:
      let v = try reader.readString()
      w.lengthDelimited(n, Array(v.utf8))
      return v.isEmpty
    case .bytes:
      let v = try reader.readBytes()
      w.lengthDelimited(n, v)
      return v.isEmpty
    case .enum:
      let v = try enumNumber(f, &reader)
      w.tag(n, 0)
      w.varint(UInt64(bitPattern: Int64(v)))
      return v == 0
    case .message:
      let m = try messageType(f.typeName)
      w.lengthDelimited(n, try encodeMessage(m, &reader, depth: depth + 1))
      return false
    case .group:
      let m = try messageType(f.typeName)
      let body = try encodeMessage(m, &reader, depth: depth + 1)
      w.tag(n, 3)
      w.bytes.append(contentsOf: body)
      w.tag(n, 4)
      return false
    }
  }

  private func enumNumber(_ f: Field, _ reader: inout JSONReader) throws -> Int32 {
    guard let e = pool.enumType(f.typeName) else { throw DynamicMessageError("unknown enum type \(f.typeName)") }
    if try reader.peekByte() == UInt8(ascii: "\"") {
      let name = try reader.readString()
      guard let v = e.value.first(where: { $0.name == name }) else {
        throw DynamicMessageError("\(name) is not a value of enum \(f.typeName.dropFirst()) (field \(f.name))")
      }
      return v.number
    }
    return try reader.readInt32()
  }

  private func encodeAny(_ reader: inout JSONReader, depth: Int) throws -> [UInt8] {
    let text = try reader.captureValue()
    var scan = JSONReader(text, ignoreUnknownFields: true)
    try scan.beginObject()
    var url: String?
    var keys = 0
    while let key = try scan.nextKey() {
      keys += 1
      if key == "@type" { url = try scan.readString() } else { try scan.skipValue() }
    }
    guard let url else {
      if keys == 0 { return [] }
      throw DynamicMessageError("an Any in JSON needs \"@type\"")
    }
    let name = String(url[url.index(after: url.lastIndex(of: "/") ?? url.index(before: url.startIndex))...])
    guard let m = pool.message(name) else { throw DynamicMessageError("Any carries \(url), a type this pool does not know") }
    var body = JSONReader(text, ignoreUnknownFields: ignoreUnknownFields)
    try body.beginObject()
    var payload: [UInt8] = []
    if Self.isSpecial(m.name) {
      while let key = try body.nextKey() {
        switch key {
        case "@type": try body.skipValue()
        case "value": payload = try encodeMessage(m, &body, depth: depth + 1)
        default: throw DynamicMessageError("an Any of \(m.name) takes only \"@type\" and \"value\", not \"\(key)\"")
        }
      }
    } else {
      payload = try encodeFields(m, &body, skipTypeKey: true, depth: depth + 1)
    }
    var w = WireWriter()
    w.lengthDelimited(1, Array(url.utf8))
    if !payload.isEmpty { w.lengthDelimited(2, payload) }
    return w.bytes
  }

  // MARK: Binary → JSON

  private func writeMessage(_ m: DescriptorPool.MessageType, _ bytes: [UInt8], _ w: inout JSONWriter, depth: Int) throws {
    guard depth < Self.maximumDepth else { throw DynamicMessageError("message nested deeper than \(Self.maximumDepth)") }
    if let wkt = Self.wellKnownTypes[m.name] {
      try wkt.write(bytes, &w)
      return
    }
    if m.name == Self.anyName {
      try writeAny(bytes, &w, depth: depth)
      return
    }
    w.beginObject()
    try writeFields(m, bytes, &w, depth: depth)
    w.endObject()
  }

  private func writeFields(_ m: DescriptorPool.MessageType, _ bytes: [UInt8], _ w: inout JSONWriter, depth: Int) throws {
    var values: [Int32: [WireValue]] = [:]
    var r = WireReader(bytes)
    while let (n, v) = try r.next() { values[n, default: []].append(v) }
    for f in m.descriptor.field {
      guard let vs = values[f.number] else { continue }
      if let entry = mapEntry(f) {
        w.mapKey(Self.jsonName(f))
        try writeMap(f, entry, vs, &w, depth: depth)
      } else if f.label == .repeated {
        w.mapKey(Self.jsonName(f))
        w.beginArray()
        for v in try expandPacked(f, vs) {
          w.element()
          try writeSingle(f, v, &w, depth: depth)
        }
        w.endArray()
      } else {
        var last = vs[vs.count - 1]
        if f.type == .message, vs.count > 1 {
          // Repeated occurrences of a singular message merge: their bytes concatenate.
          var merged: [UInt8] = []
          for case .lengthDelimited(let b) in vs { merged += b }
          last = .lengthDelimited(merged)
        }
        if Self.implicitPresence(f, in: m), Self.isDefault(f, last) { continue }
        w.mapKey(Self.jsonName(f))
        try writeSingle(f, last, &w, depth: depth)
      }
    }
  }

  private static func isDefault(_ f: Field, _ v: WireValue) -> Bool {
    switch v {
    case .varint(let x): return x == 0
    case .fixed32(let x): return x == 0
    case .fixed64(let x): return x == 0
    case .lengthDelimited(let b): return b.isEmpty
    case .group: return false
    }
  }

  /// Packed runs of a repeated scalar, split into their values.
  private func expandPacked(_ f: Field, _ vs: [WireValue]) throws -> [WireValue] {
    guard Self.packable(f) else { return vs }
    var out: [WireValue] = []
    for v in vs {
      guard case .lengthDelimited(let run) = v else {
        out.append(v)
        continue
      }
      var r = WireReader(run)
      while !r.atEnd {
        switch f.type {
        case .fixed32, .sfixed32, .float: out.append(.fixed32(UInt32(try r.fixed(4))))
        case .fixed64, .sfixed64, .double: out.append(.fixed64(try r.fixed(8)))
        default: out.append(.varint(try r.varint()))
        }
      }
    }
    return out
  }

  private func writeMap(_ f: Field, _ entry: DescriptorPool.MessageType, _ vs: [WireValue], _ w: inout JSONWriter, depth: Int) throws {
    guard let keyField = entry.descriptor.field.first(where: { $0.number == 1 }),
      let valueField = entry.descriptor.field.first(where: { $0.number == 2 })
    else { throw DynamicMessageError("map entry \(entry.name) lacks its key or value field") }
    w.beginObject()
    for v in vs {
      guard case .lengthDelimited(let bytes) = v else { throw DynamicMessageError("map \(f.name) entry is not length-delimited") }
      var key: WireValue?
      var value: WireValue?
      var r = WireReader(bytes)
      while let (n, x) = try r.next() {
        if n == 1 { key = x } else if n == 2 { value = x }
      }
      w.mapKey(try mapKeyText(keyField, key))
      if let value {
        try writeSingle(valueField, value, &w, depth: depth)
      } else {
        try writeDefault(valueField, &w, depth: depth)
      }
    }
    w.endObject()
  }

  private func mapKeyText(_ f: Field, _ v: WireValue?) throws -> String {
    guard let v else { return f.type == .bool ? "false" : (f.type == .string ? "" : "0") }
    var w = JSONWriter()
    try writeSingle(f, v, &w, depth: 0)
    var text = String(decoding: w.bytes, as: UTF8.self)
    if f.type == .string {
      guard case .lengthDelimited(let b) = v, let s = String(validating: b, as: UTF8.self) else { return "" }
      return s
    }
    if text.hasPrefix("\"") { text = String(text.dropFirst().dropLast()) }
    return text
  }

  private func writeDefault(_ f: Field, _ w: inout JSONWriter, depth: Int) throws {
    switch f.type {
    case .message, .group: try writeSingle(f, .lengthDelimited([]), &w, depth: depth)
    case .string, .bytes: w.writeString("")
    case .bool: w.writeBool(false)
    case .enum: try writeSingle(f, .varint(0), &w, depth: depth)
    case .int64, .uint64, .sint64, .fixed64, .sfixed64: w.writeString("0")
    default: w.writeInt32(0)
    }
  }

  private func wrongWire(_ f: Field) -> DynamicMessageError {
    DynamicMessageError("field \(f.name) (\(f.number)) has the wrong wire type for \(f.type)")
  }

  private func writeSingle(_ f: Field, _ v: WireValue, _ w: inout JSONWriter, depth: Int) throws {
    switch (f.type, v) {
    case (.int32, .varint(let x)): w.writeInt32(Int32(truncatingIfNeeded: x))
    case (.int64, .varint(let x)): w.writeInt64(Int64(bitPattern: x))
    case (.uint32, .varint(let x)): w.writeUInt32(UInt32(truncatingIfNeeded: x))
    case (.uint64, .varint(let x)): w.writeUInt64(x)
    case (.sint32, .varint(let x)):
      let u = UInt32(truncatingIfNeeded: x)
      w.writeInt32(Int32(bitPattern: (u >> 1) ^ (0 &- (u & 1))))
    case (.sint64, .varint(let x)): w.writeInt64(Int64(bitPattern: (x >> 1) ^ (0 &- (x & 1))))
    case (.bool, .varint(let x)): w.writeBool(x != 0)
    case (.enum, .varint(let x)):
      let number = Int32(truncatingIfNeeded: x)
      let e = pool.enumType(f.typeName)
      if f.typeName == ".google.protobuf.NullValue" {
        w.writeNull()
      } else if let name = e?.value.first(where: { $0.number == number })?.name {
        w.writeString(name)
      } else {
        w.writeInt32(number)
      }
    case (.fixed32, .fixed32(let x)): w.writeUInt32(x)
    case (.sfixed32, .fixed32(let x)): w.writeInt32(Int32(bitPattern: x))
    case (.float, .fixed32(let x)): w.writeFloat(Float(bitPattern: x))
    case (.fixed64, .fixed64(let x)): w.writeUInt64(x)
    case (.sfixed64, .fixed64(let x)): w.writeInt64(Int64(bitPattern: x))
    case (.double, .fixed64(let x)): w.writeDouble(Double(bitPattern: x))
    case (.string, .lengthDelimited(let b)):
      guard let s = String(validating: b, as: UTF8.self) else {
        throw DynamicMessageError("field \(f.name) (\(f.number)) is not valid UTF-8")
      }
      w.writeString(s)
    case (.bytes, .lengthDelimited(let b)): w.writeBytes(b)
    case (.message, .lengthDelimited(let b)), (.group, .group(let b)):
      try writeMessage(try messageType(f.typeName), b, &w, depth: depth + 1)
    default:
      throw wrongWire(f)
    }
  }

  private func writeAny(_ bytes: [UInt8], _ w: inout JSONWriter, depth: Int) throws {
    var url = ""
    var payload: [UInt8] = []
    var r = WireReader(bytes)
    while let (n, v) = try r.next() {
      switch (n, v) {
      case (1, .lengthDelimited(let b)): url = String(decoding: b, as: UTF8.self)
      case (2, .lengthDelimited(let b)): payload = b
      default: break
      }
    }
    if url.isEmpty && payload.isEmpty {
      w.beginObject()
      w.endObject()
      return
    }
    let name = String(url[url.index(after: url.lastIndex(of: "/") ?? url.index(before: url.startIndex))...])
    guard let m = pool.message(name) else { throw DynamicMessageError("Any carries \(url), a type this pool does not know") }
    w.beginObject()
    w.mapKey("@type")
    w.writeString(url)
    if Self.isSpecial(m.name) {
      w.mapKey("value")
      try writeMessage(m, payload, &w, depth: depth + 1)
    } else {
      try writeFields(m, payload, &w, depth: depth + 1)
    }
    w.endObject()
  }
}
