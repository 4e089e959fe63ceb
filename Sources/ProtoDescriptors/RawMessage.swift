package import QuadProtobuf

/// A message whose type is known only at run time: its protobuf bytes, carried through a typed
/// gRPC client untouched (checked only to be well-formed protobuf on the way in).
package struct RawMessage: Message {
  package static let protoMessageName = "quad.dynamic.RawMessage"
  package var unknownFields = UnknownFields()

  package init() {}

  /// A message of exactly these bytes.
  package init(bytes: [UInt8]) { unknownFields.bytes = bytes }

  /// The message's bytes.
  package var bytes: [UInt8] { unknownFields.bytes }

  package mutating func decodeMessage(from decoder: inout BinaryDecoder) throws {
    while let tag = try decoder.nextTag() { try decoder.skipField(tag: tag, into: &unknownFields) }
  }

  package func encodedSize(cache: inout SizeCache) -> Int { unknownFields.count }

  package func encodeMessage(to encoder: inout BinaryEncoder) { encoder.writeUnknown(unknownFields) }

  package func encodeJSON(to writer: inout JSONWriter) throws {
    throw DynamicMessageError("a RawMessage has no JSON form without its descriptor (use DynamicCodec)")
  }

  package mutating func decodeJSON(from reader: inout JSONReader) throws {
    throw DynamicMessageError("a RawMessage has no JSON form without its descriptor (use DynamicCodec)")
  }
}
