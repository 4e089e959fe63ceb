package import Logging
package import QuadRPC
internal import GRPCWire

/// Establishes who is calling, around every call: a bearer token in `authorization` (verified
/// by the ``TokenVerifier``), else the mutual-TLS certificate's name, else no one. A credential
/// that does not verify ends the call with UNAUTHENTICATED and no detail for the caller; the
/// reason is logged.
package struct Authenticator: ServerInterceptor {
  let tokens: @Sendable () -> TokenVerifier?
  let logger: Logger

  /// `tokens` is read on every call, so reloaded keys apply to the next call.
  package init(tokens: @escaping @Sendable () -> TokenVerifier?, logger: Logger) {
    self.tokens = tokens
    self.logger = logger
  }

  package func intercept<Response: Sendable>(_ context: ServerContext, next: (ServerContext) async throws -> Response) async throws -> Response {
    let principal = try await authenticate(context)
    return try await Principal.$current.withValue(principal) { try await next(context) }
  }

  func authenticate(_ context: ServerContext) async throws(RPCError) -> Principal? {
    if let header = context.metadata.first("authorization") {
      guard let tokens = tokens() else { throw refuse(context, "a bearer token, and no JWKS is configured") }
      let scheme = header.prefix(7)
      guard scheme.lowercased() == "bearer ", header.count > 7 else { throw refuse(context, "authorization is not a bearer token") }
      do {
        return try await tokens.verify(String(header.dropFirst(7)))
      } catch {
        throw refuse(context, error.description)
      }
    }
    if let peer = context.peerIdentity, let name = Self.serviceName(peer) {
      return Principal(kind: .service, name: name)
    }
    return nil
  }

  /// The service a certificate names: its first DNS name's first label (`scans` for
  /// `scans.campus.internal`), else a SPIFFE ID's last path segment, else its common name.
  static func serviceName(_ peer: PeerIdentity) -> String? {
    if let dns = peer.dnsNames.first, let label = dns.split(separator: ".").first, !label.isEmpty { return String(label) }
    if let uri = peer.uris.first, let last = uri.split(separator: "/").last, !last.isEmpty { return String(last) }
    return peer.commonName
  }

  private func refuse(_ context: ServerContext, _ reason: String) -> RPCError {
    logger.warning("unauthenticated call refused", metadata: ["method": "\(context.path)", "peer": "\(context.peer)", "reason": "\(reason.prefix(300))"])
    return RPCError(code: .unauthenticated, message: "invalid credentials")
  }
}
