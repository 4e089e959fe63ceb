internal import ArgumentParser
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

  func validate() throws {
    guard (0...65_535).contains(port) else { throw ValidationError("--port must be 0 to 65535") }
  }

  func run() async throws {
    let server = try await GRPCServer.start(router: InteropTestService.router(), host: "0.0.0.0", port: port)
    try await serveForever(server, "quad interop-server: serving grpc.testing.TestService on 0.0.0.0:\(server.port)")
  }
}
