package import GRPCWire

/// An error a handler throws to end its call with a chosen status; any other error reaches the
/// client as UNKNOWN with a generic message, so internals never leak. Clients throw it too, with
/// the status the server sent.
package struct RPCError: Error, Hashable, Sendable, CustomStringConvertible {
  package var code: GRPCStatus.Code
  package var message: String
  /// Serialized `google.rpc.Status`, sent in `grpc-status-details-bin`.
  package var details: [UInt8]?
  /// Trailing metadata that came with the status (client side).
  package var trailers: Metadata = []

  package init(code: GRPCStatus.Code, message: String, details: [UInt8]? = nil) {
    self.code = code
    self.message = message
    self.details = details
  }

  package var description: String { "\(code) (\(code.rawValue)): \(message)" }

  package static func == (a: RPCError, b: RPCError) -> Bool {
    a.code == b.code && a.message == b.message && a.details == b.details
  }
  package func hash(into h: inout Hasher) {
    h.combine(code)
    h.combine(message)
  }
}
