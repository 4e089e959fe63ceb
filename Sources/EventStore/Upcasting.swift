package import QuadProtobuf

/// Reads an event type that a breaking change replaced as the type that replaced it.
///
/// Events are kept forever, so a contract that must change an event incompatibly adds a new
/// event type, marks the old one `superseded_by` the new in its `.proto`
/// (`option (quad.v1.event) = { stream_type: "door", superseded_by: "pkg.v1.DoorOpenedV2" }`),
/// and registers an upcaster from the old to the new. The log keeps the old bytes; every reader
/// of the store (subscribers, `ReadStream`, aggregates, projections) sees the new type.
package struct EventUpcaster: Sendable {
  /// The superseded event type, as the log records it.
  package let from: String
  /// The type it is read as.
  package let to: String
  let convert: @Sendable ([UInt8]) throws -> [UInt8]

  /// Upcasts `Old` to `New` with `convert`.
  ///
  /// - Throws: ``UpcastingError`` `.notSuperseded` when `Old`'s contract does not name `New`
  ///   as what supersedes it (the contract and the code must agree).
  package init<Old: DomainEvent, New: DomainEvent>(
    from old: Old.Type, to new: New.Type, _ convert: @escaping @Sendable (Old) throws -> New
  ) throws(UpcastingError) {
    guard Old.supersededBy == New.protoMessageName else {
      throw UpcastingError(.notSuperseded(from: Old.protoMessageName, to: New.protoMessageName, contract: Old.supersededBy))
    }
    guard Old.streamType == New.streamType else {
      throw UpcastingError(.streamTypeChanged(from: Old.protoMessageName, to: New.protoMessageName))
    }
    from = Old.protoMessageName
    to = New.protoMessageName
    self.convert = { bytes in try convert(try Old(serializedBytes: bytes)).serializedBytes() }
  }
}

/// Why an upcaster could not be registered or applied.
package struct UpcastingError: Error, CustomStringConvertible, Sendable, Equatable {
  package enum Kind: Sendable, Equatable {
    /// The old type's contract names another successor (or none).
    case notSuperseded(from: String, to: String, contract: String?)
    /// An upcaster must keep the event in its stream type.
    case streamTypeChanged(from: String, to: String)
    /// Two upcasters read the same type.
    case duplicate(String)
    /// Following the upcasters from a type comes back to it.
    case cycle(String)
  }

  package let kind: Kind

  init(_ kind: Kind) { self.kind = kind }

  package var description: String {
    switch kind {
    case .notSuperseded(let from, let to, let contract):
      return "\(from) is not superseded by \(to) in its contract (superseded_by: \(contract.map { "\"\($0)\"" } ?? "none"))"
    case .streamTypeChanged(let from, let to):
      return "an upcaster from \(from) to \(to) would move the event to another stream type"
    case .duplicate(let type):
      return "two upcasters read \(type)"
    case .cycle(let type):
      return "the upcasters from \(type) lead back to it"
    }
  }
}

/// The upcasters a store applies to every event it reads: each superseded type, through as
/// many steps as there are (v1 → v2 → v3), ends as the newest type.
package struct EventUpcasters: Sendable {
  private let byType: [String: EventUpcaster]
  /// For each newest type, the superseded types that read as it (what a filter for it matches
  /// in the log).
  private let ancestors: [String: Set<String>]

  /// None: every event is read as logged.
  package static let none = EventUpcasters(checked: [:])

  /// - Throws: ``UpcastingError`` `.duplicate` or `.cycle`.
  package init(_ upcasters: [EventUpcaster]) throws(UpcastingError) {
    var byType: [String: EventUpcaster] = [:]
    for u in upcasters {
      guard byType[u.from] == nil else { throw UpcastingError(.duplicate(u.from)) }
      byType[u.from] = u
    }
    for start in byType.keys {
      var seen: Set<String> = [start]
      var type = start
      while let next = byType[type]?.to {
        guard seen.insert(next).inserted else { throw UpcastingError(.cycle(start)) }
        type = next
      }
    }
    self.init(checked: byType)
  }

  private init(checked byType: [String: EventUpcaster]) {
    self.byType = byType
    var ancestors: [String: Set<String>] = [:]
    for start in byType.keys { ancestors[Self.newest(start, byType), default: []].insert(start) }
    self.ancestors = ancestors
  }

  /// The end of the upcasters from `type` in `byType` (acyclic), or `type` itself.
  private static func newest(_ type: String, _ byType: [String: EventUpcaster]) -> String {
    var type = type
    while let next = byType[type]?.to { type = next }
    return type
  }

  package var isEmpty: Bool { byType.isEmpty }

  /// The superseded types these upcasters read.
  package var supersededTypes: Set<String> { Set(byType.keys) }

  /// `event` as its newest type (itself when it is not superseded).
  ///
  /// An event whose payload does not decode as its logged type is read as logged: a corrupt
  /// event must not stall every reader of the log; a consumer that cannot handle it parks it.
  package func upcast(_ event: StoredEvent) -> StoredEvent {
    guard var step = byType[event.type] else { return event }
    var type = event.type, payload = event.payload
    while true {
      guard let next = try? step.convert(payload) else { return event }
      payload = next
      type = step.to
      guard let following = byType[type] else { break }
      step = following
    }
    return StoredEvent(
      position: event.position, stream: event.stream, version: event.version, type: type, payload: payload,
      metadata: event.metadata, recordedAtMicroseconds: event.recordedAtMicroseconds)
  }

  /// The type `type` is read as: the end of its upcasters, or itself.
  package func newest(_ type: String) -> String { Self.newest(type, byType) }

  /// `filter` as it applies to events after upcasting: a type it names stands for its newest
  /// type and every type that newest one supersedes (so a typed subscription that lists every
  /// version gets each event once, as the newest, and an event that could not be upcast still
  /// reaches whoever asked for its kind).
  package func normalized(_ filter: EventFilter) -> EventFilter {
    guard !isEmpty else { return filter }
    return EventFilter(eventTypes: loggedTypes(for: Set(filter.eventTypes.map(newest))), streamTypes: filter.streamTypes)
  }

  /// The logged types that read as one of `types`: the types themselves and every type
  /// superseded, directly or not, by one of them.
  package func loggedTypes(for types: Set<String>) -> Set<String> {
    guard !isEmpty else { return types }
    var all = types
    for t in types { all.formUnion(ancestors[t] ?? []) }
    return all
  }
}
