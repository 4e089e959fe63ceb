/// Generated code conforms to this marker; a runtime that drops it breaks old generated code at
/// compile time instead of at run time.
public protocol QuadProtobufAPIVersion1 {}

/// One RPC as the `.proto` file declares it: what routing, clients and reflection need.
public struct MethodDescriptor: Hashable, Sendable, CustomStringConvertible {
  /// The service's full proto name (`campus.students.v1.StudentService`).
  public let service: String
  /// The method's name (`GetStudent`).
  public let method: String
  /// The request message's full proto name.
  public let inputType: String
  /// The response message's full proto name.
  public let outputType: String
  /// Whether the client sends a stream of requests.
  public let clientStreaming: Bool
  /// Whether the server sends a stream of responses.
  public let serverStreaming: Bool

  public init(
    service: String,
    method: String,
    inputType: String,
    outputType: String,
    clientStreaming: Bool,
    serverStreaming: Bool
  ) {
    self.service = service
    self.method = method
    self.inputType = inputType
    self.outputType = outputType
    self.clientStreaming = clientStreaming
    self.serverStreaming = serverStreaming
  }

  /// The HTTP/2 `:path` of the method: `/package.Service/Method`.
  public var fullPath: String { "/\(service)/\(method)" }

  public var description: String { fullPath }
}

extension Base64 {
  /// Decodes base64 split over lines (generated files embed descriptors this way).
  public static func decode(lines: String) -> [UInt8] {
    guard let bytes = decode(String(lines.unicodeScalars.filter { $0 != "\n" && $0 != "\r" })) else {
      preconditionFailure("generated descriptor text is not base64")
    }
    return bytes
  }
}

extension BinaryDecoder {
  /// Reads a packed run of a closed (proto2) enum: numbers it does not name go to `unknownFields`.
  @inlinable public mutating func readPackedClosedEnum<E: Enum>(
    _ type: E.Type,
    fieldNumber: Int,
    into values: inout [E],
    unknownFields: inout UnknownFields
  ) throws {
    let n = try readLength()
    let savedEnd = end
    end = cursor + n
    while cursor < end {
      let raw = try readVarint()
      if let e = E(rawValue: Int32(truncatingIfNeeded: raw)) {
        values.append(e)
      } else {
        unknownFields.appendVarint(fieldNumber: fieldNumber, value: raw)
      }
    }
    end = savedEnd
  }
}
