internal import Foundation
package import Authentication

/// Who may call which methods and receive which event types, read from a JSON policy file:
///
/// ```json
/// { "open": ["/grpc.health.v1.Health/*"],
///   "grants": [
///     { "services": ["scans"], "methods": ["/quad.events.v1.Events/*"], "events": ["campus.students.v1.*"] },
///     { "roles": ["student"], "methods": ["/campus.students.v1.Students/GetStudent"], "own": true } ] }
/// ```
///
/// A pattern is a full name or a prefix ending in `*`. Open methods need no credential (health
/// and reflection when `open` is absent). Everything not granted is denied. An `own` grant lets
/// a person use the methods only on their own records (the token's subject is the student id).
package struct Policy: Sendable, Hashable {
  package struct Grant: Sendable, Hashable {
    package var services: Set<String> = []
    package var roles: Set<String> = []
    package var methods: [Pattern] = []
    package var events: [Pattern] = []
    package var own = false

    func applies(to principal: Principal) -> Bool {
      switch principal.kind {
      case .service: services.contains(principal.name) || services.contains("*")
      case .user: !roles.isDisjoint(with: principal.roles) || roles.contains("*")
      }
    }
  }

  /// A full name, or a prefix when it ends in `*`.
  package struct Pattern: Sendable, Hashable {
    let text: String
    let prefix: Bool

    init(_ text: String) {
      prefix = text.hasSuffix("*")
      self.text = prefix ? String(text.dropLast()) : text
    }

    func matches(_ name: String) -> Bool { prefix ? name.hasPrefix(text) : name == text }
  }

  package static let defaultOpen = [
    "/grpc.health.v1.Health/*", "/grpc.reflection.v1.ServerReflection/*", "/grpc.reflection.v1alpha.ServerReflection/*",
  ]

  package var open: [Pattern]
  package var grants: [Grant]

  package init(open: [String] = Policy.defaultOpen, grants: [Grant]) {
    self.open = open.map(Pattern.init)
    self.grants = grants
  }

  /// Parses a policy document; the error names the entry at fault.
  package init(json: [UInt8]) throws(PolicyError) {
    guard json.count <= 1 << 20, let document = (try? JSONSerialization.jsonObject(with: Data(json))) as? [String: Any] else {
      throw PolicyError(reason: "not a JSON object (at most 1 MiB)")
    }
    for key in document.keys where key != "open" && key != "grants" { throw PolicyError(reason: "unknown key \"\(key)\"") }
    func names(_ value: Any?, _ field: String) throws(PolicyError) -> [String] {
      guard let value else { return [] }
      guard let list = value as? [String], list.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 512 }) else {
        throw PolicyError(reason: "\(field): not a list of names")
      }
      return list
    }
    open = try (document["open"] == nil ? Self.defaultOpen : names(document["open"], "open")).map(Pattern.init)
    guard let rawGrants = document["grants"] as? [[String: Any]] else { throw PolicyError(reason: "grants: not a list of objects") }
    grants = []
    for (i, raw) in rawGrants.enumerated() {
      for key in raw.keys where !["services", "roles", "methods", "events", "own"].contains(key) {
        throw PolicyError(reason: "grants[\(i)]: unknown key \"\(key)\"")
      }
      var grant = Grant()
      grant.services = Set(try names(raw["services"], "grants[\(i)].services"))
      grant.roles = Set(try names(raw["roles"], "grants[\(i)].roles"))
      grant.methods = try names(raw["methods"], "grants[\(i)].methods").map(Pattern.init)
      grant.events = try names(raw["events"], "grants[\(i)].events").map(Pattern.init)
      if let own = raw["own"] {
        guard let flag = own as? Bool else { throw PolicyError(reason: "grants[\(i)].own: not true or false") }
        grant.own = flag
      }
      guard !grant.services.isEmpty || !grant.roles.isEmpty else { throw PolicyError(reason: "grants[\(i)]: names no services and no roles") }
      guard !(grant.own && !grant.services.isEmpty) else { throw PolicyError(reason: "grants[\(i)]: own applies to people, not services") }
      grants.append(grant)
    }
  }

  /// Whether `method` needs no credential.
  package func isOpen(_ method: String) -> Bool { open.contains { $0.matches(method) } }

  /// What `principal` may do in a call of `method`, or nil when it may not call it.
  package func access(_ principal: Principal, method: String) -> Access? {
    let mine = grants.filter { $0.applies(to: principal) }
    let allowing = mine.filter { g in g.methods.contains { $0.matches(method) } }
    guard !allowing.isEmpty else { return nil }
    let unrestricted = allowing.contains { !$0.own }
    return Access(principal: principal, events: mine.flatMap(\.events), ownerOnly: unrestricted ? nil : principal.name)
  }
}

/// A policy file that cannot be used, and why.
package struct PolicyError: Error, Hashable, Sendable, CustomStringConvertible {
  package var reason: String
  package init(reason: String) { self.reason = reason }
  package var description: String { "policy: \(reason)" }
}
