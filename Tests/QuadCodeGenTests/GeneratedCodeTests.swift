internal import Foundation
internal import QuadProtobuf
internal import Testing
internal import TestSupport

@testable import QuadCodeGen

/// Runs protoc to get real descriptors, feeds them to the generator in-process, and compares the
/// output with the committed generated files.
@Suite("Generated code")
struct GeneratedCodeTests {
  static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

  /// protoc's parse of `files` (imports and comments included).
  static func descriptors(_ files: [String], includes: [String]) throws -> Google_Protobuf_FileDescriptorSet {
    let out = FileManager.default.temporaryDirectory.appendingPathComponent("quad-fds-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: out) }
    let arguments = includes.map { "-I" + $0 } + ["--include_imports", "--include_source_info", "--descriptor_set_out=" + out.path] + files
    let (status, _) = try runProcessBlocking(["/usr/bin/protoc"] + arguments, in: root)
    #expect(status == 0)
    return try Google_Protobuf_FileDescriptorSet(serializedBytes: try Data(contentsOf: out))
  }

  static func request(_ files: [String], includes: [String], parameter: String) throws -> Google_Protobuf_Compiler_CodeGeneratorRequest {
    var r = Google_Protobuf_Compiler_CodeGeneratorRequest()
    r.fileToGenerate = files
    r.parameter = parameter
    r.protoFile = try descriptors(files, includes: includes).file
    return r
  }

  @Test("The committed test messages are what the generator writes now")
  func testMessagesUpToDate() throws {
    let files = ["quad/test/v1/everything.proto", "quad/test/v1/legacy.proto", "quad/test/v1/presence.proto"]
    let mapping = Self.root.appendingPathComponent("Tests/Protos/module-map.json").path
    let req = try Self.request(files, includes: ["Tests/Protos", "/usr/include"],
                               parameter: "Visibility=Public,FileNaming=PathToUnderscores,ProtoPathModuleMappings=\(mapping)")
    let out = try Generator.generate(req)
    #expect(out.count == 3)
    for f in out {
      let committed = try String(contentsOf: Self.root.appendingPathComponent("Tests/TestMessages/Generated/" + f.name), encoding: .utf8)
      #expect(committed == f.content, "\(f.name) differs from a fresh generation")
    }
  }

  @Test("The committed well-known types are what the generator writes now")
  func wellKnownUpToDate() throws {
    let files = ["google/protobuf/timestamp.proto", "google/protobuf/descriptor.proto", "google/protobuf/struct.proto"]
    let req = try Self.request(files, includes: ["/usr/include"], parameter: "Visibility=Public,FileNaming=PathToUnderscores")
    for f in try Generator.generate(req) {
      let committed = try String(contentsOf: Self.root.appendingPathComponent("Sources/QuadProtobuf/Generated/" + f.name), encoding: .utf8)
      #expect(committed == f.content, "\(f.name) differs")
    }
  }

  @Test("Embedded descriptors are protoc's own bytes, comments included")
  func embeddedDescriptor() throws {
    let set = try Self.descriptors(["google/protobuf/timestamp.proto"], includes: ["/usr/include"])
    let protocBytes = set.file.first { $0.name == "google/protobuf/timestamp.proto" }!.serializedBytes()
    #expect(QuadFile_google_protobuf_timestamp_proto.serializedDescriptor == protocBytes)
    let parsed = try Google_Protobuf_FileDescriptorProto(serializedBytes: QuadFile_google_protobuf_timestamp_proto.serializedDescriptor)
    #expect(parsed.sourceCodeInfo.location.contains { $0.leadingComments.contains("A Timestamp represents") })
  }

  @Test("Service files carry method descriptors with full paths and streaming kinds")
  func services() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quad-svc-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    try """
      syntax = "proto3";
      package campus.demo.v1;
      message Req { string id = 1; }
      // Looks students up.
      service Directory {
        // One student.
        rpc Get(Req) returns (Req);
        rpc Watch(Req) returns (stream Req);
        rpc Upload(stream Req) returns (Req);
        rpc Chat(stream Req) returns (stream Req);
      }
      """.write(to: dir.appendingPathComponent("demo.proto"), atomically: true, encoding: .utf8)
    let req = try Self.request(["demo.proto"], includes: [dir.path], parameter: "Visibility=Public")
    let out = try Generator.generate(req)
    #expect(out.map(\.name) == ["demo.pb.swift", "demo.rpc.swift"])
    let rpc = out[1].content
    #expect(rpc.contains("public enum Campus_Demo_V1_Directory {"))
    #expect(rpc.contains("/// Looks students up."))
    #expect(rpc.contains("/// One student."))
    #expect(rpc.contains("method: \"Watch\""))
    #expect(rpc.contains("clientStreaming: true,\n        serverStreaming: true"))
  }

  @Test("Options: unknown names and values are refused with a clear message")
  func options() throws {
    #expect(throws: GeneratorError.self) { try GeneratorOptions(parameter: "Visibility=Secret") }
    #expect(throws: GeneratorError.self) { try GeneratorOptions(parameter: "Colour=Red") }
    let o = try GeneratorOptions(parameter: "Visibility=Package,FileNaming=DropPath")
    #expect(o.visibility == .package)
    #expect(Generator.outputPath("a/b/c.proto", suffix: ".pb.swift", naming: .dropPath) == "c.pb.swift")
    #expect(Generator.outputPath("a/b/c.proto", suffix: ".pb.swift", naming: .pathToUnderscores) == "a_b_c.pb.swift")
  }

  @Test("The plugin declares proto3 optional support; errors go into the response")
  func pluginResponse() throws {
    let bytes = Generator.run(requestBytes: [0xFF])
    let response = try Google_Protobuf_Compiler_CodeGeneratorResponse(serializedBytes: bytes)
    #expect(response.supportedFeatures == 1)
    #expect(response.error.hasPrefix("protoc-gen-quad:"))
  }

  @Test("Naming rules", arguments: [
    ("ROLE_GRADUATE", "Role", "graduate"), ("SCAN_KIND_ENTRY", "ScanKind", "entry"),
    ("TYPE_ENUM", "Type", "`enum`"), ("FOO_1", "Foo", "foo1"), ("NULL_VALUE", "NullValue", "nullValue"),
  ])
  func enumNames(_ value: String, _ enumName: String, _ expected: String) {
    #expect(Naming.enumCase(value, enumName: enumName) == expected)
  }

  @Test("Package prefixes keep two packages' types apart")
  func prefixes() {
    #expect(Naming.packagePrefix("campus.students.v1", swiftPrefix: nil) == "Campus_Students_V1_")
    #expect(Naming.packagePrefix("other.students.v1", swiftPrefix: nil) == "Other_Students_V1_")
    #expect(Naming.packagePrefix("x", swiftPrefix: "QC") == "QC")
    #expect(Naming.property("given_name") == "givenName")
    #expect(Naming.property("default") == "`default`")
    #expect(Naming.property("unknown_fields") == "unknownFields_p")
  }
}
