internal import CZlib

/// gzip compression for gRPC's `grpc-encoding: gzip`: the only owner of zlib streams.
package enum Gzip {
  /// A decompression failure: corrupt input, or output beyond the caller's limit.
  package struct Error: Swift.Error, Hashable, Sendable, CustomStringConvertible {
    package enum Kind: Hashable, Sendable {
      /// The decompressed size would exceed `limit` (gRPC: RESOURCE_EXHAUSTED).
      case limitExceeded(limit: Int)
      /// zlib rejected the data (gRPC: INTERNAL).
      case corrupt(String)
      /// The input ended before the gzip stream did.
      case truncated
    }
    package var kind: Kind
    package var description: String {
      switch kind {
      case .limitExceeded(let limit): return "decompressed message larger than max (\(limit) bytes)"
      case .corrupt(let why): return "invalid gzip data: \(why)"
      case .truncated: return "gzip data ends before its stream does"
      }
    }
  }

  /// Compresses `input` into one gzip member.
  package static func compress(_ input: [UInt8], level: Int32 = Z_DEFAULT_COMPRESSION) -> [UInt8] {
    var stream = z_stream()
    guard CZlib_deflateInitGzip(&stream, level) == Z_OK else { preconditionFailure("zlib deflateInit2 failed (out of memory)") }
    defer { deflateEnd(&stream) }
    let bound = Int(deflateBound(&stream, UInt(input.count)))
    var output = [UInt8](repeating: 0, count: bound)
    var input = input
    let produced = input.withUnsafeMutableBufferPointer { src -> Int in
      output.withUnsafeMutableBufferPointer { dst -> Int in
        stream.next_in = src.baseAddress
        stream.avail_in = UInt32(src.count)
        stream.next_out = dst.baseAddress
        stream.avail_out = UInt32(dst.count)
        let rv = deflate(&stream, Z_FINISH)
        precondition(rv == Z_STREAM_END, "deflate into a deflateBound-sized buffer must finish")
        return dst.count - Int(stream.avail_out)
      }
    }
    output.removeLast(output.count - produced)
    return output
  }

  /// Decompresses one gzip member, failing as soon as the output would pass `limit` bytes, so a
  /// small hostile input cannot make it allocate more than `limit` plus one chunk.
  ///
  /// - Throws: ``Error`` (`.limitExceeded`, `.corrupt`, `.truncated`).
  package static func decompress(_ input: [UInt8], limit: Int) throws(Error) -> [UInt8] {
    var stream = z_stream()
    guard CZlib_inflateInitGzip(&stream) == Z_OK else { preconditionFailure("zlib inflateInit2 failed (out of memory)") }
    defer { inflateEnd(&stream) }
    var output: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 16_384)
    var input = input
    var failure: Error?
    input.withUnsafeMutableBufferPointer { src in
      stream.next_in = src.baseAddress
      stream.avail_in = UInt32(src.count)
      while true {
        let (rv, produced) = chunk.withUnsafeMutableBufferPointer { dst -> (Int32, Int) in
          stream.next_out = dst.baseAddress
          stream.avail_out = UInt32(dst.count)
          let rv = inflate(&stream, Z_NO_FLUSH)
          return (rv, dst.count - Int(stream.avail_out))
        }
        if produced > 0 {
          guard output.count + produced <= limit else {
            failure = Error(kind: .limitExceeded(limit: limit))
            return
          }
          output.append(contentsOf: chunk[0..<produced])
        }
        switch rv {
        case Z_STREAM_END:
          return
        case Z_OK:
          continue
        case Z_BUF_ERROR where stream.avail_in == 0:
          failure = Error(kind: .truncated)
          return
        default:
          let message = stream.msg.map { String(cString: $0) } ?? "zlib error \(rv)"
          failure = Error(kind: .corrupt(message))
          return
        }
      }
    }
    if let failure { throw failure }
    return output
  }
}
