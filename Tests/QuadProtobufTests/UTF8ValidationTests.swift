internal import QuadProtobuf
internal import TestMessages
internal import Testing

@Suite("UTF-8 validation")
struct UTF8ValidationTests {
  func ours(_ bytes: [UInt8]) -> String? {
    bytes.isEmpty ? "" : bytes.withUnsafeBufferPointer { UTF8Validation.string($0.baseAddress!, count: $0.count) }
  }

  @Test("Agrees with the standard library's validating decoder on 200,000 random byte strings")
  func agreesWithStandardLibrary() {
    var rng = SplitMix64(seed: 8)
    let alphabet: [UInt8] = [0x41, 0x7F, 0x80, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xED, 0xEE, 0xEF,
                             0xF0, 0xF1, 0xF4, 0xF5, 0xFF, 0x90, 0xA0, 0x9F, 0x8F]
    for _ in 0..<200_000 {
      let n = Int.random(in: 0...12, using: &rng)
      let bytes = (0..<n).map { _ in
        Bool.random(using: &rng) ? alphabet.randomElement(using: &rng)! : UInt8.random(in: 0...255, using: &rng)
      }
      let expected = String(validating: bytes, as: UTF8.self)
      #expect(ours(bytes) == expected, "\(bytes)")
    }
  }

  @Test("Boundary code points", arguments: [
    ([0xC2, 0x80], true), ([0xC1, 0xBF], false), ([0xE0, 0xA0, 0x80], true), ([0xE0, 0x9F, 0xBF], false),
    ([0xED, 0x9F, 0xBF], true), ([0xED, 0xA0, 0x80], false), ([0xF0, 0x90, 0x80, 0x80], true),
    ([0xF0, 0x8F, 0xBF, 0xBF], false), ([0xF4, 0x8F, 0xBF, 0xBF], true), ([0xF4, 0x90, 0x80, 0x80], false),
    ([0xE2, 0x82], false), ([0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0xC3, 0xA9], true),
  ] as [([UInt8], Bool)])
  func boundaries(_ bytes: [UInt8], _ valid: Bool) {
    #expect((ours(bytes) != nil) == valid)
  }
}
