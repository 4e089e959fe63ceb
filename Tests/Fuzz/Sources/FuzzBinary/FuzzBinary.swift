// Binary decoding must never crash, hang or over-allocate: any input either throws a
// QuadProtobufError or gives a message whose encoding decodes again to the same size.
internal import FuzzMessages
internal import QuadProtobuf

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBinary(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
  let bytes = UnsafeBufferPointer(start: start, count: count)
  check(Quad_Test_V1_Everything.self, bytes)
  check(QTLegacy.self, bytes)
  check(Quad_Test_V1_Presence.self, bytes)
  check(Google_Protobuf_FileDescriptorProto.self, bytes)
  return 0
}

func check<M: Message>(_ type: M.Type, _ bytes: UnsafeBufferPointer<UInt8>) {
  guard let m = try? M(serializedBytes: bytes) else { return }
  let encoded = m.serializedBytes()
  precondition(encoded.count == m.serializedSize, "size mismatch for \(M.protoMessageName)")
  guard let again = try? M(serializedBytes: encoded) else {
    preconditionFailure("re-encoding of a decoded \(M.protoMessageName) does not decode")
  }
  precondition(again.serializedSize == encoded.count, "re-decoded \(M.protoMessageName) changed size")
  if let json = try? m.jsonString(typeRegistry: testTypeRegistry) {
    _ = try? M(jsonString: json, typeRegistry: testTypeRegistry)
  }
}
