internal import GRPCWire
internal import QuadProtobuf

extension RPCError {
  /// One field of a request that failed validation, and why.
  package struct FieldViolation: Sendable, Hashable {
    /// The field's path in the request (`"email"`, `"rows[3].email"`).
    package var field: String
    package var description: String

    package init(_ field: String, _ description: String) {
      self.field = field
      self.description = description
    }
  }

  /// INVALID_ARGUMENT naming every bad field: the message lists them, and the details carry a
  /// `google.rpc.BadRequest` for clients that read `grpc-status-details-bin`.
  package static func invalidArgument(_ violations: [FieldViolation]) -> RPCError {
    let message = violations.map { "\($0.field): \($0.description)" }.joined(separator: "; ")
    var badRequest = Google_Rpc_BadRequest()
    badRequest.fieldViolations = violations.map { v in
      var f = Google_Rpc_BadRequest.FieldViolation()
      f.field = v.field
      f.description_p = v.description
      return f
    }
    var status = Google_Rpc_Status()
    status.code = Int32(GRPCStatus.Code.invalidArgument.rawValue)
    status.message = message
    var any = Google_Protobuf_Any()
    any.typeUrl = "type.googleapis.com/" + Google_Rpc_BadRequest.protoMessageName
    any.value = badRequest.serializedBytes()
    status.details = [any]
    return RPCError(code: .invalidArgument, message: message, details: status.serializedBytes())
  }

  /// The field violations of a `google.rpc.BadRequest` in this error's details (client side).
  package var fieldViolations: [FieldViolation] {
    guard let details, let status = try? Google_Rpc_Status(serializedBytes: details) else { return [] }
    return status.details.filter { $0.typeUrl.hasSuffix("/" + Google_Rpc_BadRequest.protoMessageName) }.flatMap { any in
      ((try? Google_Rpc_BadRequest(serializedBytes: any.value))?.fieldViolations ?? []).map { FieldViolation($0.field, $0.description_p) }
    }
  }
}
