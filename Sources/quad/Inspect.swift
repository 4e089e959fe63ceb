internal import ArgumentParser
internal import Foundation
internal import GRPCWire
internal import HealthService
internal import ProtoDescriptors
internal import QuadProtobuf
internal import QuadRPC
internal import ReflectionService

/// How `quad list`, `describe`, `call` and `health` reach a server and learn its types.
struct ConnectionOptions: ParsableArguments {
  @Flag(help: "Connect with TLS (implied by --cacert, --cert and --key).")
  var tls = false

  @Option(help: "PEM file of the CAs that sign the server's certificate (TLS).")
  var cacert: String?

  @Option(help: "PEM client certificate for mutual TLS.")
  var cert: String?

  @Option(help: "PEM private key of --cert.")
  var key: String?

  @Option(help: "The server name to verify and send as SNI and :authority, instead of HOST.")
  var servername: String?

  @Option(name: .customLong("max-time"), help: "Give up after this many seconds (the call's deadline).")
  var maxTime: Double?

  @Option(name: .customShort("H"), parsing: .singleValue, help: "Metadata 'key: value' to send (repeatable).")
  var headers: [String] = []

  @Option(parsing: .singleValue, help: "A .proto file to take the types from instead of server reflection (repeatable).")
  var proto: [String] = []

  @Option(name: .customShort("I"), parsing: .singleValue, help: "Where --proto files and their imports are found (repeatable).")
  var importPath: [String] = []

  func validate() throws {
    if (cert == nil) != (key == nil) { throw ValidationError("--cert and --key go together") }
    if let maxTime, !(maxTime > 0 && maxTime < 1e9) { throw ValidationError("--max-time must be a positive number of seconds") }
    for h in headers where !h.contains(":") { throw ValidationError("-H takes 'key: value', not '\(h)'") }
    if !importPath.isEmpty && proto.isEmpty { throw ValidationError("-I is for --proto files") }
  }

  var useTLS: Bool { tls || cacert != nil || cert != nil }

  func client(_ address: String) throws -> GRPCClient {
    let tlsSettings = useTLS
      ? ClientTLS(trustRootsPath: cacert, certificateChainPath: cert, privateKeyPath: key, serverHostOverride: servername)
      : nil
    do {
      return try GRPCClient(target: address, tls: tlsSettings)
    } catch {
      throw ValidationError("cannot use \(address): \(error.message)")
    }
  }

  func callOptions() throws -> CallOptions {
    var metadata = Metadata()
    for h in headers {
      let i = h.firstIndex(of: ":")!
      let key = h[..<i].trimmingCharacters(in: .whitespaces).lowercased()
      let value = h[h.index(after: i)...].trimmingCharacters(in: .whitespaces)
      if key.hasSuffix("-bin") {
        guard let bytes = Base64.decode(value) else { throw ValidationError("-H \(key): a -bin value must be base64") }
        metadata.add(key, bytes: bytes)
      } else {
        metadata.add(key, value)
      }
    }
    return CallOptions(timeout: maxTime.map { .nanoseconds(Int64($0 * 1e9)) }, metadata: metadata)
  }

  /// The descriptors of `symbols`: from the --proto files (parsed by protoc) or from reflection.
  func pool(_ client: GRPCClient, containing symbols: [String]) async throws -> DescriptorPool {
    if proto.isEmpty {
      return try await ReflectionClient(client, options: callOptions()).pool(containing: symbols)
    }
    return try ProtoFiles.pool(proto, importPaths: importPath)
  }
}

/// Parses `.proto` files with Debian's protoc (`--descriptor_set_out --include_imports`).
enum ProtoFiles {
  static func pool(_ files: [String], importPaths: [String]) throws -> DescriptorPool {
    let out = FileManager.default.temporaryDirectory.appendingPathComponent("quad-\(UUID().uuidString).pb")
    defer { try? FileManager.default.removeItem(at: out) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    var arguments = ["protoc", "--include_imports", "--include_source_info", "--descriptor_set_out=\(out.path)"]
    let includes = importPaths.isEmpty ? files.map { URL(fileURLWithPath: $0).deletingLastPathComponent().path } : importPaths
    for dir in Set(includes).sorted() { arguments.append("-I\(dir)") }
    arguments += ["-I/usr/include"] + files
    process.arguments = arguments
    let errors = Pipe()
    process.standardError = errors
    do {
      try process.run()
    } catch {
      throw ValidationError("cannot run protoc (apt-get install protobuf-compiler): \(error)")
    }
    let message = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
      throw ValidationError("protoc failed on \(files.joined(separator: " ")):\n\(String(decoding: message, as: UTF8.self))")
    }
    let set = try Google_Protobuf_FileDescriptorSet(serializedBytes: [UInt8](try Data(contentsOf: out)))
    return try DescriptorPool(files: set.file.map { $0.serializedBytes() })
  }
}

