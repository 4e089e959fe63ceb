/// An error raised while decoding or encoding protobuf binary or JSON data.
///
/// The ``code`` says what kind of failure it was; ``message`` says what and why;
/// ``offset``, ``fieldNumber`` and ``messageName`` say where, when known.
/// Example description: `truncated varint at offset 17 in field 4 of campus.students.v1.Student`.
public struct QuadProtobufError: Error, Hashable, Sendable, CustomStringConvertible {
  /// The kind of failure. Extensible: new codes may be added.
  public struct Code: Hashable, Sendable, CustomStringConvertible {
    private enum Base: String, Hashable, Sendable {
      case truncated, malformedVarint, invalidWireType, fieldNumberZero, invalidUTF8
      case recursionLimitExceeded, lengthOverflow, unexpectedEndGroup, invalidJSON
      case unknownJSONField, jsonTypeMismatch, anyTypeUnknown, invalidValue
    }
    private let base: Base
    private init(_ base: Base) { self.base = base }

    /// The input ended inside a value, or a length points past its end.
    public static let truncated = Code(.truncated)
    /// A varint longer than 10 bytes (or a tag longer than 5, or above 2^32).
    public static let malformedVarint = Code(.malformedVarint)
    /// Wire type 6 or 7, or a group end where none was open.
    public static let invalidWireType = Code(.invalidWireType)
    /// A tag with field number 0.
    public static let fieldNumberZero = Code(.fieldNumberZero)
    /// A `string` field whose bytes are not valid UTF-8.
    public static let invalidUTF8 = Code(.invalidUTF8)
    /// Messages nested deeper than the decoder's limit (100).
    public static let recursionLimitExceeded = Code(.recursionLimitExceeded)
    /// A length that does not fit in memory or in the encoding.
    public static let lengthOverflow = Code(.lengthOverflow)
    /// A group end tag that does not match the open group.
    public static let unexpectedEndGroup = Code(.unexpectedEndGroup)
    /// Text that is not valid JSON.
    public static let invalidJSON = Code(.invalidJSON)
    /// A JSON key that names no field of the message.
    public static let unknownJSONField = Code(.unknownJSONField)
    /// A JSON value of the wrong kind for its field (a string for a bool, say).
    public static let jsonTypeMismatch = Code(.jsonTypeMismatch)
    /// An `Any` whose type URL names no type in the registry.
    public static let anyTypeUnknown = Code(.anyTypeUnknown)
    /// A value outside its type's range or format (a bad timestamp, say).
    public static let invalidValue = Code(.invalidValue)

    public var description: String { base.rawValue }
  }

  /// What kind of failure this was.
  public var code: Code
  /// What went wrong and why, in words.
  public var message: String
  /// The byte offset in the input where the failure was found, when known.
  public var offset: Int?
  /// The field being decoded, when known.
  public var fieldNumber: Int?
  /// The full proto name of the innermost message being decoded, when known.
  public var messageName: String?

  /// Makes an error; the decoder fills in ``messageName`` on the way out.
  public init(
    code: Code,
    message: String,
    offset: Int? = nil,
    fieldNumber: Int? = nil,
    messageName: String? = nil
  ) {
    self.code = code
    self.message = message
    self.offset = offset
    self.fieldNumber = fieldNumber
    self.messageName = messageName
  }

  public var description: String {
    var s = message
    if let offset { s += " at offset \(offset)" }
    if let fieldNumber { s += " in field \(fieldNumber)" }
    if let messageName { s += fieldNumber == nil ? " in \(messageName)" : " of \(messageName)" }
    return s
  }
}
