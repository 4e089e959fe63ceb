/// The sizes of nested messages and packed runs, computed once, in the order encoding meets them.
///
/// `encodedSize(cache:)` appends to it in pre-order; encoding reads it back in the same order,
/// so no size is computed twice.
public struct SizeCache {
  @usableFromInline var sizes: [Int] = []
  @usableFromInline var next = 0
  /// Whether map entries are written in key order (so equal messages give equal bytes).
  public let deterministic: Bool

  @inlinable public init(deterministic: Bool = false) { self.deterministic = deterministic }

  /// Reserves a slot before a nested size is computed; returns its index.
  @inlinable public mutating func reserve() -> Int {
    sizes.append(0)
    return sizes.count - 1
  }

  /// Fills a reserved slot.
  @inlinable public mutating func fill(_ slot: Int, with size: Int) {
    sizes[slot] = size
  }

  /// Takes the next size, in encoding order.
  @inlinable public mutating func take() -> Int {
    let v = sizes[next]
    next += 1
    return v
  }
}

/// Writes protobuf binary data into one buffer sized beforehand, for generated `encodeMessage(to:)` code.
///
/// - Important: an encoder points into a buffer valid only inside ``Message/serializedBytes()``.
public struct BinaryEncoder {
  @usableFromInline var cursor: UnsafeMutablePointer<UInt8>
  @usableFromInline var cache: SizeCache

  @usableFromInline init(_ start: UnsafeMutablePointer<UInt8>, cache: SizeCache) {
    cursor = start
    self.cache = cache
  }

  /// Writes a varint (tags, lengths and varint scalars).
  @inlinable public mutating func writeVarint(_ value: UInt64) {
    var v = value
    while v >= 0x80 {
      cursor.pointee = UInt8(truncatingIfNeeded: v) | 0x80
      cursor += 1
      v >>= 7
    }
    cursor.pointee = UInt8(truncatingIfNeeded: v)
    cursor += 1
  }

  /// Writes a varint of at most 32 bits.
  @inlinable public mutating func writeVarint32(_ value: UInt32) {
    if value < 0x80 {
      cursor.pointee = UInt8(truncatingIfNeeded: value)
      cursor += 1
    } else {
      writeVarint(UInt64(value))
    }
  }

  /// Writes a tag that is known at generation time.
  @inlinable public mutating func writeTag(_ tag: UInt32) {
    writeVarint32(tag)
  }

  /// Writes 4 little-endian bytes.
  @inlinable public mutating func writeFixed32(_ value: UInt32) {
    UnsafeMutableRawPointer(cursor).storeBytes(of: value.littleEndian, as: UInt32.self)
    cursor += 4
  }

  /// Writes 8 little-endian bytes.
  @inlinable public mutating func writeFixed64(_ value: UInt64) {
    UnsafeMutableRawPointer(cursor).storeBytes(of: value.littleEndian, as: UInt64.self)
    cursor += 8
  }

  /// Writes raw bytes.
  @inlinable public mutating func writeRaw(_ bytes: UnsafeRawBufferPointer) {
    if let base = bytes.baseAddress, bytes.count > 0 {
      UnsafeMutableRawPointer(cursor).copyMemory(from: base, byteCount: bytes.count)
      cursor += bytes.count
    }
  }

  /// Writes a length prefix and a string's UTF-8 bytes.
  @inlinable public mutating func writeString(_ value: String) {
    let count = value.utf8.count
    writeVarint(UInt64(count))
    if count == 0 { return }
    let done: Void? = value.utf8.withContiguousStorageIfAvailable { writeRaw(UnsafeRawBufferPointer($0)) }
    if done == nil {
      for byte in value.utf8 {
        cursor.pointee = byte
        cursor += 1
      }
    }
  }

  /// Writes a length prefix and bytes.
  @inlinable public mutating func writeBytes(_ value: [UInt8]) {
    writeVarint(UInt64(value.count))
    value.withUnsafeBytes { writeRaw($0) }
  }

  /// Writes a nested message with its length prefix (the size comes from the cache).
  @inlinable public mutating func writeMessage<M: Message>(_ message: M) {
    writeVarint(UInt64(cache.take()))
    message.encodeMessage(to: &self)
  }

  /// Writes a group's fields and its end tag (the start tag is already written).
  @inlinable public mutating func writeGroup<M: Message>(_ message: M, fieldNumber: UInt32) {
    message.encodeMessage(to: &self)
    writeVarint32(fieldNumber << 3 | 4)
  }

  /// Writes a packed run with its length prefix.
  @inlinable public mutating func writePacked<T: PackableFieldType>(_ type: T.Type, _ values: [T.Value]) {
    let length: Int
    if let size = T.fixedSize { length = size * values.count } else { length = cache.take() }
    writeVarint(UInt64(length))
    #if _endian(little)
      // Fixed-width values (fixed32/64, sfixed32/64, float, double) are stored as on the wire.
      if let size = T.fixedSize, MemoryLayout<T.Value>.stride == size {
        values.withUnsafeBytes { writeRaw($0) }
        return
      }
    #endif
    for v in values { T.write(v, to: &self) }
  }

  /// Writes unknown fields back as they were read.
  @inlinable public mutating func writeUnknown(_ fields: UnknownFields) {
    fields.bytes.withUnsafeBytes { writeRaw($0) }
  }
}

/// Size arithmetic shared by generated code and the codecs.
public enum Varint {
  /// Bytes a varint encoding of `value` takes (1 to 10).
  @inlinable public static func size(_ value: UInt64) -> Int {
    let bits = 64 - (value | 1).leadingZeroBitCount
    return (bits + 6) / 7
  }

  /// Bytes a varint encoding of a 32-bit value takes (1 to 5).
  @inlinable public static func size32(_ value: UInt32) -> Int {
    let bits = 32 - (value | 1).leadingZeroBitCount
    return (bits + 6) / 7
  }

  /// Bytes a length prefix plus `length` bytes take.
  @inlinable public static func delimited(_ length: Int) -> Int {
    size(UInt64(length)) + length
  }
}