/// Ends a command the way grpcurl does: 64 + the gRPC status code for an RPC error, after
/// printing the status (code name, message, decoded details) on standard error.
func exitForRPCError(_ error: RPCError, pool: DescriptorPool?) -> ExitCode {
  var text = "ERROR:\n  Code: \(error.code)\n  Message: \(error.message)\n"
  if let details = error.details {
    text += StatusDetails.describe(details, pool: pool)
  }
  FileHandle.standardError.write(Data(text.utf8))
  return ExitCode(Int32(64 + error.code.rawValue))
}

/// Runs `body`, turning RPC errors into grpcurl's exit statuses.
func withRPCErrors(pool: @autoclosure () -> DescriptorPool? = nil, _ body: () async throws -> Void) async throws {
  do {
    try await body()
  } catch let e as RPCError {
    throw exitForRPCError(e, pool: pool())
  } catch let e as DescriptorPoolError {
    FileHandle.standardError.write(Data("Error: the server's descriptors do not form a whole: \(e)\n".utf8))
    throw ExitCode(1)
  }
}

func printLine(_ s: String) {
  FileHandle.standardOutput.write(Data((s + "\n").utf8))
}

/// `quad list HOST:PORT [SERVICE]`: the services a server offers, or a service's methods.
struct ListCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "list",
    abstract: "List a server's services (from reflection), or the methods of one.")

  @Argument(help: "HOST:PORT of the server.") var address: String
  @Argument(help: "A service's full name: list its methods.") var service: String?
  @OptionGroup var connection: ConnectionOptions

  func run() async throws {
    let client = try connection.client(address)
    defer { Task { await client.close() } }
    try await withRPCErrors {
      if let service {
        let pool = try await connection.pool(client, containing: [service])
        guard pool.symbol(service)?.kind == .service else { throw RPCError(code: .notFound, message: "\(service) is not a service") }
        for m in pool.methods(ofService: service) { printLine(m) }
      } else if connection.proto.isEmpty {
        for s in try await ReflectionClient(client, options: connection.callOptions()).listServices().sorted() { printLine(s) }
      } else {
        for s in try ProtoFiles.pool(connection.proto, importPaths: connection.importPath).serviceNames { printLine(s) }
      }
    }
  }
}

/// `quad describe HOST:PORT SYMBOL`: a service, method, message, enum or field as `.proto` text.
struct DescribeCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "describe",
    abstract: "Print a symbol (service, method, message, enum, field) in .proto syntax, with its comments.")

  @Argument(help: "HOST:PORT of the server.") var address: String
  @Argument(help: "A fully-qualified symbol (pkg.Service, pkg.Service.Method, pkg.Message, …).") var symbol: String
  @OptionGroup var connection: ConnectionOptions

  func run() async throws {
    let client = try connection.client(address)
    defer { Task { await client.close() } }
    let name = symbol.replacingOccurrences(of: "/", with: ".")
    try await withRPCErrors {
      let pool = try await connection.pool(client, containing: [name])
      guard let text = ProtoPrinter(pool: pool).describe(name) else {
        throw RPCError(code: .notFound, message: "symbol not found: \(name)")
      }
      FileHandle.standardOutput.write(Data(text.utf8))
    }
  }
}

