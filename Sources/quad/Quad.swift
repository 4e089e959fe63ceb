internal import ArgumentParser
internal import Foundation
internal import BenchService
internal import HealthService
internal import QuadRPC
internal import ReflectionService

/// `quad`: Quad's command-line entry point.
@main
struct Quad: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "quad",
    abstract: "Contract-first gRPC services for the campus.",
    subcommands: [
      ServeCommand.self, ProjectionsCommand.self, ImportCommand.self, DemoCommand.self, BenchServer.self, BenchCampus.self, BenchOutboxServer.self, BenchEvents.self, InteropServer.self, InteropClientCommand.self,
      ListCommand.self, DescribeCommand.self, CallCommand.self, HealthCommand.self,
    ]
  )

  static func main() async {
    // A usage error exits 2 (grpcurl's and most tools' convention; ArgumentParser's own is 64,
    // which `quad call` keeps for 64 + a gRPC status code).
    var command: any ParsableCommand
    do {
      command = try parseAsRoot(normalizeBooleanFlags(Array(CommandLine.arguments.dropFirst())))
    } catch {
      exitForUsage(error, message: fullMessage(for: error))
    }
    do {
      if var command = command as? any AsyncParsableCommand {
        try await command.run()
      } else {
        try command.run()
      }
    } catch {
      exitForUsage(error, message: "Error: " + message(for: error))
    }
  }

  /// Exits 2 with `message` for a usage error; any other error exits as ArgumentParser decides.
  private static func exitForUsage(_ error: any Error, message: String) -> Never {
    if exitCode(for: error) == .validationFailure {
      FileHandle.standardError.write(Data((message + "\n").utf8))
      Foundation.exit(2)
    }
    exit(withError: error)
  }
}

/// `quad bench-server --port N [--threads T]`: serves bench.v1.Bench for the transport benchmark.
struct BenchServer: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bench-server",
    abstract: "Serve bench.v1.Bench (Unary echo, Stream of count messages) over plaintext HTTP/2."
  )

  @Option(help: "The TCP port to listen on (all local addresses).")
  var port: Int

  @Option(help: "Event-loop threads.")
  var threads: Int = 1

  func validate() throws {
    guard (0...65_535).contains(port) else { throw ValidationError("--port must be 0 to 65535") }
    guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
  }

  func run() async throws {
    let router = try withStandardServices(BenchService.router(), files: BenchService.protoFiles)
    let server = try await GRPCServer.start(router: router, host: "0.0.0.0", port: port, threads: threads)
    try await serveForever(server, "quad bench-server: serving bench.v1.Bench on 0.0.0.0:\(server.port) with \(threads) thread(s)")
  }
}

/// `router` with what every Quad server serves: `grpc.health.v1.Health` (SERVING under "") and
/// server reflection (v1 and v1alpha) describing all of it from `files` (the descriptors of the
/// services already in `router`).
func withStandardServices(_ router: Router, files: [[UInt8]], health: HealthService = HealthService()) throws -> Router {
  var router = router
  health.register(in: &router)
  try ReflectionService.register(in: &router, files: files + HealthService.protoFiles)
  return router
}

/// Prints the one ready line (flushed at once, so scripts can wait for it), then serves until the
/// process is signalled.
func serveForever(_ server: GRPCServer, _ readyLine: String) async throws {
  FileHandle.standardOutput.write(Data((readyLine + "\n").utf8))
  while true { try await Task.sleep(for: .seconds(3600)) }
}
