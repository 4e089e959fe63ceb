/// A proto2 extension field of message `Extended` (a custom option such as `(quad.v1.event)` on
/// `google.protobuf.MessageOptions`, say). Generated code declares one constant per `extend` field.
///
/// Extension values live in the extended message's ``Message/unknownFields``, so decoding and
/// re-encoding keeps them byte for byte whether or not the reader knows the extension.
public struct Extension<Extended: Message, Field: FieldType>: Sendable {
  /// The field number.
  public let fieldNumber: Int
  /// The extension's full proto name (`quad.v1.event`).
  public let fullName: String
  /// Whether the field is `repeated`.
  public let isRepeated: Bool

  public init(fieldNumber: Int, fullName: String, isRepeated: Bool = false) {
    self.fieldNumber = fieldNumber
    self.fullName = fullName
    self.isRepeated = isRepeated
  }
}

extension Message {
  /// Every value the message carries for `ext`, in wire order (packed runs included).
  ///
  /// - Throws: ``QuadProtobufError`` when the stored bytes are malformed for the field's type.
  public func extensionValues<F: FieldType>(_ ext: Extension<Self, F>) throws -> [F.Value] {
    var values: [F.Value] = []
    try unknownFields.bytes.withUnsafeBufferPointer { buffer in
      var decoder = BinaryDecoder(buffer)
      while let tag = try decoder.nextTag() {
        guard Int(tag >> 3) == ext.fieldNumber else {
          try decoder.skipField(tag: tag)
          continue
        }
        if tag & 7 == F.wireType {
          if F.wireType == 2, var message = values.last, F.self is any _MessageFieldType.Type, !ext.isRepeated {
            // A singular message extension seen twice merges, as fields do.
            try (F.self as! any _MessageFieldType.Type).merge(&message, from: &decoder)
            values[values.count - 1] = message
          } else {
            values.append(try F.read(from: &decoder))
          }
        } else if tag & 7 == 2, let packable = F.self as? any PackableFieldType.Type {
          values.append(contentsOf: try packable.readPackedValues(from: &decoder) as! [F.Value])
        } else {
          try decoder.skipField(tag: tag)
        }
      }
    }
    return values
  }

  /// The value of a singular extension (the last one on the wire), or `nil` when absent.
  public func extensionValue<F: FieldType>(_ ext: Extension<Self, F>) throws -> F.Value? {
    try extensionValues(ext).last
  }

  /// Whether the message carries `ext`.
  public func hasExtension<F: FieldType>(_ ext: Extension<Self, F>) -> Bool {
    (try? extensionValues(ext).isEmpty == false) ?? true
  }

  /// Replaces the extension's values (none clears it).
  public mutating func setExtensionValues<F: FieldType>(_ ext: Extension<Self, F>, _ values: [F.Value]) {
    clearExtension(ext)
    for value in values {
      var cache = SizeCache()
      let size = F.size(of: value, cache: &cache)
      let tag = UInt32(ext.fieldNumber) << 3 | F.wireType
      let tagSize = Varint.size32(tag)
      let bytes = [UInt8](unsafeUninitializedCapacity: tagSize + size) { buffer, count in
        var encoder = BinaryEncoder(buffer.baseAddress!, cache: cache)
        encoder.writeTag(tag)
        F.write(value, to: &encoder)
        count = tagSize + size
      }
      unknownFields.bytes.append(contentsOf: bytes)
    }
  }

  /// Sets a singular extension.
  public mutating func setExtensionValue<F: FieldType>(_ ext: Extension<Self, F>, _ value: F.Value) {
    setExtensionValues(ext, [value])
  }

  /// Removes every occurrence of the extension's field from the unknown fields.
  public mutating func clearExtension<F: FieldType>(_ ext: Extension<Self, F>) {
    var kept: [UInt8] = []
    let complete: Bool = unknownFields.bytes.withUnsafeBufferPointer { buffer in
      var decoder = BinaryDecoder(buffer)
      var others = UnknownFields()
      do {
        while let tag = try decoder.nextTag() {
          if Int(tag >> 3) == ext.fieldNumber {
            try decoder.skipField(tag: tag)
          } else {
            try decoder.skipField(tag: tag, into: &others)
          }
        }
      } catch {
        return false
      }
      kept = others.bytes
      return true
    }
    if complete { unknownFields.bytes = kept }
  }
}

/// Lets extension reads merge repeated occurrences of a singular message extension.
public protocol _MessageFieldType {
  static func merge<V>(_ value: inout V, from decoder: inout BinaryDecoder) throws
}

extension ProtoMessage: _MessageFieldType {
  public static func merge<V>(_ value: inout V, from decoder: inout BinaryDecoder) throws {
    var m = value as! M
    try decoder.readMessage(into: &m)
    value = m as! V
  }
}

extension PackableFieldType {
  static func readPackedValues(from decoder: inout BinaryDecoder) throws -> [Value] {
    var values: [Value] = []
    try decoder.readPacked(Self.self, into: &values)
    return values
  }
}
