internal import Foundation
internal import QuadProtobuf

/// The `--quad_opt` options, named as swift-protobuf names them.
public struct GeneratorOptions: Sendable {
  public enum Visibility: String, Sendable { case `internal` = "Internal", package = "Package", `public` = "Public" }
  public enum FileNaming: String, Sendable { case fullPath = "FullPath", pathToUnderscores = "PathToUnderscores", dropPath = "DropPath" }

  public var visibility: Visibility = .internal
  public var fileNaming: FileNaming = .fullPath
  /// Proto file path → the Swift module that holds its generated code.
  public var moduleMappings: [String: String] = [:]

  public init() {}

  /// Parses `Key=Value,Key=Value` as protoc passes `--quad_opt`.
  public init(parameter: String) throws {
    for part in parameter.split(separator: ",") where !part.isEmpty {
      let kv = part.split(separator: "=", maxSplits: 1).map { String($0).trimmingSpaces }
      guard kv.count == 2 else { throw GeneratorError("option \"\(part)\" is not Key=Value") }
      switch kv[0] {
      case "Visibility":
        guard let v = Visibility(rawValue: kv[1]) else {
          throw GeneratorError("Visibility must be Internal, Package or Public, not \"\(kv[1])\"")
        }
        visibility = v
      case "FileNaming":
        guard let v = FileNaming(rawValue: kv[1]) else {
          throw GeneratorError("FileNaming must be FullPath, PathToUnderscores or DropPath, not \"\(kv[1])\"")
        }
        fileNaming = v
      case "ProtoPathModuleMappings":
        moduleMappings = try Self.readModuleMappings(path: kv[1])
      default:
        throw GeneratorError("unknown option \"\(kv[0])\" (known: Visibility, FileNaming, ProtoPathModuleMappings)")
      }
    }
  }

  /// Reads a module-mappings file: swift-protobuf's text form
  /// (`mapping { module_name: "M" proto_file_path: "a.proto" }`) or JSON (`{"M": ["a.proto"]}`).
  static func readModuleMappings(path: String) throws -> [String: String] {
    guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
      throw GeneratorError("cannot read ProtoPathModuleMappings file \(path)")
    }
    var result: [String: String] = [:]
    if text.trimmingSpaces.hasPrefix("{") {
      guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: [String]] else {
        throw GeneratorError("\(path): expected {\"Module\": [\"file.proto\", …]}")
      }
      for (module, files) in object { for f in files { result[f] = module } }
      return result
    }
    // Text format: collect each mapping block's module_name and proto_file_path values.
    var module: String?
    var files: [String] = []
    func flush() {
      if let module { for f in files { result[f] = module } }
      module = nil
      files = []
    }
    let tokens = text.replacingOccurrences(of: "{", with: " { ").replacingOccurrences(of: "}", with: " } ")
      .split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).map(String.init)
    var i = 0
    while i < tokens.count {
      let t = tokens[i]
      if t == "}" { flush() }
      if (t == "module_name:" || t == "proto_file_path:"), i + 1 < tokens.count {
        let v = tokens[i + 1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        if t == "module_name:" { module = v } else { files.append(v) }
        i += 1
      }
      i += 1
    }
    flush()
    return result
  }
}

/// A generation failure reported to protoc in the response's `error`.
public struct GeneratorError: Error, CustomStringConvertible {
  public var description: String
  init(_ d: String) { description = d }
}

/// Turns a `CodeGeneratorRequest` into a `CodeGeneratorResponse`: two files per proto
/// (`.pb.swift` with messages, enums, JSON and the file descriptor; `.rpc.swift` with method
/// descriptors when the file has services).
public enum Generator {
  public static let version = "0.1.0"

  /// Runs the generator on a serialized request and returns a serialized response (errors go
  /// into the response, as protoc expects).
  public static func run(requestBytes: [UInt8]) -> [UInt8] {
    var response = Google_Protobuf_Compiler_CodeGeneratorResponse()
    response.supportedFeatures = UInt64(Google_Protobuf_Compiler_CodeGeneratorResponse.Feature.proto3Optional.rawValue)
    do {
      let request = try Google_Protobuf_Compiler_CodeGeneratorRequest(serializedBytes: requestBytes)
      response.file = try generate(request)
    } catch {
      response.error = "protoc-gen-quad: \(error)"
    }
    return response.serializedBytes()
  }

  /// Generates every file of the request.
  static func generate(
    _ request: Google_Protobuf_Compiler_CodeGeneratorRequest
  ) throws -> [Google_Protobuf_Compiler_CodeGeneratorResponse.File] {
    let options = try GeneratorOptions(parameter: request.parameter)
    let table = TypeTable(files: request.protoFile)
    let byName = Dictionary(request.protoFile.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    var out: [Google_Protobuf_Compiler_CodeGeneratorResponse.File] = []
    for name in request.fileToGenerate {
      guard let file = byName[name] else { throw GeneratorError("protoc sent no descriptor for \(name)") }
      let emitter = FileEmitter(file: file, table: table, options: options, files: byName)
      var pb = Google_Protobuf_Compiler_CodeGeneratorResponse.File()
      pb.name = outputPath(name, suffix: ".pb.swift", naming: options.fileNaming)
      pb.content = emitter.messagesFile()
      out.append(pb)
      if !file.service.isEmpty {
        var rpc = Google_Protobuf_Compiler_CodeGeneratorResponse.File()
        rpc.name = outputPath(name, suffix: ".rpc.swift", naming: options.fileNaming)
        rpc.content = emitter.servicesFile()
        out.append(rpc)
      }
    }
    return out
  }

  static func outputPath(_ proto: String, suffix: String, naming: GeneratorOptions.FileNaming) -> String {
    let base = proto.hasSuffix(".proto") ? String(proto.dropLast(6)) : proto
    switch naming {
    case .fullPath: return base + suffix
    case .pathToUnderscores: return base.replacingOccurrences(of: "/", with: "_") + suffix
    case .dropPath: return (base.split(separator: "/").last.map(String.init) ?? base) + suffix
    }
  }
}
