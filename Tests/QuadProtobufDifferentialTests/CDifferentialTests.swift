internal import CTestMessages
internal import QuadProtobuf
internal import TestMessages
internal import Testing

internal import Glibc

@Suite("Differential: libprotobuf-c")
struct CDifferentialTests {
  /// Swift encodes; libprotobuf-c unpacks and packs again; Swift decodes C's bytes to the
  /// original value (strings without U+0000, which libprotobuf-c's C strings cannot hold). Where no map entry holds a default key or value (which protoc-c omits
  /// inside entries, as proto3 allows), C's bytes must equal Swift's exactly.
  @Test("2,000 random Everything messages through libprotobuf-c 1.4.1")
  func throughProtobufC() throws {
    var r = RandomValues(seed: 0xC0FFEE, allowNUL: false)
    var identical = 0
    var comparable = 0
    for i in 0..<2000 {
      let m = Quad_Test_V1_Everything.random(&r, depth: 2)
      let bytes = m.serializedBytes()
      var out: UnsafeMutablePointer<UInt8>?
      var outLength = 0
      let rc = bytes.withUnsafeBufferPointer { quadtest_everything_repack($0.baseAddress, $0.count, &out, &outLength) }
      #expect(rc == 0, "case \(i): libprotobuf-c rejected Swift's encoding")
      guard rc == 0, let out else { continue }
      let cBytes = Array(UnsafeBufferPointer(start: out, count: outLength))
      free(out)
      #expect(try Quad_Test_V1_Everything(serializedBytes: cBytes) == m, "case \(i)")
      if !Self.hasDefaultMapEntry(m) {
        comparable += 1
        if cBytes == bytes { identical += 1 }
      }
    }
    #expect(comparable > 100)
    #expect(identical == comparable, "byte-identical: \(identical) of \(comparable)")
  }

  @Test("libprotobuf-c rejects what Swift rejects: truncated and malformed input")
  func malformedAgreement() {
    for bad: [UInt8] in [[0x18], [0x72, 0x05, 0x61], [0x1F, 0x00], [0x82, 0x01, 0x05, 0x08]] {
      var out: UnsafeMutablePointer<UInt8>?
      var outLength = 0
      let rc = bad.withUnsafeBufferPointer { quadtest_everything_repack($0.baseAddress, $0.count, &out, &outLength) }
      if let out { free(out) }
      #expect(rc == -1)
      #expect(throws: QuadProtobufError.self) { try Quad_Test_V1_Everything(serializedBytes: bad) }
    }
  }

  /// Whether libprotobuf-c's bytes may legitimately differ: it omits default keys and values inside
  /// map entries (proto3 allows that), and it also omits `-0.0` in singular and map fields, which
  /// proto3 says is not the default (C++, upb and Quad write it) — a libprotobuf-c 1.4.1 deviation.
  static func hasDefaultMapEntry(_ m: Quad_Test_V1_Everything) -> Bool {
    if (m.fDouble == 0 && m.fDouble.sign == .minus) || (m.fFloat == 0 && m.fFloat.sign == .minus) { return true }
    if m.mInt32String.contains(where: { $0.key == 0 || $0.value.isEmpty }) { return true }
    if m.mStringNested.contains(where: { $0.key.isEmpty || $0.value.serializedSize == 0 }) { return true }
    if m.mBoolBytes.contains(where: { !$0.key || $0.value.isEmpty }) { return true }
    if m.mUint64Enum.contains(where: { $0.key == 0 || $0.value.rawValue == 0 }) { return true }
    if m.mSint64Double.contains(where: { $0.key == 0 || $0.value == 0 }) { return true }  // -0.0 too
    if m.mFixed32Float.contains(where: { $0.key == 0 || $0.value == 0 }) { return true }
    if m.mStringString.contains(where: { $0.key.isEmpty || $0.value.isEmpty }) { return true }
    if m.hasSelf_p, hasDefaultMapEntry(m.self_p) { return true }
    return false
  }
}
