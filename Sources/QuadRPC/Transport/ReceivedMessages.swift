internal import GRPCWire
internal import Gzip
internal import NIOCore

/// What server and client do alike with a message taken off the wire: decompress it within the
/// receive limit, and turn framing and gzip failures into the status the spec names
/// (RESOURCE_EXHAUSTED for a size limit, INTERNAL otherwise).
enum ReceivedMessages {
  /// The message's bytes, gunzipped when its flag says so.
  ///
  /// - Parameter encoding: the stream's `grpc-encoding` (`nil` for identity).
  static func decompress(_ m: FramedMessage, encoding: String?, limit: Int) throws(RPCError) -> [UInt8] {
    guard m.compressed else { return m.bytes }
    guard encoding == "gzip" else {
      throw RPCError(code: .internal, message: "compressed message with grpc-encoding \(encoding ?? "identity")")
    }
    do {
      return try Gzip.decompress(m.bytes, limit: limit)
    } catch {
      if case .limitExceeded = error.kind { throw RPCError(code: .resourceExhausted, message: error.description) }
      throw RPCError(code: .internal, message: error.description)
    }
  }

  /// The status for an error met while receiving.
  static func status(for error: any Error) -> RPCError {
    if let e = error as? RPCError { return e }
    if let e = error as? FramingError {
      if case .messageTooLarge = e.kind { return RPCError(code: .resourceExhausted, message: e.description) }
      return RPCError(code: .internal, message: e.description)
    }
    return RPCError(code: .internal, message: "\(error)")
  }
}

extension Duration {
  /// Whole nanoseconds, saturating at `Int64.max / 2` (so adding it to a clock reading cannot
  /// overflow).
  var saturatingNanoseconds: Int64 {
    let (s, atto) = components
    let ns = s.multipliedReportingOverflow(by: 1_000_000_000)
    return ns.overflow ? Int64.max / 2 : min(Int64.max / 2, ns.partialValue + atto / 1_000_000_000)
  }
}

extension TimeAmount {
  init(_ duration: Duration) {
    self = .nanoseconds(duration.saturatingNanoseconds)
  }
}
