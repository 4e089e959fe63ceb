internal import ArgumentParser
internal import Foundation
internal import HealthService
internal import InteropService
internal import QuadRPC

/// `quad interop-server --port N`: grpc.testing.TestService for the gRPC interop tests.
struct InteropServer: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "interop-server",
    abstract: "Serve grpc.testing.TestService, the gRPC interop test service, over plaintext HTTP/2."
  )

  @Option(help: "The TCP port to listen on (all local addresses).")
  var port: Int

  @Option(name: .customLong("use_tls"), help: "Serve TLS (true or false).")
  var useTLS = false

  @Option(name: .customLong("tls_cert_file"), help: "PEM certificate chain for --use_tls=true.")
  var certificateFile: String?

  @Option(name: .customLong("tls_key_file"), help: "PEM private key for --use_tls=true.")
  var keyFile: String?

  func validate() throws {
    guard (0...65_535).contains(port) else { throw ValidationError("--port must be 0 to 65535") }
    if useTLS && (certificateFile == nil || keyFile == nil) {
      throw ValidationError("--use_tls=true needs --tls_cert_file and --tls_key_file")
    }
  }

  func run() async throws {
    var tls: ServerTLS?
    if useTLS, let certificateFile, let keyFile {
      tls = ServerTLS(certificateChainPath: certificateFile, privateKeyPath: keyFile)
    }
    // As the official interop servers: grpc.testing.XdsUpdateHealthService flips the overall health.
    let health = HealthService()
    var router = InteropTestService.router()
    XdsUpdateHealth { health.setStatus($0 ? .serving : .notServing) }.register(in: &router)
    let server = try await GRPCServer.start(
      router: withStandardServices(router, files: InteropTestService.protoFiles, health: health), host: "0.0.0.0", port: port, tls: tls)
    try await serveForever(server, "quad interop-server: serving grpc.testing.TestService on 0.0.0.0:\(server.port)\(useTLS ? " with TLS" : "")")
  }
}

/// `quad interop-client`: the gRPC interop client, with the official clients' flags
/// (`--flag value` and `--flag=value` both work).
struct InteropClientCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "interop-client",
    abstract: "Run gRPC interop test cases against a grpc.testing.TestService server."
  )

  @Option(name: .customLong("server_host"), help: "The server's host name or address.")
  var serverHost = "localhost"

  @Option(name: .customLong("server_port"), help: "The server's port.")
  var serverPort: Int

  @Option(name: .customLong("test_case"), help: "A case name, a comma-separated list, or all.")
  var testCase = "large_unary"

  @Option(name: .customLong("use_tls"), help: "Use TLS (true or false).")
  var useTLS = false

  @Option(name: .customLong("use_test_ca"), help: "Trust the interop test CA (true or false; the bare flag means true).")
  var useTestCA = false

  @Option(name: .customLong("server_host_override"), help: "The host name to expect in the server's certificate.")
  var serverHostOverride: String?

  @Option(name: .customLong("test_ca_file"), help: "The test CA (PEM) that --use_test_ca trusts (default: $QUAD_TEST_CA_FILE).")
  var testCAFile: String?

  func validate() throws {
    guard (1...65_535).contains(serverPort) else { throw ValidationError("--server_port must be 1 to 65535") }
    let names = testCase == "all" ? InteropClient.cases : testCase.split(separator: ",").map(String.init)
    for n in names where !InteropClient.cases.contains(n) {
      throw ValidationError("unknown --test_case \(n); known: \(InteropClient.cases.joined(separator: ", ")), all")
    }
    if useTLS && useTestCA && caFile == nil {
      throw ValidationError("--use_test_ca needs --test_ca_file or QUAD_TEST_CA_FILE")
    }
  }

  var caFile: String? { testCAFile ?? ProcessInfo.processInfo.environment["QUAD_TEST_CA_FILE"] }

  func run() async throws {
    let host = serverHost.contains(":") ? "[\(serverHost)]" : serverHost
    let tls = useTLS ? ClientTLS(trustRootsPath: useTestCA ? caFile : nil, serverHostOverride: serverHostOverride) : nil
    let client = try GRPCClient(target: "\(host):\(serverPort)", tls: tls)
    let interop = InteropClient(client: client)
    let names = testCase == "all" ? InteropClient.cases : testCase.split(separator: ",").map(String.init)
    var failed = 0
    for name in names {
      do {
        try await interop.run(name)
        print("PASS \(name)")
      } catch {
        failed += 1
        print("FAIL \(name): \(error)")
      }
    }
    await client.close()
    if failed > 0 { throw ExitCode(1) }
  }
}

/// Rewrites the interop clients' bare boolean flags (`--use_test_ca`) to the `=true` form the
/// option parser takes.
func normalizeBooleanFlags(_ arguments: [String]) -> [String] {
  var out: [String] = []
  var i = 0
  while i < arguments.count {
    let a = arguments[i]
    if ["--use_tls", "--use_test_ca"].contains(a), i + 1 >= arguments.count || !["true", "false"].contains(arguments[i + 1]) {
      out.append(a + "=true")
    } else {
      out.append(a)
    }
    i += 1
  }
  return out
}
