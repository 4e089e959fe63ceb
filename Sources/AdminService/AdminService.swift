package import QuadRPC
internal import Resilience

/// `quad.admin.v1.Admin`: a running quad's own state for its operator (its circuit breakers).
package struct AdminService: Quad_Admin_V1_Admin.ServiceProtocol {
  /// The descriptors of `admin.proto`, for reflection.
  package static let protoFiles = [QuadFile_quad_admin_v1_admin_proto.serializedDescriptor]

  package init() {}

  package func listCircuitBreakers(
    _ request: Quad_Admin_V1_ListCircuitBreakersRequest, context: ServerContext
  ) async throws -> Quad_Admin_V1_ListCircuitBreakersResponse {
    var response = Quad_Admin_V1_ListCircuitBreakersResponse()
    response.breakers = CircuitBreakers.shared.all.map { snapshot in
      var b = Quad_Admin_V1_CircuitBreaker()
      b.target = snapshot.target
      b.state = switch snapshot.state {
      case .closed: .closed
      case .open: .open
      case .halfOpen: .halfOpen
      }
      b.consecutiveFailures = Int32(clamping: snapshot.consecutiveFailures)
      b.rejected = Int64(snapshot.rejected)
      b.opened = Int64(snapshot.opened)
      b.failureThreshold = Int32(clamping: snapshot.failureThreshold)
      b.openSeconds = snapshot.openSeconds
      return b
    }
    return response
  }
}
