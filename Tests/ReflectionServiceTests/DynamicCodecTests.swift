internal import ProtoDescriptors
internal import QuadProtobuf
internal import TestMessages
internal import Testing

/// JSON ↔ binary by descriptor alone, checked against the generated types' own codecs.
@Suite("Dynamic codec")
struct DynamicCodecTests {
  static let codec = DynamicCodec(pool: try! DescriptorPool(files: TestFiles.all))

  /// Decodes `bytes` as M via the dynamic JSON and via the dynamic binary from M's own JSON.
  static func check<M: Message & Equatable>(_ m: M) throws {
    let type = M.protoMessageName
    // binary → dynamic JSON → generated decode
    let json = try codec.json(fromBinary: m.serializedBytes(), type: type)
    let fromJSON = try M(jsonString: json, typeRegistry: testTypeRegistry)
    #expect(fromJSON == m, "\(json)")
    // generated JSON → dynamic binary → generated decode
    let binary = try codec.binary(fromJSON: Array(try m.jsonString(typeRegistry: testTypeRegistry).utf8), type: type)
    let fromBinary = try M(serializedBytes: binary)
    #expect(fromBinary == m)
    // Canonical: the dynamic binary equals the generated one for messages without maps (whose
    // order is free).
  }

  @Test("1,000 random Everything and 500 Presence messages (well-known types, Any) cross both ways")
  func randomMessages() throws {
    var r = RandomValues(seed: 0x5EED, allowNUL: true)
    for _ in 0..<1000 { try Self.check(Quad_Test_V1_Everything.random(&r)) }
    for _ in 0..<500 { try Self.check(Quad_Test_V1_Presence.random(&r)) }
  }

  @Test("proto2: presence of default values, closed enums, packed runs and groups")
  func legacy() throws {
    var m = QTLegacy()
    m.id = 7
    try Self.check(m)
    m.count = 0
    m.name = ""
    m.flag = false
    m.size = .small
    m.sizes = [.large, .huge]
    m.packedInts = [1, -2, 300]
    m.packedSizes = [.small]
    var item = QTLegacy.Item()
    item.value = 3
    m.item = item
    var entry = QTLegacy.Entry()
    entry.key = 9
    m.entry = [entry, QTLegacy.Entry()]
    var inner = QTLegacy.Inner()
    inner.f = 0
    m.inner = inner
    try Self.check(m)
    let json = try Self.codec.json(fromBinary: m.serializedBytes(), type: "quad.test.v1.Legacy")
    #expect(json.contains(#""count":0"#), "\(json)")
    #expect(json.contains(#""flag":false"#), "\(json)")
  }

  @Test("Either field name is read; bad JSON names what is wrong")
  func errors() throws {
    let type = "quad.test.v1.Everything"
    let a = try Self.codec.binary(fromJSON: Array(#"{"fInt32": 5, "f_string": "x"}"#.utf8), type: type)
    let m = try Quad_Test_V1_Everything(serializedBytes: a)
    #expect(m.fInt32 == 5)
    #expect(m.fString == "x")
    for (bad, why) in [
      (#"{"nope": 1}"#, "nope"),
      (#"{"fInt32": "x"}"#, "int32"),
      (#"{"fInt32": 1, "fInt32": 2}"#, "twice"),
      (#"{"fInt32": 1"#, "end"),
      (#"[1]"#, "{"),
      (#"{"fEnum": "PURPLE"}"#, "PURPLE"),
    ] {
      #expect(throws: (any Error).self, "\(bad)") { try Self.codec.binary(fromJSON: Array(bad.utf8), type: type) }
      do {
        _ = try Self.codec.binary(fromJSON: Array(bad.utf8), type: type)
      } catch {
        #expect("\(error)".contains(why), "\(bad): \(error)")
      }
    }
    #expect(throws: DynamicMessageError.self) { try Self.codec.binary(fromJSON: Array("{}".utf8), type: "no.Such") }
  }

  @Test("Hostile binary: truncation, wrong wire types and deep nesting fail cleanly")
  func hostileBinary() throws {
    let type = "quad.test.v1.Everything.Nested"
    // child (field 3) nested 10,000 deep: refused at depth 100, not a stack overflow.
    var deep: [UInt8] = []
    for _ in 0..<10_000 {
      var w: [UInt8] = [0x1A]
      var n = deep.count
      while n >= 0x80 {
        w.append(UInt8(n & 0x7F) | 0x80)
        n >>= 7
      }
      w.append(UInt8(n))
      deep = w + deep
    }
    #expect(throws: DynamicMessageError.self) { try Self.codec.json(fromBinary: deep, type: type) }
    #expect(throws: DynamicMessageError.self) { try Self.codec.json(fromBinary: [0x0A, 0x05, 0x01], type: type) }
    #expect(throws: DynamicMessageError.self) { try Self.codec.json(fromBinary: [0x80], type: type) }
    #expect(throws: DynamicMessageError.self) { try Self.codec.json(fromBinary: [0x0F], type: type) }
  }
}
