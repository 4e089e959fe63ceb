// JSON decoding must never crash or hang: any input either throws a QuadProtobufError or gives a
// message whose JSON (when it has one) parses again.
internal import FuzzMessages
internal import QuadProtobuf

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
  let bytes = Array(UnsafeBufferPointer(start: start, count: count))
  check(Quad_Test_V1_Everything.self, bytes)
  check(Quad_Test_V1_Presence.self, bytes)
  check(QTLegacy.self, bytes)
  return 0
}

func check<M: Message>(_ type: M.Type, _ bytes: [UInt8]) {
  for ignore in [false, true] {
    guard let m = try? M(jsonUTF8Bytes: bytes, ignoreUnknownFields: ignore, typeRegistry: testTypeRegistry) else { continue }
    _ = try? M(serializedBytes: m.serializedBytes())
    guard let json = try? m.jsonString(typeRegistry: testTypeRegistry) else { continue }
    do {
      _ = try M(jsonString: json, typeRegistry: testTypeRegistry)
    } catch {
      preconditionFailure("\(M.protoMessageName): own JSON does not parse: \(error)\n\(json)")
    }
  }
}
