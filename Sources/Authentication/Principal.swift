/// Who is calling: a campus service, named by its mutual-TLS certificate, or a person or external
/// client, named by a verified JWT. Handlers read it as ``Principal/current``.
package struct Principal: Sendable, Hashable, CustomStringConvertible {
  package enum Kind: String, Sendable, Hashable {
    /// A service on the campus network, by its certificate's subject alternative name.
    case service
    /// A person or external client, by its token's `sub`.
    case user
  }

  package var kind: Kind
  /// The service's name, or the token's subject.
  package var name: String
  /// The token's `roles` claim (none for a service).
  package var roles: Set<String>

  package init(kind: Kind, name: String, roles: Set<String> = []) {
    self.kind = kind
    self.name = name
    self.roles = roles
  }

  package var description: String { "\(kind.rawValue):\(name)" }

  /// The caller of the call being handled, set by ``Authenticator``; nil when it presented no
  /// credential.
  @TaskLocal package static var current: Principal?
}
