internal import Authentication
package import Logging
package import QuadRPC
internal import GRPCWire

/// Enforces a ``Policy`` around every call, inside the ``Authenticator``: open methods pass;
/// a call without a credential gets UNAUTHENTICATED; one the policy does not grant gets
/// PERMISSION_DENIED, and is logged with its identity and method.
package struct Authorizer: ServerInterceptor {
  let policy: @Sendable () -> Policy
  let logger: Logger

  /// `policy` is read on every call, so a reloaded policy applies to the next call.
  package init(policy: @escaping @Sendable () -> Policy, logger: Logger) {
    self.policy = policy
    self.logger = logger
  }

  package func intercept<Response: Sendable>(_ context: ServerContext, next: (ServerContext) async throws -> Response) async throws -> Response {
    let policy = policy()
    if policy.isOpen(context.path) { return try await next(context) }
    guard let principal = Principal.current else {
      logger.notice("call without credentials refused", metadata: ["method": "\(context.path)", "peer": "\(context.peer)"])
      throw RPCError(code: .unauthenticated, message: "credentials required")
    }
    guard let access = policy.access(principal, method: context.path) else {
      logger.warning("permission denied", metadata: ["identity": "\(principal)", "method": "\(context.path)", "peer": "\(context.peer)"])
      throw RPCError(code: .permissionDenied, message: "\(principal) may not call \(context.path)")
    }
    let response: Response
    do {
      response = try await Access.$current.withValue(access) { try await next(context) }
    } catch let denied as RPCError where denied.code == .permissionDenied {
      logger.warning("permission denied", metadata: ["identity": "\(principal)", "method": "\(context.path)", "reason": "\(denied.message)"])
      throw denied
    }
    if access.ownerOnly != nil && !access.checkedOwner {
      // Fail closed: an own-records grant on a method that does not check its records' owner.
      logger.error("own-records grant on a method without an owner check", metadata: ["identity": "\(principal)", "method": "\(context.path)"])
      throw RPCError(code: .permissionDenied, message: "\(principal) may not call \(context.path)")
    }
    return response
  }
}
