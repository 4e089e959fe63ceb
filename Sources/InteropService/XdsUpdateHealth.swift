package import QuadRPC

/// `grpc.testing.XdsUpdateHealthService`: lets a test flip the server's overall health status
/// (service `""`) remotely, as the official interop servers do.
package struct XdsUpdateHealth: Grpc_Testing_XdsUpdateHealthService.ServiceProtocol {
  /// Sets the overall status: `true` for SERVING, `false` for NOT_SERVING.
  let setOverallServing: @Sendable (Bool) -> Void

  package init(setOverallServing: @escaping @Sendable (Bool) -> Void) {
    self.setOverallServing = setOverallServing
  }

  package func setServing(_ request: Grpc_Testing_Empty, context: ServerContext) async throws -> Grpc_Testing_Empty {
    setOverallServing(true)
    return Grpc_Testing_Empty()
  }

  package func setNotServing(_ request: Grpc_Testing_Empty, context: ServerContext) async throws -> Grpc_Testing_Empty {
    setOverallServing(false)
    return Grpc_Testing_Empty()
  }
}
