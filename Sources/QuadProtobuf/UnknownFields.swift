/// Fields a message's type does not know, kept as the exact bytes read (tags included), so that
/// decoding then encoding passes them on unchanged.
public struct UnknownFields: Hashable, Sendable {
  /// The raw wire bytes, in the order they were read.
  public var bytes: [UInt8] = []

  @inlinable public init() {}

  /// Whether no unknown field was kept.
  @inlinable public var isEmpty: Bool { bytes.isEmpty }

  /// Bytes the unknown fields take on the wire.
  @inlinable public var count: Int { bytes.count }

  @inlinable mutating func append(_ raw: UnsafeBufferPointer<UInt8>) {
    bytes.append(contentsOf: raw)
  }

  /// Appends a varint field (used for unrecognised values of closed enums).
  public mutating func appendVarint(fieldNumber: Int, value: UInt64) {
    appendRawVarint(UInt64(fieldNumber) << 3)
    appendRawVarint(value)
  }

  /// Appends a length-delimited field.
  public mutating func appendLengthDelimited(fieldNumber: Int, payload: [UInt8]) {
    appendRawVarint(UInt64(fieldNumber) << 3 | 2)
    appendRawVarint(UInt64(payload.count))
    bytes.append(contentsOf: payload)
  }

  private mutating func appendRawVarint(_ value: UInt64) {
    var v = value
    while v >= 0x80 {
      bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
      v >>= 7
    }
    bytes.append(UInt8(v))
  }
}

/// Heap storage for a message field whose type contains this message again (directly or through
/// others), which a Swift struct cannot hold inline. Copy-on-write, so it keeps value semantics.
public struct Indirect<Wrapped: Hashable & Sendable>: Hashable, Sendable {
  @usableFromInline final class Box: @unchecked Sendable {
    @usableFromInline var value: Wrapped
    @usableFromInline init(_ value: Wrapped) { self.value = value }
  }
  @usableFromInline var box: Box

  @inlinable public init(_ value: Wrapped) { box = Box(value) }

  /// The stored value.
  @inlinable public var value: Wrapped {
    get { box.value }
    set {
      if isKnownUniquelyReferenced(&box) {
        box.value = newValue
      } else {
        box = Box(newValue)
      }
    }
  }

  @inlinable public static func == (a: Indirect, b: Indirect) -> Bool {
    a.box === b.box || a.box.value == b.box.value
  }

  @inlinable public func hash(into hasher: inout Hasher) { box.value.hash(into: &hasher) }
}
