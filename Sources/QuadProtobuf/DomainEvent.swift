/// A message that is a domain event: its `.proto` marks it with `option (quad.v1.event)`, and
/// the generator adds this conformance with the stream type the option names.
public protocol DomainEvent: Message {
  /// The type of stream (aggregate) its events are appended to (`"student"`).
  static var streamType: String { get }

  /// The event type that replaced this one after a breaking change, from the option's
  /// `superseded_by`: the store reads this type as that one through an upcaster.
  static var supersededBy: String? { get }
}

extension DomainEvent {
  /// Not superseded, unless the contract names a successor.
  public static var supersededBy: String? { nil }
}

/// The domain events one `.proto` file declares, as one enum the generator emits: what a typed
/// subscription asks for (``eventTypes``) and decodes each logged event into.
public protocol DomainEventSet: Sendable {
  /// The full protobuf names of the events, as the log records them.
  static var eventTypes: [String] { get }

  /// Decodes a logged event; `nil` for a type not in the set.
  ///
  /// - Throws: ``QuadProtobufError`` when the payload is not a valid message of its type.
  init?(eventType: String, payload: [UInt8]) throws

  /// For each event type with fields marked `[(quad.v1.personal) = true]`: their numbers.
  static var personalFieldNumbers: [String: [Int32]] { get }

  /// The events a breaking change replaced (`superseded_by`), and the type that replaced each.
  static var supersededBy: [String: String] { get }
}

extension DomainEventSet {
  /// No personal fields, unless the contract marks some.
  public static var personalFieldNumbers: [String: [Int32]] { [:] }

  /// None superseded, unless the contract says so.
  public static var supersededBy: [String: String] { [:] }
}
