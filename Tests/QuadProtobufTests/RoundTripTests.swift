internal import QuadProtobuf
internal import TestMessages
internal import Testing

@Suite("Binary round trips")
struct RoundTripTests {
  @Test("Random messages of every field kind survive encode and decode (2,000 seeded cases)")
  func randomRoundTrips() throws {
    var r = RandomValues(seed: 0x5157_4144)
    for i in 0..<2000 {
      let m = Quad_Test_V1_Everything.random(&r, allowNaN: false)
      let bytes = m.serializedBytes()
      #expect(bytes.count == m.serializedSize)
      let back = try Quad_Test_V1_Everything(serializedBytes: bytes)
      #expect(back == m, "case \(i)")
    }
  }

  @Test("Edge values of every scalar type round-trip")
  func edgeValues() throws {
    var m = Quad_Test_V1_Everything()
    for (i32, i64) in [(Int32.min, Int64.min), (Int32.max, Int64.max), (-1, -1), (0, 0), (1, 1)] {
      m.fInt32 = i32
      m.fInt64 = i64
      m.fSint32 = i32
      m.fSint64 = i64
      m.fSfixed32 = i32
      m.fSfixed64 = i64
      m.fUint32 = UInt32(bitPattern: i32)
      m.fUint64 = UInt64(bitPattern: i64)
      m.fFixed32 = UInt32(bitPattern: i32)
      m.fFixed64 = UInt64(bitPattern: i64)
      m.rInt32 = [i32, 0, i32]
      m.rSint64 = [i64, i64 / -2]
      let back = try Quad_Test_V1_Everything(serializedBytes: m.serializedBytes())
      #expect(back == m)
    }
    m.fDouble = .nan
    m.fFloat = -.infinity
    let back = try Quad_Test_V1_Everything(serializedBytes: m.serializedBytes())
    #expect(back.fDouble.isNaN)
    #expect(back.fFloat == -.infinity)
  }

  @Test("Known encodings: varints, zigzag, fixed, negative int32 as 10 bytes")
  func knownBytes() {
    var m = Quad_Test_V1_Everything()
    m.fInt32 = -1
    #expect(m.serializedBytes() == [0x18, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])
    m = .init()
    m.fSint32 = -1
    #expect(m.serializedBytes() == [0x38, 0x01])
    m = .init()
    m.fSint64 = 1
    #expect(m.serializedBytes() == [0x40, 0x02])
    m = .init()
    m.fFixed32 = 1
    #expect(m.serializedBytes() == [0x4D, 1, 0, 0, 0])
    m = .init()
    m.rInt32 = [1, 150]
    #expect(m.serializedBytes() == [0xBA, 0x01, 0x03, 0x01, 0x96, 0x01])
    m = .init()
    m.rInt32Unpacked = [1, 2]
    #expect(m.serializedBytes() == [0xB0, 0x02, 0x01, 0xB0, 0x02, 0x02])
    m = .init()
    m.fDouble = -0.0  // proto3: -0.0 is not the default, so it is written
    #expect(m.serializedBytes().count == 9)
  }

  @Test("Defaults are not written in proto3; an empty message encodes to no bytes")
  func defaultsOmitted() {
    #expect(Quad_Test_V1_Everything().serializedBytes().isEmpty)
    var m = Quad_Test_V1_Everything()
    m.fString = ""
    m.fEnum = .unspecified
    m.rInt32 = []
    #expect(m.serializedBytes().isEmpty)
  }

  @Test("Unknown fields are kept byte for byte and written back")
  func unknownFields() throws {
    // Field 1000 varint, field 1001 fixed64, field 1002 length-delimited, field 1003 group, field 1004 fixed32.
    let unknown: [UInt8] = [0xC0, 0x3E, 0x96, 0x01]
      + [0xC9, 0x3E, 1, 2, 3, 4, 5, 6, 7, 8]
      + [0xD2, 0x3E, 0x02, 0xAA, 0xBB]
      + [0xDB, 0x3E, 0x08, 0x01, 0xDC, 0x3E]
      + [0xE5, 0x3E, 9, 9, 9, 9]
    let known: [UInt8] = [0x18, 0x05]
    let m = try Quad_Test_V1_Everything(serializedBytes: known + unknown)
    #expect(m.fInt32 == 5)
    #expect(m.unknownFields.bytes == unknown)
    #expect(m.serializedBytes() == known + unknown)
  }