/// `quad call HOST:PORT pkg.Service/Method ['{json}'] [-d DATA|@|@FILE]`: JSON in, JSON out.
struct CallCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "call",
    abstract: "Call a method with JSON requests; print each response as JSON.",
    discussion: """
      Requests: the JSON argument, or -d with JSON text, '@' for standard input or '@FILE'; a \
      client-streaming method reads a sequence of JSON documents. Exit status: 0 on OK, 64 + \
      the gRPC status code on an RPC error, 2 on a usage error.
      """)

  @Argument(help: "HOST:PORT of the server.") var address: String
  @Argument(help: "The method: pkg.Service/Method (or pkg.Service.Method).") var method: String
  @Argument(help: "The request as JSON (default {} for a single request).") var json: String?
  @Option(name: .customShort("d"), help: "Request JSON: text, '@' (standard input) or '@FILE'.") var data: String?
  @Flag(name: [.customShort("v"), .long], help: "Also print the response headers and trailers (on standard error).") var verbose = false
  @OptionGroup var connection: ConnectionOptions

  func validate() throws {
    if json != nil && data != nil { throw ValidationError("give the request as an argument or with -d, not both") }
  }

  /// `pkg.Service` and `Method`.
  func methodParts() throws -> (service: String, method: String) {
    let text = method.hasPrefix("/") ? String(method.dropFirst()) : method
    if let slash = text.lastIndex(of: "/") {
      return (String(text[..<slash]), String(text[text.index(after: slash)...]))
    }
    guard let dot = text.lastIndex(of: ".") else { throw ValidationError("name the method as pkg.Service/Method") }
    return (String(text[..<dot]), String(text[text.index(after: dot)...]))
  }

  func requestText() throws -> [UInt8] {
    guard let data else { return Array((json ?? "").utf8) }
    if data == "@" { return [UInt8](FileHandle.standardInput.readDataToEndOfFile()) }
    if data.hasPrefix("@") {
      let path = String(data.dropFirst())
      guard let d = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read \(path)") }
      return [UInt8](d)
    }
    return Array(data.utf8)
  }

  func run() async throws {
    let (serviceName, methodName) = try methodParts()
    let client = try connection.client(address)
    defer { Task { await client.close() } }
    var pool: DescriptorPool?
    try await withRPCErrors(pool: pool) {
      let p = try await connection.pool(client, containing: [serviceName])
      pool = p
      guard let m = p.method(serviceName + "." + methodName) else {
        throw ValidationError("\(serviceName) has no method \(methodName)")
      }
      let codec = DynamicCodec(pool: p)
      let documents = try JSONDocuments.split(try requestText())
      var requests: [RawMessage] = []
      do {
        for d in documents { requests.append(RawMessage(bytes: try codec.binary(fromJSON: d, type: m.inputType))) }
      } catch {
        throw ValidationError("the request is not a \(m.inputType.dropFirst()): \(error)")
      }
      if requests.isEmpty && !m.clientStreaming { requests = [RawMessage()] }
      guard m.clientStreaming || requests.count == 1 else {
        throw ValidationError("\(methodName) takes one request; \(requests.count) JSON documents given")
      }
      let path = "/\(serviceName)/\(methodName)"
      let options = try connection.callOptions()
      func show(_ response: RawMessage) throws {
        printLine(PrettyJSON.format(try codec.json(fromBinary: response.bytes, type: m.outputType)))
      }
      func note(_ what: String, _ metadata: Metadata) {
        guard verbose else { return }
        var text = "Response \(what):\n"
        for (key, value) in metadata {
          switch value {
          case .text(let s): text += "  \(key): \(s)\n"
          case .binary(let b): text += "  \(key): \(base64(b))\n"
          }
        }
        FileHandle.standardError.write(Data(text.utf8))
      }
      switch (m.clientStreaming, m.serverStreaming) {
      case (false, false):
        let r = try await client.unary(path, request: requests[0], responseType: RawMessage.self, options: options)
        note("headers", r.initialMetadata)
        try show(r.message)
        note("trailers", r.trailingMetadata)
      case (false, true):
        try await client.serverStreaming(path, request: requests[0], responseType: RawMessage.self, options: options) { responses in
          for try await r in responses { try show(r) }
          note("headers", try await responses.initialMetadata())
          note("trailers", try await responses.trailingMetadata())
        }
      case (true, false):
        let r = try await client.clientStreaming(path, requestType: RawMessage.self, responseType: RawMessage.self, options: options) { writer in
          for q in requests { try await writer.write(q) }
        }
        note("headers", r.initialMetadata)
        try show(r.message)
        note("trailers", r.trailingMetadata)
      case (true, true):
        try await client.bidirectional(path, requestType: RawMessage.self, responseType: RawMessage.self, options: options) { writer, responses in
          for q in requests { try await writer.write(q) }
          writer.finish()
          for try await r in responses { try show(r) }
          note("headers", try await responses.initialMetadata())
          note("trailers", try await responses.trailingMetadata())
        }
      }
    }
  }
}

