internal import Foundation
internal import QuadProtobuf
internal import TestMessages
internal import Testing
internal import TestSupport

/// Runs a command and returns its standard output; fails the test on a non-zero exit.
func run(_ executable: String, _ arguments: [String], in directory: URL? = nil) throws -> String {
  let (status, text) = try runProcessBlocking([executable] + arguments, in: directory)
  #expect(status == 0, "\(executable) \(arguments.joined(separator: " ")):\n\(text.suffix(3000))")
  return text
}

let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// A FileDescriptorSet of the test protos (imports included) for the Python peer.
func testDescriptorSet(in dir: URL) throws -> String {
  let path = dir.appendingPathComponent("test.fds").path
  _ = try run("/usr/bin/protoc", ["-I", "Tests/Protos", "-I", "/usr/include", "--include_imports",
    "--descriptor_set_out=" + path, "quad/test/v1/everything.proto", "quad/test/v1/presence.proto",
    "quad/test/v1/legacy.proto"], in: packageRoot)
  return path
}

func temporaryDirectory() throws -> URL {
  let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quad-diff-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
  return dir
}

let peer = packageRoot.appendingPathComponent("Tests/QuadProtobufDifferentialTests/python/peer.py").path

extension QTLegacy {
  static func random(_ r: inout RandomValues) -> Self {
    var m = Self()
    m.id = r.int64()
    if r.chance(50) { m.count = r.int32() }
    if r.chance(50) { m.name = r.string() }
    if r.chance(50) { m.size = [.small, .large, .huge][Int.random(in: 0..<3, using: &r.rng)] }
    if r.chance(50) { m.ratio = r.double(allowNaN: false) }
    if r.chance(50) { m.blob = r.bytes() }
    if r.chance(50) { m.flag = r.bool() }
    for _ in 0..<r.count() { m.sizes.append(.huge) }
    for _ in 0..<r.count() { m.packedInts.append(r.int32()) }
    for _ in 0..<r.count() { m.packedSizes.append(.small) }
    if r.chance(50) { m.item.value = r.int32() }
    if r.chance(50) { m.item.label = r.string() }
    for _ in 0..<r.count() {
      var e = Entry()
      e.key = r.int32()
      m.entry.append(e)
    }
    if r.chance(50) { m.inner.f = r.float(allowNaN: false) }
    return m
  }
}

@Suite("Differential: Python protobuf (upb)")
struct PythonDifferentialTests {
  /// Swift encodes (binary and JSON); Python decodes both, compares them, and re-encodes;
  /// Swift decodes Python's binary and JSON back to the original value.
  @Test("Swift → Python → Swift: 600 Everything, 400 Presence (well-known types), 300 Legacy (proto2)")
  func swiftToPython() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let fds = try testDescriptorSet(in: dir)
    var r = RandomValues(seed: 2026)
    var everything: [Quad_Test_V1_Everything] = []
    var presence: [Quad_Test_V1_Presence] = []
    var legacy: [QTLegacy] = []
    func write<M: Message>(_ m: M, _ i: Int, json: Bool) throws {
      let stem = dir.appendingPathComponent("\(M.protoMessageName)__\(i)")
      try Data(m.serializedBytes()).write(to: stem.appendingPathExtension("bin"))
      if json {
        try Data(try m.jsonUTF8Bytes(typeRegistry: testTypeRegistry)).write(to: stem.appendingPathExtension("json"))
      }
    }
    for i in 0..<600 {
      everything.append(.random(&r))
      try write(everything[i], i, json: true)
    }
    for i in 0..<400 {
      presence.append(.random(&r))
      try write(presence[i], i, json: true)
    }
    for i in 0..<300 {
      legacy.append(.random(&r))
      try write(legacy[i], i, json: true)
    }
    let out = try run("/usr/bin/env", ["python3", peer, fds, "echo", dir.path])
    #expect(out.contains("echo: 1300 messages"))

    func check<M: Message>(_ originals: [M]) throws {
      for (i, m) in originals.enumerated() {
        let stem = dir.appendingPathComponent("\(M.protoMessageName)__\(i)")
        let verdict = try String(contentsOf: stem.appendingPathExtension("jsoncheck"), encoding: .utf8)
        #expect(verdict == "ok", "\(M.protoMessageName) \(i): Python read Swift's JSON: \(verdict.prefix(2000))")
        let pyBinary = try Data(contentsOf: stem.appendingPathExtension("py.bin"))
        #expect(try M(serializedBytes: pyBinary) == m, "\(M.protoMessageName) \(i): Python's binary")
        let pyJSON = try String(contentsOf: stem.appendingPathExtension("py.json"), encoding: .utf8)
        #expect(try M(jsonString: pyJSON, typeRegistry: testTypeRegistry) == m, "\(M.protoMessageName) \(i): Python's JSON")
      }
    }
    try check(everything)
    try check(presence)
    try check(legacy)
  }

  /// Python generates random messages from the descriptors; Swift decodes the binary and the
  /// JSON to equal values and re-encodes both; Python checks they parse to its originals.
  @Test("Python → Swift → Python: 400 each of Everything, Legacy, Everything.Nested")
  func pythonToSwift() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let fds = try testDescriptorSet(in: dir)
    _ = try run("/usr/bin/env", ["python3", peer, fds, "generate", dir.path, "400", "17"])
    func roundTrip<M: Message>(_ type: M.Type) throws {
      for i in 0..<400 {
        let stem = dir.appendingPathComponent("py__\(M.protoMessageName)__\(i)")
        let binary = try M(serializedBytes: try Data(contentsOf: stem.appendingPathExtension("bin")))
        let json = try M(jsonString: try String(contentsOf: stem.appendingPathExtension("json"), encoding: .utf8))
        #expect(binary == json, "\(M.protoMessageName) \(i): binary and JSON decode differently")
        try Data(binary.serializedBytes()).write(to: stem.appendingPathExtension("swift.bin"))
        try Data(try binary.jsonUTF8Bytes()).write(to: stem.appendingPathExtension("swift.json"))
      }
    }
    try roundTrip(Quad_Test_V1_Everything.self)
    try roundTrip(QTLegacy.self)
    try roundTrip(Quad_Test_V1_Everything.Nested.self)
    let out = try run("/usr/bin/env", ["python3", peer, fds, "compare", dir.path])
    #expect(out.contains("compare: 2400 checked, 0 failed"), "\(out.suffix(3000))")
  }
}
