/// Reads protobuf binary data from a contiguous buffer, for generated `decodeMessage(from:)` code.
///
/// Every length is checked against the remaining input before anything is read or allocated;
/// nesting deeper than ``maximumDepth`` fails; errors say the byte offset and the field.
///
/// - Important: a decoder points into memory that is only valid inside the closure that made it
///   (``Message/init(serializedBytes:)``); never store one.
public struct BinaryDecoder {
  /// The deepest nesting of messages and groups that decoding accepts.
  public static let maximumDepth = 100

  @usableFromInline let base: UnsafePointer<UInt8>
  @usableFromInline var cursor: UnsafePointer<UInt8>
  @usableFromInline var end: UnsafePointer<UInt8>
  @usableFromInline var depth: Int = 0
  /// Field number of the group being read, 0 when none.
  @usableFromInline var openGroup: UInt32 = 0
  /// Start of the tag most recently read (for unknown-field capture).
  @usableFromInline var tagStart: UnsafePointer<UInt8>
  /// The tag most recently read (for error context).
  @usableFromInline var lastTag: UInt32 = 0

  @usableFromInline init(_ buffer: UnsafeBufferPointer<UInt8>) {
    // An empty buffer may have no address; any aligned non-null address works, as it is never read.
    let start = buffer.baseAddress ?? UnsafePointer<UInt8>(bitPattern: MemoryLayout<UInt64>.alignment)!
    base = start
    cursor = start
    end = start + buffer.count
    tagStart = start
  }


  /// Bytes left before the end of the current message.
  @inlinable public var remaining: Int { end - cursor }

  // MARK: Errors

  @usableFromInline func error(_ code: QuadProtobufError.Code, _ message: String) -> QuadProtobufError {
    QuadProtobufError(
      code: code,
      message: message,
      offset: cursor - base,
      fieldNumber: lastTag == 0 ? nil : Int(lastTag >> 3)
    )
  }

  // MARK: Tags

  /// Reads the next tag, or returns `nil` at the end of the message (or the end of the open group).
  ///
  /// - Throws: ``QuadProtobufError/Code/fieldNumberZero``, ``QuadProtobufError/Code/invalidWireType``,
  ///   ``QuadProtobufError/Code/malformedVarint``, ``QuadProtobufError/Code/truncated``.
  @inlinable public mutating func nextTag() throws -> UInt32? {
    if cursor == end {
      if openGroup != 0 { throw error(.truncated, "input ended inside group \(openGroup)") }
      return nil
    }
    tagStart = cursor
    let tag: UInt32
    if cursor.pointee < 0x80 {
      tag = UInt32(cursor.pointee)
      cursor += 1
    } else {
      let v = try readVarintSlow()
      guard v <= UInt64(UInt32.max) else { throw error(.malformedVarint, "tag \(v) above 2^32") }
      tag = UInt32(truncatingIfNeeded: v)
    }
    lastTag = tag
    if tag < 8 { throw error(.fieldNumberZero, "field number 0 (tag \(tag))") }
    let wireType = tag & 7
    if wireType == 4 {
      if openGroup == tag >> 3 { return nil }
      throw error(.unexpectedEndGroup, "end of group \(tag >> 3) without its start")
    }
    if wireType > 5 { throw error(.invalidWireType, "invalid wire type \(wireType)") }
    return tag
  }

  // MARK: Scalars

  /// Reads a base-128 varint.
  @inlinable public mutating func readVarint() throws -> UInt64 {
    if cursor < end, cursor.pointee < 0x80 {
      let v = cursor.pointee
      cursor += 1
      return UInt64(v)
    }
    return try readVarintSlow()
  }

  @usableFromInline mutating func readVarintSlow() throws -> UInt64 {
    var result: UInt64 = 0
    var shift: UInt64 = 0
    var p = cursor
    while true {
      guard p < end else {
        throw error(.truncated, "truncated varint")
      }
      let byte = p.pointee
      p += 1
      result |= UInt64(byte & 0x7F) << shift
      if byte < 0x80 { break }
      shift += 7
      if shift >= 70 { throw error(.malformedVarint, "varint longer than 10 bytes") }
    }
    cursor = p
    return result
  }

