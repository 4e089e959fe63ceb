/// A protobuf message: every generated message type conforms, so generic code can encode,
/// decode and name any of them.
///
/// ```swift
/// let student = try Campus_Students_V1_Student(serializedBytes: bytes)
/// let json = try student.jsonString()
/// ```
public protocol Message: Sendable, Hashable {
  /// The empty message (every field at its default).
  init()
  /// The full proto name, such as `campus.students.v1.Student`.
  static var protoMessageName: String { get }
  /// Fields read from the wire that this type does not know, kept byte for byte.
  var unknownFields: UnknownFields { get set }

  /// Merges the fields read by `decoder` into this message (generated).
  mutating func decodeMessage(from decoder: inout BinaryDecoder) throws
  /// Bytes the encoding takes; records nested sizes in `cache` (generated).
  func encodedSize(cache: inout SizeCache) -> Int
  /// Writes every set field in field-number order, then the unknown fields (generated).
  func encodeMessage(to encoder: inout BinaryEncoder)

  /// Writes the proto3 JSON form (generated).
  func encodeJSON(to writer: inout JSONWriter) throws
  /// Reads the proto3 JSON form into this message (generated).
  mutating func decodeJSON(from reader: inout JSONReader) throws
}

extension Message {
  /// Decodes a message from protobuf binary data.
  ///
  /// - Throws: ``QuadProtobufError`` naming the offset, field and message of the first problem.
  @inlinable public init<Bytes: Collection>(serializedBytes bytes: Bytes) throws where Bytes.Element == UInt8 {
    self.init()
    try merge(serializedBytes: bytes)
  }

  /// Decodes a message from protobuf binary data held in an array.
  @inlinable public init(serializedBytes bytes: [UInt8]) throws {
    self.init()
    try bytes.withUnsafeBufferPointer { try decodeBuffer($0) }
  }

  /// Merges protobuf binary data into this message (set fields are overwritten, repeated ones append).
  @inlinable public mutating func merge<Bytes: Collection>(serializedBytes bytes: Bytes) throws
  where Bytes.Element == UInt8 {
    let done: Void?? = try bytes.withContiguousStorageIfAvailable { try decodeBuffer($0) }
    if done == nil {
      try Array(bytes).withUnsafeBufferPointer { try decodeBuffer($0) }
    }
  }

  @inlinable mutating func decodeBuffer(_ buffer: UnsafeBufferPointer<UInt8>) throws {
    var decoder = BinaryDecoder(buffer)
    do {
      try decodeMessage(from: &decoder)
    } catch var e as QuadProtobufError {
      if e.messageName == nil { e.messageName = Self.protoMessageName }
      throw e
    }
  }

  /// The protobuf binary encoding, fields in field-number order, unknown fields last.
  ///
  /// - Parameter deterministic: write map entries in key order, so that equal messages always
  ///   give equal bytes (for hashing or comparing encodings); slower for large maps.
  @inlinable public func serializedBytes(deterministic: Bool) -> [UInt8] {
    var cache = SizeCache(deterministic: deterministic)
    let size = encodedSize(cache: &cache)
    if size == 0 { return [] }
    return [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
      var encoder = BinaryEncoder(buffer.baseAddress!, cache: cache)
      encodeMessage(to: &encoder)
      count = size
    }
  }

  /// The protobuf binary encoding, fields in field-number order, unknown fields last; map entries
  /// in the dictionary's order.
  @inlinable public func serializedBytes() -> [UInt8] {
    serializedBytes(deterministic: false)
  }

  /// Bytes ``serializedBytes()`` would return.
  @inlinable public var serializedSize: Int {
    var cache = SizeCache()
    return encodedSize(cache: &cache)
  }
}

/// A generated protobuf enum: open (proto3) enums keep unknown numbers as `.UNRECOGNIZED(n)`.
public protocol Enum: RawRepresentable, Hashable, Sendable where RawValue == Int32 {
  /// The default value (the first one declared).
  init()
  /// The value for a number; open enums never return `nil`.
  init?(rawValue: Int32)
  /// The value's name in the `.proto` file, or `nil` for an unrecognised number.
  var protoName: String? { get }
  /// The value named `name` in the `.proto` file.
  init?(protoName: String)
}