  @Test("A field with the wrong wire type is kept as an unknown field")
  func wrongWireType() throws {
    // f_int32 (3) sent as fixed32.
    let bytes: [UInt8] = [0x1D, 1, 0, 0, 0]
    let m = try Quad_Test_V1_Everything(serializedBytes: bytes)
    #expect(m.fInt32 == 0)
    #expect(m.serializedBytes() == bytes)
  }

  @Test("Fields in any order decode; a repeated singular field: the last wins, messages merge")
  func lastWinsAndMerge() throws {
    var a = Quad_Test_V1_Everything()
    a.fInt32 = 1
    a.fNested.a = 7
    var b = Quad_Test_V1_Everything()
    b.fInt32 = 2
    b.fNested.b = "x"
    b.fString = "s"
    let m = try Quad_Test_V1_Everything(serializedBytes: b.serializedBytes() + a.serializedBytes())
    #expect(m.fInt32 == 1)
    #expect(m.fNested.a == 7)
    #expect(m.fNested.b == "x")
    #expect(m.fString == "s")
    // Repeated fields append across occurrences.
    var r1 = Quad_Test_V1_Everything()
    r1.rString = ["a"]
    var r2 = Quad_Test_V1_Everything()
    r2.rString = ["b"]
    let r = try Quad_Test_V1_Everything(serializedBytes: r1.serializedBytes() + r2.serializedBytes())
    #expect(r.rString == ["a", "b"])
  }

  @Test("Packed and unpacked encodings both decode for every packable type")
  func packedAndUnpacked() throws {
    // r_int32 (23) unpacked: tag 23<<3|0 = 184 = [0xB8, 0x01]
    let unpacked: [UInt8] = [0xB8, 0x01, 0x05, 0xB8, 0x01, 0x06]
    #expect(try Quad_Test_V1_Everything(serializedBytes: unpacked).rInt32 == [5, 6])
    // r_int32_unpacked (38) sent packed: tag 38<<3|2 = 306 = [0xB2, 0x02]
    let packed: [UInt8] = [0xB2, 0x02, 0x02, 0x07, 0x08]
    #expect(try Quad_Test_V1_Everything(serializedBytes: packed).rInt32Unpacked == [7, 8])
    // Packed doubles (21): tag 21<<3|2 = 170 = [0xAA, 0x01]
    var m = Quad_Test_V1_Everything()
    m.rDouble = [1.5, -2]
    var u = Quad_Test_V1_Everything()
    for d in m.rDouble {  // write them unpacked by hand: tag 21<<3|1 = 169
      u.unknownFields.bytes += [0xA9, 0x01] + withUnsafeBytes(of: d.bitPattern.littleEndian, Array.init)
    }
    #expect(try Quad_Test_V1_Everything(serializedBytes: u.serializedBytes()).rDouble == [1.5, -2])
  }

  @Test("Open enums keep unrecognised numbers")
  func openEnum() throws {
    var m = Quad_Test_V1_Everything()
    m.fEnum = .UNRECOGNIZED(77)
    m.rEnum = [.red, .UNRECOGNIZED(-5)]
    let back = try Quad_Test_V1_Everything(serializedBytes: m.serializedBytes())
    #expect(back.fEnum == .UNRECOGNIZED(77))
    #expect(back.rEnum == [.red, .UNRECOGNIZED(-5)])
  }

  @Test("Oneof: setting one member clears the others; the last on the wire wins")
  func oneof() throws {
    var m = Quad_Test_V1_Everything()
    m.oString = "a"
    m.oInt64 = 5
    #expect(m.choice == .oInt64(5))
    #expect(m.oString == "")
    var n = Quad_Test_V1_Everything()
    n.oNested.a = 1
    let both = try Quad_Test_V1_Everything(serializedBytes: m.serializedBytes() + n.serializedBytes())
    #expect(both.choice == .oNested(n.oNested))
    // Default values inside a oneof are still written.
    var z = Quad_Test_V1_Everything()
    z.oInt64 = 0
    #expect(z.serializedBytes() == [0xD0, 0x02, 0x00])
  }