  /// Reads 4 little-endian bytes.
  @inlinable public mutating func readFixed32() throws -> UInt32 {
    guard end - cursor >= 4 else { throw error(.truncated, "truncated fixed32") }
    let v = UnsafeRawPointer(cursor).loadUnaligned(as: UInt32.self)
    cursor += 4
    return UInt32(littleEndian: v)
  }

  /// Reads 8 little-endian bytes.
  @inlinable public mutating func readFixed64() throws -> UInt64 {
    guard end - cursor >= 8 else { throw error(.truncated, "truncated fixed64") }
    let v = UnsafeRawPointer(cursor).loadUnaligned(as: UInt64.self)
    cursor += 8
    return UInt64(littleEndian: v)
  }

  /// Reads a length prefix and checks it against the bytes that remain.
  @inlinable public mutating func readLength() throws -> Int {
    let v = try readVarint()
    guard v <= UInt64(end - cursor) else {
      throw error(.truncated, "length \(v) exceeds the \(end - cursor) bytes remaining")
    }
    return Int(truncatingIfNeeded: v)
  }

  /// Reads a length-delimited UTF-8 string, rejecting invalid UTF-8.
  @inlinable public mutating func readString() throws -> String {
    let n = try readLength()
    if n == 0 { return "" }
    guard let s = UTF8Validation.string(cursor, count: n) else {
      throw error(.invalidUTF8, "invalid UTF-8 in a string of \(n) bytes")
    }
    cursor += n
    return s
  }

  /// Reads length-delimited bytes.
  @inlinable public mutating func readBytes() throws -> [UInt8] {
    let n = try readLength()
    if n == 0 { return [] }
    let result = [UInt8](UnsafeBufferPointer(start: cursor, count: n))
    cursor += n
    return result
  }

  // MARK: Nested messages and groups

  /// Reads a length-delimited message and merges it into `message` (a repeated occurrence merges).
  @inlinable public mutating func readMessage<M: Message>(into message: inout M) throws {
    let n = try readLength()
    guard depth < BinaryDecoder.maximumDepth else {
      throw error(.recursionLimitExceeded, "messages nested deeper than \(BinaryDecoder.maximumDepth)")
    }
    let savedEnd = end
    let savedGroup = openGroup
    let savedTag = lastTag
    end = cursor + n
    depth += 1
    openGroup = 0
    do {
      try message.decodeMessage(from: &self)
    } catch var e as QuadProtobufError {
      if e.messageName == nil { e.messageName = M.protoMessageName }
      throw e
    }
    end = savedEnd
    depth -= 1
    openGroup = savedGroup
    lastTag = savedTag
  }

  /// Reads a group (the start tag already read) and merges it into `message`.
  @inlinable public mutating func readGroup<M: Message>(into message: inout M, fieldNumber: UInt32) throws {
    guard depth < BinaryDecoder.maximumDepth else {
      throw error(.recursionLimitExceeded, "groups nested deeper than \(BinaryDecoder.maximumDepth)")
    }
    let savedGroup = openGroup
    let savedTag = lastTag
    openGroup = fieldNumber
    depth += 1
    do {
      try message.decodeMessage(from: &self)
    } catch var e as QuadProtobufError {
      if e.messageName == nil { e.messageName = M.protoMessageName }
      throw e
    }
    depth -= 1
    openGroup = savedGroup
    lastTag = savedTag
  }

