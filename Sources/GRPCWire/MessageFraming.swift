/// gRPC's length-prefixed messages: a 1-byte compressed flag, a 4-byte big-endian length, then
/// the message (PROTOCOL-HTTP2.md, "Length-Prefixed-Message").
package enum MessageFraming {
  /// Bytes of the prefix before each message.
  package static let prefixLength = 5

  /// Frames one message.
  package static func frame(_ message: [UInt8], compressed: Bool = false) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(prefixLength + message.count)
    appendFrame(message, compressed: compressed, to: &out)
    return out
  }

  /// Appends one framed message to `out` (so a writer can batch several into one DATA payload).
  package static func appendFrame(_ message: [UInt8], compressed: Bool, to out: inout [UInt8]) {
    let n = UInt32(message.count)
    out.append(compressed ? 1 : 0)
    out.append(UInt8(truncatingIfNeeded: n >> 24))
    out.append(UInt8(truncatingIfNeeded: n >> 16))
    out.append(UInt8(truncatingIfNeeded: n >> 8))
    out.append(UInt8(truncatingIfNeeded: n))
    out.append(contentsOf: message)
  }
}

/// One message taken off the wire, still compressed when its flag says so.
package struct FramedMessage: Hashable, Sendable {
  package var compressed: Bool
  package var bytes: [UInt8]
}

/// A deframing failure; RESOURCE_EXHAUSTED or INTERNAL in gRPC terms.
package struct FramingError: Error, Hashable, Sendable, CustomStringConvertible {
  package enum Kind: Hashable, Sendable {
    /// A message longer than the receive limit (RESOURCE_EXHAUSTED).
    case messageTooLarge(limit: Int, actual: Int)
    /// A compressed-flag byte other than 0 or 1 (INTERNAL).
    case invalidCompressedFlag(UInt8)
    /// The stream ended inside a message (INTERNAL).
    case truncated(missing: Int)
  }
  package var kind: Kind

  package var description: String {
    switch kind {
    case .messageTooLarge(let limit, let actual):
      return "received message larger than max (\(actual) vs. \(limit))"
    case .invalidCompressedFlag(let flag):
      return "invalid compressed flag \(flag) in message prefix"
    case .truncated(let missing):
      return "stream ended \(missing) bytes short of a complete message"
    }
  }
}

/// Reassembles length-prefixed messages from DATA chunks of any size.
///
/// The length is checked against ``maximumMessageLength`` as soon as the prefix is complete,
/// before any of the message is buffered, so a peer cannot make it allocate beyond the limit.
package struct MessageDeframer: Sendable {
  /// The largest message accepted (gRPC's default is 4 MiB).
  package let maximumMessageLength: Int
  private var buffer: [UInt8] = []
  private var start = 0

  package init(maximumMessageLength: Int = 4 * 1024 * 1024) {
    self.maximumMessageLength = maximumMessageLength
  }

  /// Bytes held that do not yet form a complete message.
  package var bufferedCount: Int { buffer.count - start }

  /// Adds received bytes.
  package mutating func append(_ bytes: [UInt8]) {
    if start > 0 && start == buffer.count {
      buffer.removeAll(keepingCapacity: true)
      start = 0
    } else if start > 65_536 && start > buffer.count / 2 {
      buffer.removeFirst(start)
      start = 0
    }
    buffer.append(contentsOf: bytes)
  }

  /// The next complete message, or `nil` until more bytes arrive.
  ///
  /// - Throws: ``FramingError`` for an invalid flag or an over-long message (checked before the
  ///   message's bytes are buffered: the caller should stop reading and fail the call).
  package mutating func next() throws(FramingError) -> FramedMessage? {
    guard buffer.count - start >= MessageFraming.prefixLength else { return nil }
    let flag = buffer[start]
    guard flag <= 1 else { throw FramingError(kind: .invalidCompressedFlag(flag)) }
    let length = Int(buffer[start + 1]) << 24 | Int(buffer[start + 2]) << 16 | Int(buffer[start + 3]) << 8 | Int(buffer[start + 4])
    guard length <= maximumMessageLength else {
      throw FramingError(kind: .messageTooLarge(limit: maximumMessageLength, actual: length))
    }
    guard buffer.count - start - MessageFraming.prefixLength >= length else { return nil }
    let from = start + MessageFraming.prefixLength
    let message = FramedMessage(compressed: flag == 1, bytes: Array(buffer[from..<from + length]))
    start = from + length
    return message
  }

  /// Call at end of stream: fails when a partial message is left.
  package func finish() throws(FramingError) {
    let left = buffer.count - start
    guard left > 0 else { return }
    if left < MessageFraming.prefixLength {
      throw FramingError(kind: .truncated(missing: MessageFraming.prefixLength - left))
    }
    let length = Int(buffer[start + 1]) << 24 | Int(buffer[start + 2]) << 16 | Int(buffer[start + 3]) << 8 | Int(buffer[start + 4])
    throw FramingError(kind: .truncated(missing: MessageFraming.prefixLength + length - left))
  }
}