  @Test("Maps: entries with missing key or value take defaults; a repeated key keeps the last")
  func maps() throws {
    // m_int32_string (50): tag 50<<3|2 = 402 = [0x92, 0x03]; entry with only a value.
    let bytes: [UInt8] = [0x92, 0x03, 0x03, 0x12, 0x01, 0x61] + [0x92, 0x03, 0x05, 0x08, 0x00, 0x12, 0x01, 0x62]
    let m = try Quad_Test_V1_Everything(serializedBytes: bytes)
    #expect(m.mInt32String == [0: "b"])
  }

  @Test("Recursive messages nest and compare by value")
  func recursion() throws {
    var m = Quad_Test_V1_Everything()
    m.self_p.self_p.fInt32 = 3
    #expect(m.hasSelf_p)
    var copy = m
    copy.self_p.self_p.fInt32 = 4
    #expect(m.self_p.self_p.fInt32 == 3)  // copy-on-write
    let back = try Quad_Test_V1_Everything(serializedBytes: m.serializedBytes())
    #expect(back == m)
    #expect(back != copy)
  }

  @Test("Input from any Collection of bytes decodes")
  func collections() throws {
    var m = Quad_Test_V1_Everything()
    m.fString = "quad"
    let bytes = m.serializedBytes()
    #expect(try Quad_Test_V1_Everything(serializedBytes: bytes[...]) == m)
    #expect(try Quad_Test_V1_Everything(serializedBytes: AnyCollection(bytes)) == m)
  }
}

@Suite("Deterministic encoding")
struct DeterministicTests {
  @Test("Map entries in key order: equal messages give equal bytes, whatever the insertion order")
  func sortedMaps() throws {
    var a = Quad_Test_V1_Everything()
    var b = Quad_Test_V1_Everything()
    let keys: [Int32] = Array(-50...50).shuffled()
    for k in keys { a.mInt32String[k] = "v\(k)" }
    for k in keys.reversed() { b.mInt32String[k] = "v\(k)" }
    a.mBoolBytes = [true: [1], false: [0]]
    b.mBoolBytes = [false: [0], true: [1]]
    a.mStringString = ["b": "2", "a": "1", "": "0"]
    b.mStringString = ["a": "1", "": "0", "b": "2"]
    #expect(a.serializedBytes(deterministic: true) == b.serializedBytes(deterministic: true))
    let bytes = a.serializedBytes(deterministic: true)
    #expect(try Quad_Test_V1_Everything(serializedBytes: bytes) == a)
    // false sorts before true; the first entry of m_bool_bytes (52) is key false.
    let entry = bytes.firstIndex(of: 0xA2)!
    #expect(Array(bytes[entry..<entry + 5]) == [0xA2, 0x03, 0x05, 0x08, 0x00])
  }
}

@Suite("Packed fixed-width runs")
struct PackedFixedTests {
  @Test("Fixed-width packed runs copy exactly; a run whose length is not a multiple fails")
  func fixedRuns() throws {
    var m = Quad_Test_V1_Everything()
    m.rDouble = [1.5, -0.0, .infinity, .leastNonzeroMagnitude]
    m.rFloat = [3.25, -1]
    m.rFixed32 = [0, 1, .max]
    m.rFixed64 = [.max, 7]
    m.rSfixed32 = [.min, -1]
    m.rSfixed64 = [.min, .max]
    let bytes = m.serializedBytes()
    // r_fixed32 (29): tag 0xEA 0x01, 12 bytes, little-endian.
    let at = bytes.firstIndex(of: 0xEA)!
    #expect(Array(bytes[at..<at + 15]) == [0xEA, 0x01, 12, 0, 0, 0, 0, 1, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF])
    let back = try Quad_Test_V1_Everything(serializedBytes: bytes)
    #expect(back.rDouble.map(\.bitPattern) == m.rDouble.map(\.bitPattern))
    #expect(back == m)
    // Two runs append; a 5-byte fixed32 run is truncated.
    #expect(try Quad_Test_V1_Everything(serializedBytes: bytes + bytes).rFixed32.count == 6)
    #expect(throws: QuadProtobufError.self) {
      try Quad_Test_V1_Everything(serializedBytes: [0xEA, 0x01, 5, 1, 2, 3, 4, 5])
    }
  }
}