  /// How many values of the field whose tag was just read stand in a row from here (this one
  /// included), counted by skipping values without decoding them; at most `limit`. Encoders write
  /// repeated fields contiguously, so this sizes an array once. Every counted value takes at least
  /// one byte of the input, so the count never exceeds what the input holds.
  @inlinable public func countRun(limit: Int = 4096) -> Int {
    let tagLength = cursor - tagStart
    let wireType = lastTag & 7
    var p = cursor
    var count = 0
    while count < limit {
      // Skip one value.
      switch wireType {
      case 0:
        while p < end && p.pointee >= 0x80 { p += 1 }
        guard p < end else { return max(count, 1) }
        p += 1
      case 1:
        guard end - p >= 8 else { return max(count, 1) }
        p += 8
      case 5:
        guard end - p >= 4 else { return max(count, 1) }
        p += 4
      case 2:
        var length: UInt64 = 0
        var shift: UInt64 = 0
        while p < end && shift < 64 {
          let b = p.pointee
          p += 1
          length |= UInt64(b & 0x7F) << shift
          if b < 0x80 { break }
          shift += 7
        }
        guard length <= UInt64(end - p) else { return max(count, 1) }
        p += Int(length)
      default:
        return 1
      }
      count += 1
      // Is the next tag the same one?
      guard end - p >= tagLength else { return count }
      for k in 0..<tagLength where p[k] != tagStart[k] { return count }
      p += tagLength
    }
    return count
  }

  /// Appends one value of a repeated, unpacked field; on the first, reserves room for the run.
  @inlinable public mutating func readRepeated<T: FieldType>(_ type: T.Type, into values: inout [T.Value]) throws {
    if values.isEmpty { values.reserveCapacity(countRun()) }
    values.append(try T.read(from: &self))
  }

  /// Reads a packed run of scalars into `values`.
  @inlinable public mutating func readPacked<T: PackableFieldType>(
    _ type: T.Type,
    into values: inout [T.Value]
  ) throws {
    let n = try readLength()
    #if _endian(little)
      // Fixed-width values are stored as on the wire: copy the run in one go.
      if let size = T.fixedSize, MemoryLayout<T.Value>.stride == size, n % size == 0 {
        let count = n / size
        let start = cursor
        let run = [T.Value](unsafeUninitializedCapacity: count) { buffer, initialized in
          if count > 0 { UnsafeMutableRawPointer(buffer.baseAddress!).copyMemory(from: start, byteCount: n) }
          initialized = count
        }
        if values.isEmpty { values = run } else { values.append(contentsOf: run) }
        cursor += n
        return
      }
    #endif
    let savedEnd = end
    end = cursor + n
    if let size = T.fixedSize {
      values.reserveCapacity(values.count + n / size)
    } else {
      // One value per byte without the continuation bit.
      var count = 0
      var p = cursor
      while p < end {
        if p.pointee < 0x80 { count += 1 }
        p += 1
      }
      values.reserveCapacity(values.count + count)
    }
    while cursor < end {
      values.append(try T.read(from: &self))
    }
    end = savedEnd
  }

  // MARK: Unknown fields

  /// Skips the field whose tag was just read and keeps its bytes (tag included) in `unknownFields`.
  @inlinable public mutating func skipField(tag: UInt32, into unknownFields: inout UnknownFields) throws {
    let start = tagStart
    try skipValue(tag: tag)
    unknownFields.append(UnsafeBufferPointer(start: start, count: cursor - start))
  }

  /// Skips the field whose tag was just read, keeping nothing.
  @inlinable public mutating func skipField(tag: UInt32) throws {
    try skipValue(tag: tag)
  }

  @usableFromInline mutating func skipValue(tag: UInt32) throws {
    switch tag & 7 {
    case 0: _ = try readVarint()
    case 1: _ = try readFixed64()
    case 2: cursor += try readLength()
    case 5: _ = try readFixed32()
    case 3:
      guard depth < BinaryDecoder.maximumDepth else {
        throw error(.recursionLimitExceeded, "groups nested deeper than \(BinaryDecoder.maximumDepth)")
      }
      let savedGroup = openGroup
      openGroup = tag >> 3
      depth += 1
      while let inner = try nextTag() { try skipValue(tag: inner) }
      depth -= 1
      openGroup = savedGroup
    default:
      throw error(.invalidWireType, "invalid wire type \(tag & 7)")
    }
  }
}
