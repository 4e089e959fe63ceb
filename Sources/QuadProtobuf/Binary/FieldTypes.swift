/// How one protobuf field type is sized, written and read; generated code names these types.
///
/// Each conforming type is an uninhabited enum whose static functions specialise into the
/// generated code (`ProtoInt64.write(id, to: &encoder)`).
public protocol FieldType {
  /// The Swift type that holds a value of this field type.
  associatedtype Value: Hashable & Sendable
  /// The proto default (zero, empty, or an empty message).
  static var defaultValue: Value { get }
  /// The wire type (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32).
  static var wireType: UInt32 { get }
  /// Bytes the value takes, without its tag.
  static func size(of value: Value, cache: inout SizeCache) -> Int
  /// Writes the value without its tag.
  static func write(_ value: Value, to encoder: inout BinaryEncoder)
  /// Reads a value whose tag was just read.
  static func read(from decoder: inout BinaryDecoder) throws -> Value
  /// Key order for deterministic map encoding.
  static func precedes(_ a: Value, _ b: Value) -> Bool
}

extension FieldType {
  /// Types that are never map keys have no order.
  @inlinable public static func precedes(_ a: Value, _ b: Value) -> Bool { false }
}

extension FieldType where Value: Comparable {
  @inlinable public static func precedes(_ a: Value, _ b: Value) -> Bool { a < b }
}

/// A scalar field type that may be packed.
public protocol PackableFieldType: FieldType {
  /// The fixed encoded size, or `nil` for varints.
  static var fixedSize: Int? { get }
}

/// A varint-encoded field type.
public protocol VarintFieldType: PackableFieldType {}
extension VarintFieldType {
  @inlinable public static var wireType: UInt32 { 0 }
  @inlinable public static var fixedSize: Int? { nil }
}

/// A field type of 4 fixed bytes.
public protocol Fixed32FieldType: PackableFieldType {}
extension Fixed32FieldType {
  @inlinable public static var wireType: UInt32 { 5 }
  @inlinable public static var fixedSize: Int? { 4 }
  @inlinable public static func size(of value: Value, cache: inout SizeCache) -> Int { 4 }
}

/// A field type of 8 fixed bytes.
public protocol Fixed64FieldType: PackableFieldType {}
extension Fixed64FieldType {
  @inlinable public static var wireType: UInt32 { 1 }
  @inlinable public static var fixedSize: Int? { 8 }
  @inlinable public static func size(of value: Value, cache: inout SizeCache) -> Int { 8 }
}

/// `int32`: varint, negative values sign-extended to 10 bytes.
public enum ProtoInt32: VarintFieldType {
  @inlinable public static var defaultValue: Int32 { 0 }
  @inlinable public static func size(of value: Int32, cache: inout SizeCache) -> Int {
    value >= 0 ? Varint.size32(UInt32(value)) : 10
  }
  @inlinable public static func write(_ value: Int32, to encoder: inout BinaryEncoder) {
    encoder.writeVarint(UInt64(bitPattern: Int64(value)))
  }
  @inlinable public static func read(from decoder: inout BinaryDecoder) throws -> Int32 {
    Int32(truncatingIfNeeded: try decoder.readVarint())
  }
}

/// `int64`: varint of the two's-complement bits.
public enum ProtoInt64: VarintFieldType {
  @inlinable public static var defaultValue: Int64 { 0 }
  @inlinable public static func size(of value: Int64, cache: inout SizeCache) -> Int {
    Varint.size(UInt64(bitPattern: value))
  }
  @inlinable public static func write(_ value: Int64, to encoder: inout BinaryEncoder) {
    encoder.writeVarint(UInt64(bitPattern: value))
  }
  @inlinable public static func read(from decoder: inout BinaryDecoder) throws -> Int64 {
    Int64(bitPattern: try decoder.readVarint())
  }
}

/// `uint32`: varint.
public enum ProtoUInt32: VarintFieldType {
  @inlinable public static var defaultValue: UInt32 { 0 }
  @inlinable public static func size(of value: UInt32, cache: inout SizeCache) -> Int {
    Varint.size32(value)
  }
  @inlinable public static func write(_ value: UInt32, to encoder: inout BinaryEncoder) {
    encoder.writeVarint32(value)
  }
  @inlinable public static func read(from decoder: inout BinaryDecoder) throws -> UInt32 {
    UInt32(truncatingIfNeeded: try decoder.readVarint())
  }
}

