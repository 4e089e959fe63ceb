/// A gRPC status: one of the 17 codes of `google.rpc.Code` and a message for people.
package struct GRPCStatus: Hashable, Sendable, CustomStringConvertible {
  /// A status code. The wire form is its decimal number in `grpc-status`.
  package struct Code: Hashable, Sendable, CustomStringConvertible {
    package let rawValue: Int
    package init?(rawValue: Int) {
      guard (0...16).contains(rawValue) else { return nil }
      self.rawValue = rawValue
    }
    private init(_ v: Int) { rawValue = v }

    package static let ok = Code(0)
    package static let cancelled = Code(1)
    package static let unknown = Code(2)
    package static let invalidArgument = Code(3)
    package static let deadlineExceeded = Code(4)
    package static let notFound = Code(5)
    package static let alreadyExists = Code(6)
    package static let permissionDenied = Code(7)
    package static let resourceExhausted = Code(8)
    package static let failedPrecondition = Code(9)
    package static let aborted = Code(10)
    package static let outOfRange = Code(11)
    package static let unimplemented = Code(12)
    package static let `internal` = Code(13)
    package static let unavailable = Code(14)
    package static let dataLoss = Code(15)
    package static let unauthenticated = Code(16)

    private static let names = [
      "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
      "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
      "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
    ]
    /// The canonical name (`NOT_FOUND`).
    package var description: String { Self.names[rawValue] }

    /// The code with a canonical name (`"NOT_FOUND"`), as service configs spell them.
    package init?(name: String) {
      guard let i = Self.names.firstIndex(of: name.uppercased()) else { return nil }
      rawValue = i
    }
  }

  package var code: Code
  package var message: String

  package init(_ code: Code, _ message: String = "") {
    self.code = code
    self.message = message
  }

  package var description: String { message.isEmpty ? code.description : "\(code): \(message)" }

  /// The status a client reports for an HTTP response that carries no `grpc-status`
  /// (PROTOCOL-HTTP2.md / http-grpc-status-mapping.md).
  package static func fromHTTPStatus(_ status: Int) -> GRPCStatus {
    switch status {
    case 400: return GRPCStatus(.internal, "HTTP 400")
    case 401: return GRPCStatus(.unauthenticated, "HTTP 401")
    case 403: return GRPCStatus(.permissionDenied, "HTTP 403")
    case 404: return GRPCStatus(.unimplemented, "HTTP 404")
    case 429, 502, 503, 504: return GRPCStatus(.unavailable, "HTTP \(status)")
    default: return GRPCStatus(.unknown, "HTTP \(status)")
    }
  }
}
