internal import ArgumentParser
internal import Foundation
internal import BenchService
internal import HealthService
internal import QuadRPC

/// `quad`: Quad's command-line entry point.
@main
struct Quad: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "quad",
    abstract: "Contract-first gRPC services for the campus.",
    subcommands: [BenchServer.self, InteropServer.self, InteropClientCommand.self]
  )

  static func main() async {
    do {
      var command = try parseAsRoot(normalizeBooleanFlags(Array(CommandLine.arguments.dropFirst())))
      if var command = command as? any AsyncParsableCommand {
        try await command.run()
      } else {
        try command.run()
      }
    } catch {
      exit(withError: error)
    }
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
    let server = try await GRPCServer.start(router: withHealth(BenchService.router()), host: "0.0.0.0", port: port, threads: threads)
    try await serveForever(server, "quad bench-server: serving bench.v1.Bench on 0.0.0.0:\(server.port) with \(threads) thread(s)")
  }
}

/// `router` with `grpc.health.v1.Health` added (the server reports SERVING under "").
func withHealth(_ router: Router) -> Router {
  var router = router
  HealthService().register(in: &router)
  return router
}

/// Prints the one ready line (flushed at once, so scripts can wait for it), then serves until the
/// process is signalled.
func serveForever(_ server: GRPCServer, _ readyLine: String) async throws {
  FileHandle.standardOutput.write(Data((readyLine + "\n").utf8))
  while true { try await Task.sleep(for: .seconds(3600)) }
}
