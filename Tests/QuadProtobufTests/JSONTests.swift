internal import QuadProtobuf
internal import TestMessages
internal import Testing

@Suite("Proto3 JSON mapping")
struct JSONTests {
  @Test("Names are lowerCamelCase; 64-bit integers are strings; bytes base64; enums by name")
  func basics() throws {
    var m = Quad_Test_V1_Everything()
    m.fInt64 = -5
    m.fUint64 = 18_446_744_073_709_551_615
    m.fInt32 = 7
    m.fBytes = [0xFF, 0x00, 0x01]
    m.fEnum = .green
    m.fString = "a\"b\n"
    m.rInt32 = [1, 2]
    m.mInt32String = [2: "b", 1: "a"]
    m.fDouble = .nan
    m.fFloat = -.infinity
    let json = try m.jsonString()
    #expect(json == #"{"fDouble":"NaN","fFloat":"-Infinity","fInt32":7,"fInt64":"-5","fUint64":"18446744073709551615","fString":"a\"b\n","fBytes":"/wAB","fEnum":"COLOR_GREEN","rInt32":[1,2],"mInt32String":{"1":"a","2":"b"}}"#)
  }

  @Test("Random messages round-trip through JSON (500 seeded cases)")
  func randomRoundTrips() throws {
    var r = RandomValues(seed: 99)
    for i in 0..<500 {
      let m = Quad_Test_V1_Everything.random(&r, allowNaN: false)
      let json = try m.jsonString()
      let back = try Quad_Test_V1_Everything(jsonString: json)
      #expect(back == m, "case \(i): \(json.prefix(300))")
    }
  }

  @Test("Random well-known-type messages round-trip through JSON (300 seeded cases)")
  func randomWellKnown() throws {
    var r = RandomValues(seed: 7)
    for i in 0..<300 {
      let m = Quad_Test_V1_Presence.random(&r)
      let json = try m.jsonString(typeRegistry: testTypeRegistry)
      let back = try Quad_Test_V1_Presence(jsonString: json, typeRegistry: testTypeRegistry)
      #expect(back == m, "case \(i): \(json.prefix(400))")
    }
  }

  @Test("Parsing accepts original names, numbers as strings, enums as numbers, null as default")
  func lenientParsing() throws {
    let m = try Quad_Test_V1_Everything(jsonString: """
      { "f_int32": "12", "fInt64": 34, "f_enum": 2, "fUint32": 1e2, "fString": null,
        "r_int32": [1, "2"], "fDouble": "1.5", "oInt64": "9", "m_bool_bytes": {"true": "AQI"} }
      """)
    #expect(m.fInt32 == 12)
    #expect(m.fInt64 == 34)
    #expect(m.fEnum == .green)
    #expect(m.fUint32 == 100)
    #expect(m.rInt32 == [1, 2])
    #expect(m.fDouble == 1.5)
    #expect(m.oInt64 == 9)
    #expect(m.mBoolBytes == [true: [1, 2]])
  }

