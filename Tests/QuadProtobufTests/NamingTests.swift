internal import QuadProtobuf
internal import TestMessages
internal import Testing

@Suite("Generated names for awkward protos")
struct NamingTests {
  @Test("Keywords, metatype names and clashing members round-trip in binary and JSON")
  func keywords() throws {
    var m = Quad_Test_V1_Names()
    m.class = 1
    m.self_p = 2
    m.type.protocol = "h2"
    m.hashValue_p = 4
    m.description_p = "d"
    m.init_p = 9
    m.serializedBytes_p = 11
    m.keywords = .self_p
    m.case = "c"
    m.types["t"] = m.type
    let back = try Quad_Test_V1_Names(serializedBytes: m.serializedBytes())
    #expect(back == m)
    #expect(back.where == .case("c"))
    let json = try m.jsonString()
    #expect(json.contains(#""class":1"#))
    #expect(json.contains(#""keywords":"KEYWORDS_SELF""#))
    #expect(try Quad_Test_V1_Names(jsonString: json) == m)
    #expect(Quad_Test_V1_Names.TypeMessage.protoMessageName == "quad.test.v1.Names.Type")
  }

  @Test("Package-less types named like Swift's get a suffix instead of shadowing them")
  func standardNames() throws {
    var i = Int32Message()
    i.value = 5
    i.text.value = "x"
    #expect(Int32Message.protoMessageName == "Int32")
    #expect(try Int32Message(serializedBytes: i.serializedBytes()) == i)
    #expect(BoolEnum.allCases == [.false])
  }
}
