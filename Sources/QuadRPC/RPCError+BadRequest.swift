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

extension RPCError {
  /// RESOURCE_EXHAUSTED that tells the client when to try again: a `google.rpc.RetryInfo` in
  /// the details (and the caller may also set a `retry-after` trailer).
  package static func resourceExhausted(_ message: String, retryAfter delay: Duration) -> RPCError {
    var retry = Google_Rpc_RetryInfo()
    var d = Google_Protobuf_Duration()
    d.seconds = delay.components.seconds
    d.nanos = Int32(delay.components.attoseconds / 1_000_000_000)
    retry.retryDelay = d
    var status = Google_Rpc_Status()
    status.code = Int32(GRPCStatus.Code.resourceExhausted.rawValue)
    status.message = message
    var any = Google_Protobuf_Any()
    any.typeUrl = "type.googleapis.com/" + Google_Rpc_RetryInfo.protoMessageName
    any.value = retry.serializedBytes()
    status.details = [any]
    return RPCError(code: .resourceExhausted, message: message, details: status.serializedBytes())
  }

  /// The delay of a `google.rpc.RetryInfo` in this error's details (client side).
  package var retryDelay: Duration? {
    guard let details, let status = try? Google_Rpc_Status(serializedBytes: details),
      let any = status.details.first(where: { $0.typeUrl.hasSuffix("/" + Google_Rpc_RetryInfo.protoMessageName) }),
      let info = try? Google_Rpc_RetryInfo(serializedBytes: any.value)
    else { return nil }
    return .seconds(info.retryDelay.seconds) + .nanoseconds(Int64(info.retryDelay.nanos))
  }
}