/// `quad health HOST:PORT [SERVICE] [--watch]`: exit 0 only when SERVING.
struct HealthCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "health",
    abstract: "Check a server's (or a service's) health; exit 0 only when SERVING.",
    discussion: """
      With --watch, prints each status the server reports and exits 0 once it is SERVING (or \
      1 when the stream ends, or --max-time passes, before that): a readiness wait.
      """)

  @Argument(help: "HOST:PORT of the server.") var address: String
  @Argument(help: "The service to ask about (default: the whole server).") var service: String = ""
  @Flag(help: "Follow status changes until SERVING.") var watch = false
  @OptionGroup var connection: ConnectionOptions

  func run() async throws {
    let client = try connection.client(address)
    defer { Task { await client.close() } }
    let health = Grpc_Health_V1_Health.Client(client)
    var request = Grpc_Health_V1_HealthCheckRequest()
    request.service = service
    let options = try connection.callOptions()
    var serving = false
    try await withRPCErrors {
      if watch {
        do {
          try await health.watch(request, options: options) { statuses in
            for try await s in statuses {
              printLine(s.status.protoName ?? "\(s.status.rawValue)")
              if s.status == .serving {
                serving = true
                return
              }
            }
          }
        } catch let e as RPCError where e.code == .deadlineExceeded || e.code == .cancelled {
          serving = false
        }
      } else {
        let s = try await health.check(request, options: options).status
        printLine(s.protoName ?? "\(s.rawValue)")
        serving = s == .serving
      }
    }
    if !serving { throw ExitCode(1) }
  }
}

/// Splits text into the JSON documents it holds, one after another (whitespace between).
enum JSONDocuments {
  static func split(_ text: [UInt8]) throws -> [[UInt8]] {
    var reader = JSONReader(text)
    var out: [[UInt8]] = []
    while true {
      do {
        try reader.expectEnd()
        return out
      } catch {}
      do {
        out.append(try reader.captureValue())
      } catch {
        throw ValidationError("request JSON document \(out.count + 1) is not valid JSON: \(error)")
      }
    }
  }
}

/// Indents compact JSON by two spaces per level (strings copied as they are).
enum PrettyJSON {
  static func format(_ compact: String) -> String {
    var out: [UInt8] = []
    var depth = 0
    var inString = false
    var escaped = false
    let bytes = Array(compact.utf8)
    func newline() {
      out.append(0x0A)
      out.append(contentsOf: [UInt8](repeating: 0x20, count: depth * 2))
    }
    for (i, b) in bytes.enumerated() {
      if inString {
        out.append(b)
        if escaped { escaped = false } else if b == 0x5C { escaped = true } else if b == 0x22 { inString = false }
        continue
      }
      switch b {
      case 0x22:
        inString = true
        out.append(b)
      case 0x7B, 0x5B:  // { [
        out.append(b)
        let next = i + 1 < bytes.count ? bytes[i + 1] : 0
        if next == 0x7D || next == 0x5D { continue }
        depth += 1
        newline()
      case 0x7D, 0x5D:  // } ]
        let prev = i > 0 ? bytes[i - 1] : 0
        if prev != 0x7B && prev != 0x5B {
          depth -= 1
          newline()
        }
        out.append(b)
      case 0x2C:
        out.append(b)
        newline()
      case 0x3A:
        out.append(contentsOf: [0x3A, 0x20])
      default:
        out.append(b)
      }
    }
    return String(decoding: out, as: UTF8.self)
  }
}

/// `grpc-status-details-bin` (a `google.rpc.Status`) for people: each detail as JSON when its
/// type is known (the standard `google.rpc` error details, or the server's own types), else its
/// type URL and base64 bytes.
enum StatusDetails {
  static let rpcFiles = [QuadFile_google_rpc_status_proto.serializedDescriptor, QuadFile_google_rpc_error_details_proto.serializedDescriptor]

  static func describe(_ bytes: [UInt8], pool: DescriptorPool?) -> String {
    guard let status = try? Google_Rpc_Status(serializedBytes: bytes) else {
      return "  Details: (grpc-status-details-bin is not a google.rpc.Status)\n"
    }
    guard !status.details.isEmpty else { return "" }
    var files = rpcFiles
    if let pool { files += pool.fileNames.compactMap { pool.serializedFile(named: $0) } }
    let known = (try? DescriptorPool(files: files)) ?? (try? DescriptorPool(files: rpcFiles))
    var out = "  Details:\n"
    for (i, any) in status.details.enumerated() {
      var text = "\(any.typeUrl) (\(any.value.count) bytes, base64 \(base64(any.value)))"
      if let known, let json = try? DynamicCodec(pool: known).json(fromBinary: any.serializedBytes(), type: "google.protobuf.Any") {
        text = json
      }
      out += "  \(i + 1)) \(text)\n"
    }
    return out
  }
}

func base64(_ bytes: [UInt8]) -> String {
  var out: [UInt8] = []
  Base64.encode(bytes, into: &out)
  return String(decoding: out, as: UTF8.self)
}