/// `uint64`: varint.
public enum ProtoUInt64: VarintFieldType {
  @inlinable public static var defaultValue: UInt64 { 0 }
  @inlinable public static func size(of value: UInt64, cache: inout SizeCache) -> Int {
    Varint.size(value)
  }
  @inlinable public static func write(_ value: UInt64, to encoder: inout BinaryEncoder) {
    encoder.writeVarint(value)
  }
  @inlinable public static func read(from decoder: inout BinaryDecoder) throws -> UInt64 {
    try decoder.readVarint()
  }
}

/// `sint32`: zigzag varint.
public enum ProtoSInt32: VarintFieldType {
  @inlinable public static var defaultValue: Int32 { 0 }
  @inlinable static func zigzag(_ v: Int32) -> UInt32 { UInt32(bitPattern: (v << 1) ^ (v >> 31)) }
  @inlinable public static func size(of value: Int32, cache: inout SizeCache) -> Int {
    Varint.size32(zigzag(value))
  }
  @inlinable public static func write(_ value: Int32, to encoder: inout BinaryEncoder) {
    encoder.writeVarint32(zigzag(value))
  }
  @inlinable public static func read(from decoder: inout BinaryDecoder) throws -> Int32 {
    let n = UInt32(truncatingIfNeeded: try decoder.readVarint())
    return Int32(bitPattern: (n >> 1) ^ (0 &- (n & 1)))
  }
}

/// `sint64`: zigzag varint.
public enum ProtoSInt64: VarintFieldType {
  @inlinable public static var defaultValue: Int64 { 0 }
  @inlinable static func zigzag(_ v: Int64) -> UInt64 { UInt64(bitPattern: (v << 1) ^ (v >> 63)) }
  @inlinable public static func size(of value: Int64, cache: inout SizeCache) -> Int {
    Varint.size(zigzag(value))
  }
  @inlinable public static func write(_ value: Int64, to encoder: inout BinaryEncoder) {
    encoder.writeVarint(zigzag(value))
  }
  @inlinable public static func read(from decoder: inout BinaryDecoder) throws -> Int64 {
    let n = try decoder.readVarint()
    return Int64(bitPattern: (n >> 1) ^ (0 &- (n & 1)))
  }
}

/// `bool`: varint 0 or 1 (any non-zero reads as true).
public enum ProtoBool: VarintFieldType {
  @inlinable public static var defaultValue: Bool { false }
  @inlinable public static func size(of value: Bool, cache: inout SizeCache) -> Int { 1 }
  @inlinable public static func write(_ value: Bool, to encoder: inout BinaryEncoder) {
    encoder.writeVarint32(value ? 1 : 0)
  }
  @inlinable public static func read(from decoder: inout BinaryDecoder) throws -> Bool {
    try decoder.readVarint() != 0
  }
  @inlinable public static func precedes(_ a: Bool, _ b: Bool) -> Bool { !a && b }
}

/// `fixed32`.
public enum ProtoFixed32: Fixed32FieldType {
  @inlinable public static var defaultValue: UInt32 { 0 }
  @inlinable public static func write(_ value: UInt32, to encoder: inout BinaryEncoder) {
    encoder.writeFixed32(value)
  }
  @inlinable public static func read(from decoder: inout BinaryDecoder) throws -> UInt32 {
    try decoder.readFixed32()
  }
}

/// `sfixed32`.
public enum ProtoSFixed32: Fixed32FieldType {
  @inlinable public static var defaultValue: Int32 { 0 }
  @inlinable public static func write(_ value: Int32, to encoder: inout BinaryEncoder) {
    encoder.writeFixed32(UInt32(bitPattern: value))
  }
  @inlinable public static func read(from decoder: inout BinaryDecoder) throws -> Int32 {
    Int32(bitPattern: try decoder.readFixed32())
  }
}

/// `float`.
public enum ProtoFloat: Fixed32FieldType {
  @inlinable public static var defaultValue: Float { 0 }
  @inlinable public static func write(_ value: Float, to encoder: inout BinaryEncoder) {
    encoder.writeFixed32(value.bitPattern)
  }
  @inlinable public static func read(from decoder: inout BinaryDecoder) throws -> Float {
    Float(bitPattern: try decoder.readFixed32())
  }
}

