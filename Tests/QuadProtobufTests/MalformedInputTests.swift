internal import QuadProtobuf
internal import TestMessages
internal import Testing

@Suite("Malformed binary input")
struct MalformedInputTests {
  func decodeError(_ bytes: [UInt8]) -> QuadProtobufError? {
    do {
      _ = try Quad_Test_V1_Everything(serializedBytes: bytes)
      return nil
    } catch let e as QuadProtobufError {
      return e
    } catch {
      return nil
    }
  }

  @Test("Truncated varint", arguments: [[0x18], [0x18, 0x80], [0x18, 0xFF, 0xFF]] as [[UInt8]])
  func truncatedVarint(_ bytes: [UInt8]) {
    #expect(decodeError(bytes)?.code == .truncated)
  }

  @Test("A varint longer than 10 bytes")
  func longVarint() {
    #expect(decodeError([0x18] + Array(repeating: 0xFF, count: 10) + [0x01])?.code == .malformedVarint)
  }

  @Test("A tag above 2^32")
  func hugeTag() {
    #expect(decodeError([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])?.code == .malformedVarint)
  }

  @Test("Lengths past the end are refused before anything is allocated")
  func lengthPastEnd() {
    // f_bytes (15) claiming 2^62 bytes.
    let e = decodeError([0x7A, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x3F])
    #expect(e?.code == .truncated)
    #expect(e?.fieldNumber == 15)
    #expect(decodeError([0x72, 0x05, 0x61])?.code == .truncated)  // string of 5, 1 present
    #expect(decodeError([0x82, 0x01, 0x05, 0x08])?.code == .truncated)  // nested of 5
  }

  @Test("Truncated fixed-width values", arguments: [[0x4D, 1, 2, 3], [0x51, 1, 2, 3, 4, 5, 6, 7]] as [[UInt8]])
  func truncatedFixed(_ bytes: [UInt8]) {
    #expect(decodeError(bytes)?.code == .truncated)
  }

  @Test("Wire types 6 and 7", arguments: [[0x1E, 0x00], [0x1F, 0x00]] as [[UInt8]])
  func badWireType(_ bytes: [UInt8]) {
    #expect(decodeError(bytes)?.code == .invalidWireType)
  }

  @Test("Field number 0", arguments: [[0x00, 0x01], [0x02, 0x00], [0x80, 0x00, 0x01]] as [[UInt8]])
  func fieldZero(_ bytes: [UInt8]) {
    #expect(decodeError(bytes)?.code == .fieldNumberZero)
  }

  @Test("An end-group tag with no group open, and a group never closed")
  func groups() {
    #expect(decodeError([0x1C])?.code == .unexpectedEndGroup)
    #expect(decodeError([0xDB, 0x3E, 0x08, 0x01])?.code == .truncated)
    #expect(decodeError([0xDB, 0x3E, 0xE4, 0x3E])?.code == .unexpectedEndGroup)  // closes 1004, not 1003
  }

  @Test("Invalid UTF-8 in a string field, also in nested messages and map keys")
  func invalidUTF8() {
    let e = decodeError([0x72, 0x02, 0xC3, 0x28])
    #expect(e?.code == .invalidUTF8)
    #expect(e?.fieldNumber == 14)
    #expect(e?.messageName == "quad.test.v1.Everything")
    // f_nested (16).b (2) with an overlong encoding of '/'.
    let nested = decodeError([0x82, 0x01, 0x04, 0x12, 0x02, 0xC0, 0xAF])
    #expect(nested?.code == .invalidUTF8)
    #expect(nested?.messageName == "quad.test.v1.Everything.Nested")
    #expect(decodeError([0x72, 0x03, 0xED, 0xA0, 0x80])?.code == .invalidUTF8)  // surrogate
  }

  @Test("Nesting: 100 levels decode, 101 fail (messages and unknown groups)")
  func recursionLimit() throws {
    func nested(_ depth: Int) -> [UInt8] {
      // Nested.child (3) inside f_nested (16).
      var inner: [UInt8] = []
      for _ in 0..<(depth - 1) { inner = [0x1A] + varint(inner.count) + inner }
      return [0x82, 0x01] + varint(inner.count) + inner
    }
    #expect(throws: Never.self) { try Quad_Test_V1_Everything(serializedBytes: nested(100)) }
    #expect(decodeError(nested(101))?.code == .recursionLimitExceeded)
    let groupOpen: [UInt8] = [0xDB, 0x3E]
    let groupClose: [UInt8] = [0xDC, 0x3E]
    let deep = Array(repeating: groupOpen, count: 101).flatMap { $0 } + Array(repeating: groupClose, count: 101).flatMap { $0 }
    #expect(decodeError(deep)?.code == .recursionLimitExceeded)
    // A million nested groups: refused, no stack overflow.
    let huge = Array(repeating: groupOpen, count: 1_000_000).flatMap { $0 }
    #expect(decodeError(huge)?.code == .recursionLimitExceeded)
  }

  @Test("Errors describe where: offset, field and message")
  func description() {
    let e = decodeError([0x18, 0x01, 0x72, 0x05, 0x61])
    #expect(e?.description == "length 5 exceeds the 1 bytes remaining at offset 4 in field 14 of quad.test.v1.Everything")
  }

  func varint(_ n: Int) -> [UInt8] {
    var v = UInt64(n)
    var out: [UInt8] = []
    while v >= 0x80 {
      out.append(UInt8(v & 0x7F) | 0x80)
      v >>= 7
    }
    out.append(UInt8(v))
    return out
  }
}

@Suite("Run-length reservation")
struct RunReservationTests {
  @Test("A long run of repeated values decodes; a run cut short still fails cleanly")
  func runs() throws {
    var m = Quad_Test_V1_Everything()
    m.rString = (0..<5000).map { "s\($0)" }
    m.rNested = (0..<3000).map { var n = Quad_Test_V1_Everything.Nested(); n.a = Int32($0); return n }
    m.mInt32String = Dictionary(uniqueKeysWithValues: (0..<2000).map { (Int32($0), "v") })
    let bytes = m.serializedBytes()
    #expect(try Quad_Test_V1_Everything(serializedBytes: bytes) == m)
    for cut in [bytes.count / 3, bytes.count / 2, bytes.count - 1] {
      #expect(throws: QuadProtobufError.self) { try Quad_Test_V1_Everything(serializedBytes: bytes[..<cut]) }
    }
  }

  @Test("Interleaved repeated fields (not contiguous) still decode in order")
  func interleaved() throws {
    // r_string (35): tag 0x9A 0x02; f_int32 (3) between the elements.
    let bytes: [UInt8] = [0x9A, 0x02, 0x01, 0x61, 0x18, 0x01, 0x9A, 0x02, 0x01, 0x62]
    let m = try Quad_Test_V1_Everything(serializedBytes: bytes)
    #expect(m.rString == ["a", "b"])
    #expect(m.fInt32 == 1)
  }
}
