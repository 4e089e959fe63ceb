internal import CNGHTTP2

/// One header field (names are lower case on the wire; values are ASCII for gRPC).
package struct HTTP2Header: Hashable, Sendable {
  package var name: String
  package var value: String
  package init(name: String, value: String) {
    self.name = name
    self.value = value
  }
}

/// Something the peer did, as reported by ``HTTP2Session/receive(_:)``.
package enum HTTP2Event: Hashable, Sendable {
  /// A complete header block (request or response headers, or trailers).
  case headers(streamID: Int32, headers: [HTTP2Header], endStream: Bool)
  /// Body bytes; they count against flow control until consumed.
  case data(streamID: Int32, bytes: [UInt8])
  /// The peer finished its side of the stream with a DATA frame.
  case endStream(streamID: Int32)
  /// The peer reset the stream.
  case reset(streamID: Int32, errorCode: UInt32)
  /// The stream is closed (both sides done, or reset); `errorCode` 0 means cleanly.
  case streamClosed(streamID: Int32, errorCode: UInt32)
  /// The peer is going away; streams above `lastStreamID` were not processed.
  case goAway(lastStreamID: Int32, errorCode: UInt32)
  /// The peer acknowledged a PING this side sent.
  case pingAcknowledged
}

/// A failure inside nghttp2, with the library's code and its own description.
package struct HTTP2SessionError: Error, Hashable, Sendable, CustomStringConvertible {
  /// nghttp2's error code (negative, `NGHTTP2_ERR_*`).
  package var libraryCode: Int32
  /// The call that failed.
  package var operation: String

  package init(libraryCode: Int32, operation: String) {
    self.libraryCode = libraryCode
    self.operation = operation
  }

  /// Whether the error closes the whole connection (as opposed to one stream).
  package var isFatal: Bool { libraryCode < NGHTTP2_ERR_FATAL.rawValue || libraryCode == NGHTTP2_ERR_BAD_CLIENT_MAGIC.rawValue || libraryCode == NGHTTP2_ERR_FLOODED.rawValue }

  package var description: String {
    "\(operation) failed: \(String(cString: nghttp2_strerror(libraryCode))) (\(libraryCode))"
  }
}