  @Test("Well-known types have their special forms")
  func wellKnown() throws {
    var p = Quad_Test_V1_Presence()
    p.timestamp.seconds = 1_700_000_000
    p.timestamp.nanos = 5_000_000
    p.duration.seconds = -1
    p.duration.nanos = -500_000_000
    p.int64Value.value = 5
    p.fieldMask.paths = ["f_int32", "f_nested.child_value"]
    p.value.stringValue = "v"
    p.nullValue = .nullValue
    p.empty = .init()
    let json = try p.jsonString()
    #expect(json == #"{"timestamp":"2023-11-14T22:13:20.005Z","duration":"-1.500s","int64Value":"5","value":"v","fieldMask":"fInt32,fNested.childValue","empty":{}}"#)
    let back = try Quad_Test_V1_Presence(jsonString: json)
    #expect(back == p)
    let t = try Quad_Test_V1_Presence(jsonString: #"{"timestamp":"1970-01-01T01:00:00+01:00"}"#)
    #expect(t.timestamp.seconds == 0)
  }

  @Test("Any carries its payload's fields and @type, or a well-known payload under value")
  func any() throws {
    var inner = Quad_Test_V1_Everything.Nested()
    inner.a = 3
    var p = Quad_Test_V1_Presence()
    p.any.typeUrl = "type.googleapis.com/quad.test.v1.Everything.Nested"
    p.any.value = inner.serializedBytes()
    let json = try p.jsonString(typeRegistry: testTypeRegistry)
    #expect(json == #"{"any":{"@type":"type.googleapis.com/quad.test.v1.Everything.Nested","a":3}}"#)
    let reordered = #"{"any":{"a":3,"@type":"type.googleapis.com/quad.test.v1.Everything.Nested"}}"#
    #expect(try Quad_Test_V1_Presence(jsonString: reordered, typeRegistry: testTypeRegistry) == p)
    var ts = Google_Protobuf_Timestamp()
    ts.seconds = 1
    p.any.typeUrl = "type.googleapis.com/google.protobuf.Timestamp"
    p.any.value = ts.serializedBytes()
    let wk = try p.jsonString(typeRegistry: testTypeRegistry)
    #expect(wk == #"{"any":{"@type":"type.googleapis.com/google.protobuf.Timestamp","value":"1970-01-01T00:00:01Z"}}"#)
    #expect(try Quad_Test_V1_Presence(jsonString: wk, typeRegistry: testTypeRegistry) == p)
    #expect(throws: QuadProtobufError.self) { try p.jsonString() }  // no registry
  }

  @Test("Bad JSON gets a typed error", arguments: [
    (#"{"fInt32": 1.5}"#, QuadProtobufError.Code.jsonTypeMismatch),
    (#"{"fInt32": 3000000000}"#, .jsonTypeMismatch),
    (#"{"fBool": "true"}"#, .jsonTypeMismatch),
    (#"{"nope": 1}"#, .unknownJSONField),
    (#"{"fInt32": 1,}"#, .invalidJSON),
    (#"{"fInt32" 1}"#, .invalidJSON),
    (#"{"fString": "\ud800"}"#, .invalidJSON),
    (#"{"fEnum": "COLOR_PURPLE"}"#, .jsonTypeMismatch),
    (#"{"fBytes": "!!"}"#, .jsonTypeMismatch),
    (#"{"fInt32": 01}"#, .invalidJSON),
    (#"{} x"#, .invalidJSON),
    (#"["#, .invalidJSON),
  ])
  func errors(_ json: String, _ code: QuadProtobufError.Code) {
    #expect {
      _ = try Quad_Test_V1_Everything(jsonString: json)
    } throws: { ($0 as? QuadProtobufError)?.code == code }
  }

  @Test("Deep JSON nesting is refused")
  func depth() {
    let deep = #"{"fNested":"# + String(repeating: #"{"child":"#, count: 150) + "{}" + String(repeating: "}", count: 151)
    #expect { _ = try Quad_Test_V1_Everything(jsonString: deep) } throws: {
      ($0 as? QuadProtobufError)?.code == .recursionLimitExceeded
    }
  }

  @Test("Unknown fields may be ignored on request")
  func ignoreUnknown() throws {
    let m = try Quad_Test_V1_Everything(jsonString: #"{"nope": {"a": [1, 2]}, "fInt32": 4}"#, ignoreUnknownFields: true)
    #expect(m.fInt32 == 4)
  }
}

@Suite("JSON integer boundaries")
struct JSONIntegerBoundaryTests {
  @Test("Exponent forms at and past the 64-bit limits are refused, never trapped", arguments: [
    #"{"fUint64": 1.8446744073709552e19}"#, #"{"fInt64": 9.3e18}"#, #"{"fInt64": -9.3e18}"#,
    #"{"fUint64": -1}"#, #"{"fUint32": 4294967296}"#, #"{"fInt32": -2147483649}"#, #"{"fInt64": "1e400"}"#,
  ])
  func outOfRange(_ json: String) {
    #expect { _ = try Quad_Test_V1_Everything(jsonString: json) } throws: {
      ($0 as? QuadProtobufError)?.code == .jsonTypeMismatch
    }
  }

  @Test("Limits themselves parse")
  func limits() throws {
    let m = try Quad_Test_V1_Everything(jsonString: #"{"fUint64": "18446744073709551615", "fInt64": "-9223372036854775808", "fInt32": -2147483648, "fUint32": 4294967295, "fSint32": 2.147483647e9}"#)
    #expect(m.fUint64 == .max)
    #expect(m.fInt64 == .min)
    #expect(m.fInt32 == .min)
    #expect(m.fUint32 == .max)
    #expect(m.fSint32 == .max)
  }
}
