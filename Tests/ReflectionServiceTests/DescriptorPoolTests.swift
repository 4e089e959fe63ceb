internal import BenchService
internal import HealthService
internal import ProtoDescriptors
internal import QuadProtobuf
internal import TestMessages
internal import Testing

/// The pool that reflection answers from: symbols, extensions, dependencies, refusals.
@Suite("Descriptor pool")
struct DescriptorPoolTests {
  static func testPool() throws -> DescriptorPool {
    try DescriptorPool(files: TestFiles.all)
  }

  @Test("Every kind of symbol resolves to its file; unknown names do not")
  func symbols() throws {
    let pool = try Self.testPool()
    #expect(pool.symbol("bench.v1.Bench")?.kind == .service)
    #expect(pool.symbol("bench.v1.Bench.Unary")?.kind == .method)
    #expect(pool.symbol("bench.v1.Req")?.kind == .message)
    #expect(pool.symbol(".bench.v1.Req")?.file == "bench/v1/bench.proto")
    #expect(pool.symbol("grpc.health.v1.HealthCheckResponse.ServingStatus")?.kind == .enumeration)
    #expect(pool.symbol("grpc.health.v1.HealthCheckResponse.SERVING")?.kind == .enumValue)
    #expect(pool.symbol("grpc.health.v1.HealthCheckResponse.ServingStatus.SERVING")?.kind == .enumValue)
    #expect(pool.symbol("google.protobuf.Timestamp")?.file == "google/protobuf/timestamp.proto")
    #expect(pool.symbol("bench.v1.Nope") == nil)
    #expect(pool.symbol("") == nil)
    #expect(pool.serviceNames.contains("grpc.health.v1.Health"))
  }

  @Test("A file comes with its imports, each once, the file first")
  func dependencies() throws {
    let pool = try Self.testPool()
    for name in pool.fileNames {
      let closure = pool.withDependencies(name)
      #expect(closure.first == name)
      #expect(Set(closure).count == closure.count)
      for f in closure { #expect(pool.file(named: f) != nil) }
      for d in pool.file(named: name)!.dependency { #expect(closure.contains(d)) }
    }
  }

  @Test("Extensions resolve by extendee and number; numbers list per message")
  func extensions() throws {
    let pool = try Self.testPool()
    var found = 0
    for name in pool.fileNames {
      let file = pool.file(named: name)!
      for x in file.extension {
        let extendee = String(x.extendee.dropFirst())
        #expect(pool.fileContainingExtension(of: extendee, number: x.number) == name)
        #expect(pool.extensionNumbers(of: extendee)?.contains(x.number) == true)
        found += 1
      }
    }
    #expect(found > 0, "the test protos declare extensions")
    #expect(pool.extensionNumbers(of: "bench.v1.Req") == [])
    #expect(pool.extensionNumbers(of: "no.such.Type") == nil)
    #expect(pool.fileContainingExtension(of: "bench.v1.Req", number: 1) == nil)
  }

  @Test("Missing imports, garbage and conflicting files are refused with what failed")
  func refusals() throws {
    var file = Google_Protobuf_FileDescriptorProto()
    file.name = "a.proto"
    file.dependency = ["missing.proto"]
    #expect {
      try DescriptorPool(files: [file.serializedBytes()])
    } throws: { ($0 as? DescriptorPoolError)?.code == .missingDependency && "\($0)".contains("missing.proto") }
    #expect {
      try DescriptorPool(files: [[0xFF, 0xFF, 0xFF]])
    } throws: { ($0 as? DescriptorPoolError)?.code == .unparsable }
    var other = Google_Protobuf_FileDescriptorProto()
    other.name = "bench/v1/bench.proto"
    other.package = "other"
    #expect {
      try DescriptorPool(files: [QuadFile_bench_v1_bench_proto.serializedDescriptor, other.serializedBytes()])
    } throws: { ($0 as? DescriptorPoolError)?.code == .conflict }
    var dup = Google_Protobuf_FileDescriptorProto()
    dup.name = "dup.proto"
    dup.package = "google.protobuf"
    var m = Google_Protobuf_DescriptorProto()
    m.name = "Timestamp"
    dup.messageType = [m]
    #expect {
      try DescriptorPool(files: [dup.serializedBytes()])
    } throws: { ($0 as? DescriptorPoolError)?.code == .conflict && "\($0)".contains("google.protobuf.Timestamp") }
    // The same file twice is one file.
    let twice = try DescriptorPool(files: [QuadFile_bench_v1_bench_proto.serializedDescriptor, QuadFile_bench_v1_bench_proto.serializedDescriptor])
    #expect(twice.fileNames.filter { $0 == "bench/v1/bench.proto" }.count == 1)
  }
}

/// The descriptors the reflection tests serve: the bench and health services and the test
/// messages (which declare proto2 extensions).
enum TestFiles {
  static let all: [[UInt8]] = [
    QuadFile_bench_v1_bench_proto.serializedDescriptor,
    QuadFile_grpc_health_v1_health_proto.serializedDescriptor,
    QuadFile_quad_test_v1_everything_proto.serializedDescriptor,
    QuadFile_quad_test_v1_legacy_proto.serializedDescriptor,
    QuadFile_quad_test_v1_names_proto.serializedDescriptor,
    QuadFile_quad_test_v1_presence_proto.serializedDescriptor,
    QuadFile_nopackage_proto.serializedDescriptor,
  ]
}
