// Quad's generated types (Generated/bench.pb.swift, from ../shared/bench/wire/bench.proto with
// protoc-gen-quad) exposed to the shared harness. Loops run here so generics specialise per type.
internal import QuadProtobuf
public import WireBenchKit

public enum QuadImpl {
  public static let implementation = Implementation(
    id: "quad",
    label: "Quad QuadProtobuf",
    formats: [.binary, .json]
  ) { fixture, format in
    switch fixture.typeName {
    case Wirebench_V1_Student.protoMessageName: return try make(Wirebench_V1_Student.self, fixture, format)
    case Wirebench_V1_ScanEvent.protoMessageName: return try make(Wirebench_V1_ScanEvent.self, fixture, format)
    case Wirebench_V1_ScanBatch.protoMessageName: return try make(Wirebench_V1_ScanBatch.self, fixture, format)
    case Wirebench_V1_AllTypes.protoMessageName: return try make(Wirebench_V1_AllTypes.self, fixture, format)
    default: return nil
    }
  }

  static func make<M: QuadProtobuf.Message>(_: M.Type, _ fixture: Fixture, _ format: WireFormat) throws -> any PreparedCodec {
    switch format {
    case .binary: return try QuadBinaryCodec<M>(fixture)
    case .json: return try QuadJSONCodec<M>(fixture)
    }
  }
}

struct QuadBinaryCodec<M: QuadProtobuf.Message>: PreparedCodec {
  let message: M
  let input: [UInt8]
  let encodedSize: Int
  var inputSize: Int { input.count }

  init(_ fixture: Fixture) throws {
    input = fixture.binary
    message = try M(serializedBytes: input)
    encodedSize = message.serializedBytes().count
  }

  func encode(iterations: Int) throws -> Int {
    var total = 0
    for _ in 0..<iterations {
      let out = message.serializedBytes()
      total &+= out.count
    }
    return total
  }

  func decode(iterations: Int) throws -> Int {
    var total = 0
    for _ in 0..<iterations {
      let m = try M(serializedBytes: input)
      blackHole(m)
      total &+= 1
    }
    return total
  }

  func canonicalEncoding() throws -> [UInt8] { message.serializedBytes(deterministic: true) }
}

struct QuadJSONCodec<M: QuadProtobuf.Message>: PreparedCodec {
  let message: M
  let input: [UInt8]
  let encodedSize: Int
  var inputSize: Int { input.count }

  init(_ fixture: Fixture) throws {
    input = fixture.json
    message = try M(jsonUTF8Bytes: input)
    let fromBinary = try M(serializedBytes: fixture.binary)
    precondition(message == fromBinary, "\(fixture.name): JSON and binary fixtures differ")
    encodedSize = try message.jsonUTF8Bytes().count
  }

  func encode(iterations: Int) throws -> Int {
    var total = 0
    for _ in 0..<iterations {
      let out = try message.jsonUTF8Bytes()
      total &+= out.count
    }
    return total
  }

  func decode(iterations: Int) throws -> Int {
    var total = 0
    for _ in 0..<iterations {
      let m = try M(jsonUTF8Bytes: input)
      blackHole(m)
      total &+= 1
    }
    return total
  }

  func canonicalEncoding() throws -> [UInt8] { try message.jsonUTF8Bytes() }
}
