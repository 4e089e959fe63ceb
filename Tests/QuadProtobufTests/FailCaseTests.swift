internal import Foundation
internal import QuadProtobuf
internal import TestMessages
internal import Testing

/// Inputs the fuzzers once found interesting (crashes, hangs, or seeds), replayed as unit tests:
/// each must decode or throw a typed error, never crash.
@Suite("Fuzz fail cases")
struct FailCaseTests {
  static var cases: [URL] {
    guard let dir = Bundle.module.url(forResource: "FailCases", withExtension: nil) else { return [] }
    return ((try? FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)) ?? [])
      .filter { $0.lastPathComponent != "README.md" }
      .sorted { $0.path < $1.path }
  }

  @Test("Every kept case decodes or fails cleanly, binary and JSON")
  func replay() throws {
    #expect(!Self.cases.isEmpty)
    for url in Self.cases {
      let bytes = [UInt8](try Data(contentsOf: url))
      if let m = try? Quad_Test_V1_Everything(serializedBytes: bytes) {
        _ = try? m.jsonString()
        _ = try Quad_Test_V1_Everything(serializedBytes: m.serializedBytes())
      }
      _ = try? Quad_Test_V1_Presence(jsonUTF8Bytes: bytes, typeRegistry: testTypeRegistry)
      _ = try? Quad_Test_V1_Everything(jsonUTF8Bytes: bytes)
    }
  }
}