/// `fixed64`.
public enum ProtoFixed64: Fixed64FieldType {
  @inlinable public static var defaultValue: UInt64 { 0 }
  @inlinable public static func write(_ value: UInt64, to encoder: inout BinaryEncoder) {
    encoder.writeFixed64(value)
  }
  @inlinable public static func read(from decoder: inout BinaryDecoder) throws -> UInt64 {
    try decoder.readFixed64()
  }
}

/// `sfixed64`.
public enum ProtoSFixed64: Fixed64FieldType {
  @inlinable public static var defaultValue: Int64 { 0 }
  @inlinable public static func write(_ value: Int64, to encoder: inout BinaryEncoder) {
    encoder.writeFixed64(UInt64(bitPattern: value))
  }
  @inlinable public static func read(from decoder: inout BinaryDecoder) throws -> Int64 {
    Int64(bitPattern: try decoder.readFixed64())
  }
}

/// `double`.
public enum ProtoDouble: Fixed64FieldType {
  @inlinable public static var defaultValue: Double { 0 }
  @inlinable public static func write(_ value: Double, to encoder: inout BinaryEncoder) {
    encoder.writeFixed64(value.bitPattern)
  }
  @inlinable public static func read(from decoder: inout BinaryDecoder) throws -> Double {
    Double(bitPattern: try decoder.readFixed64())
  }
}

/// An `enum` field: varint of the value's number (open enums keep unknown numbers).
public enum ProtoEnum<E: Enum>: VarintFieldType {
  @inlinable public static var defaultValue: E { E() }
  @inlinable public static func size(of value: E, cache: inout SizeCache) -> Int {
    value.rawValue >= 0 ? Varint.size32(UInt32(value.rawValue)) : 10
  }
  @inlinable public static func write(_ value: E, to encoder: inout BinaryEncoder) {
    encoder.writeVarint(UInt64(bitPattern: Int64(value.rawValue)))
  }
  @inlinable public static func read(from decoder: inout BinaryDecoder) throws -> E {
    let raw = Int32(truncatingIfNeeded: try decoder.readVarint())
    return E(rawValue: raw) ?? E()
  }
}

/// `string`: length-delimited UTF-8.
public enum ProtoString: FieldType {
  @inlinable public static var defaultValue: String { "" }
  @inlinable public static var wireType: UInt32 { 2 }
  @inlinable public static func size(of value: String, cache: inout SizeCache) -> Int {
    Varint.delimited(value.utf8.count)
  }
  @inlinable public static func write(_ value: String, to encoder: inout BinaryEncoder) {
    encoder.writeString(value)
  }
  @inlinable public static func read(from decoder: inout BinaryDecoder) throws -> String {
    try decoder.readString()
  }
}

/// `bytes`: length-delimited.
public enum ProtoBytes: FieldType {
  @inlinable public static var defaultValue: [UInt8] { [] }
  @inlinable public static var wireType: UInt32 { 2 }
  @inlinable public static func size(of value: [UInt8], cache: inout SizeCache) -> Int {
    Varint.delimited(value.count)
  }
  @inlinable public static func write(_ value: [UInt8], to encoder: inout BinaryEncoder) {
    encoder.writeBytes(value)
  }
  @inlinable public static func read(from decoder: inout BinaryDecoder) throws -> [UInt8] {
    try decoder.readBytes()
  }
}

/// A message field: length-delimited, its size taken from the ``SizeCache``.
public enum ProtoMessage<M: Message>: FieldType {
  @inlinable public static var defaultValue: M { M() }
  @inlinable public static var wireType: UInt32 { 2 }
  @inlinable public static func size(of value: M, cache: inout SizeCache) -> Int {
    let slot = cache.reserve()
    let n = value.encodedSize(cache: &cache)
    cache.fill(slot, with: n)
    return Varint.delimited(n)
  }
  @inlinable public static func write(_ value: M, to encoder: inout BinaryEncoder) {
    encoder.writeMessage(value)
  }
  @inlinable public static func read(from decoder: inout BinaryDecoder) throws -> M {
    var m = M()
    try decoder.readMessage(into: &m)
    return m
  }
}

