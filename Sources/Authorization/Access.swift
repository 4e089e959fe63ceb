package import Authentication
package import QuadRPC
internal import GRPCWire
internal import Synchronization

/// What the policy lets the current call do beyond calling its method: which event types it may
/// receive, and whether it may touch only its caller's own records. Handlers read it as
/// ``Access/current`` (nil when no policy is enforced, or the method is open).
package final class Access: Sendable {
  package let principal: Principal
  let events: [Policy.Pattern]
  /// The only subject (student id) the call may touch, for an `own` grant.
  package let ownerOnly: String?
  /// Whether the handler checked the owner (an `own` call whose handler never did is refused).
  let ownerChecked = Atomic<Bool>(false)

  init(principal: Principal, events: [Policy.Pattern], ownerOnly: String?) {
    self.principal = principal
    self.events = events
    self.ownerOnly = ownerOnly
  }

  /// The current call's access, set by ``Authorizer``.
  @TaskLocal package static var current: Access?

  /// Whether the handler has called ``requireOwner(_:)``.
  var checkedOwner: Bool { ownerChecked.load(ordering: .relaxed) }

  /// Whether the caller may receive events of `type`.
  package func permitsEvent(_ type: String) -> Bool { events.contains { $0.matches(type) } }

  /// Throws PERMISSION_DENIED unless the caller may touch `subject`'s records.
  package func requireOwner(_ subject: String) throws(RPCError) {
    ownerChecked.store(true, ordering: .relaxed)
    if let ownerOnly, ownerOnly != subject {
      throw RPCError(code: .permissionDenied, message: "\(principal) may use this method only on its own records")
    }
  }

  /// For handlers: throws PERMISSION_DENIED unless the current call may touch `subject`'s
  /// records (always passes without a policy).
  package static func requireOwner(_ subject: String) throws(RPCError) {
    try current?.requireOwner(subject)
  }
}