// MARK: - Repeated, packed and map fields

extension SizeCache {
  /// Size of a repeated, unpacked field, tags included.
  @inlinable public mutating func repeatedSize<T: FieldType>(_ type: T.Type, _ values: [T.Value], tagSize: Int) -> Int {
    var n = tagSize * values.count
    for v in values { n += T.size(of: v, cache: &self) }
    return n
  }

  /// Size of a packed field, tag and length included (0 when empty).
  @inlinable public mutating func packedSize<T: PackableFieldType>(_ type: T.Type, _ values: [T.Value], tagSize: Int) -> Int {
    if values.isEmpty { return 0 }
    let length: Int
    if let size = T.fixedSize {
      length = size * values.count
    } else {
      var n = 0
      for v in values { n += T.size(of: v, cache: &self) }
      length = n
      sizes.append(n)
    }
    return tagSize + Varint.delimited(length)
  }

  /// Size of a map field, every entry's tag included.
  @inlinable public mutating func mapSize<K: FieldType, V: FieldType>(
    _ key: K.Type,
    _ value: V.Type,
    _ map: [K.Value: V.Value],
    tagSize: Int
  ) -> Int {
    var n = 0
    if deterministic {
      for k in map.keys.sorted(by: K.precedes) {
        let v = map[k]!
        let slot = reserve()
        let entry = 2 + K.size(of: k, cache: &self) + V.size(of: v, cache: &self)
        fill(slot, with: entry)
        n += tagSize + Varint.delimited(entry)
      }
      return n
    }
    for (k, v) in map {
      let slot = reserve()
      let entry = 2 + K.size(of: k, cache: &self) + V.size(of: v, cache: &self)
      fill(slot, with: entry)
      n += tagSize + Varint.delimited(entry)
    }
    return n
  }
}

extension BinaryEncoder {
  /// Writes a repeated, unpacked field.
  @inlinable public mutating func writeRepeated<T: FieldType>(_ type: T.Type, _ values: [T.Value], tag: UInt32) {
    for v in values {
      writeTag(tag)
      T.write(v, to: &self)
    }
  }

  /// Writes a map field, one entry message per key.
  @inlinable public mutating func writeMap<K: FieldType, V: FieldType>(
    _ key: K.Type,
    _ value: V.Type,
    _ map: [K.Value: V.Value],
    tag: UInt32
  ) {
    if cache.deterministic {
      for k in map.keys.sorted(by: K.precedes) {
        writeMapEntry(K.self, V.self, k, map[k]!, tag: tag)
      }
      return
    }
    for (k, v) in map {
      writeMapEntry(K.self, V.self, k, v, tag: tag)
    }
  }

  @inlinable mutating func writeMapEntry<K: FieldType, V: FieldType>(
    _ key: K.Type,
    _ value: V.Type,
    _ k: K.Value,
    _ v: V.Value,
    tag: UInt32
  ) {
    writeTag(tag)
    writeVarint(UInt64(cache.take()))
    writeTag(8 | K.wireType)
    K.write(k, to: &self)
    writeTag(16 | V.wireType)
    V.write(v, to: &self)
  }
}

extension BinaryDecoder {
  /// Reads one map entry into `map` (a missing key or value takes its default; a later key wins).
  @inlinable public mutating func readMapEntry<K: FieldType, V: FieldType>(
    _ key: K.Type,
    _ value: V.Type,
    into map: inout [K.Value: V.Value]
  ) throws {
    if map.isEmpty { map.reserveCapacity(countRun()) }
    let n = try readLength()
    guard depth < BinaryDecoder.maximumDepth else {
      throw error(.recursionLimitExceeded, "messages nested deeper than \(BinaryDecoder.maximumDepth)")
    }
    let savedEnd = end
    let savedGroup = openGroup
    let savedTag = lastTag
    end = cursor + n
    openGroup = 0
    depth += 1
    var k = K.defaultValue
    var v = V.defaultValue
    while let tag = try nextTag() {
      switch tag {
      case 8 | K.wireType: k = try K.read(from: &self)
      case 16 | V.wireType: v = try V.read(from: &self)
      default: try skipField(tag: tag)
      }
    }
    end = savedEnd
    openGroup = savedGroup
    lastTag = savedTag
    depth -= 1
    map[k] = v
  }
}
