/// A header field as gRPC sees it (lower-case name).
package struct HeaderField: Hashable, Sendable {
  package var name: String
  package var value: String
  package init(_ name: String, _ value: String) {
    self.name = name
    self.value = value
  }
}

/// A custom metadata value: text, or bytes for keys ending in `-bin`.
package enum MetadataValue: Hashable, Sendable {
  case text(String)
  case binary([UInt8])
}

/// What a server learned from a valid request's headers.
package struct RequestHead: Hashable, Sendable {
  /// `/package.Service/Method`.
  package var path: String
  /// The service part of the path (`package.Service`).
  package var service: String {
    let p = path.utf8.dropFirst()
    return String(Substring(p.prefix { $0 != UInt8(ascii: "/") })) ?? ""
  }
  /// The method part (`Method`).
  package var method: String {
    let p = path.utf8.dropFirst()
    guard let slash = p.firstIndex(of: UInt8(ascii: "/")) else { return "" }
    return String(Substring(p[p.index(after: slash)...])) ?? ""
  }
  /// From `grpc-timeout`, when present.
  package var timeoutNanoseconds: Int64?
  /// The request messages' encoding (`grpc-encoding`), `nil` for identity.
  package var encoding: String?
  /// Encodings the client accepts for responses (`grpc-accept-encoding`).
  package var acceptedEncodings: [String]
  /// Custom metadata (reserved and pseudo headers removed; `-bin` values decoded), in order.
  package var metadata: Metadata

  package static func == (a: RequestHead, b: RequestHead) -> Bool {
    a.path == b.path && a.timeoutNanoseconds == b.timeoutNanoseconds && a.encoding == b.encoding
      && a.acceptedEncodings == b.acceptedEncodings && a.metadata == b.metadata
  }
  package func hash(into h: inout Hasher) { h.combine(path) }
}

/// How a server must answer a request whose headers it cannot accept.
package enum RequestRejection: Error, Hashable, Sendable {
  /// A non-gRPC answer: HTTP status (405 for a method other than POST, 415 for a content type
  /// that is not gRPC) with a `grpc-status` for gRPC clients that look anyway.
  case http(status: Int, GRPCStatus)
  /// A Trailers-Only gRPC answer (unknown encoding, malformed timeout or metadata, bad path).
  case grpc(GRPCStatus, extraHeaders: [HeaderField])
}

/// The rules for request heads, response heads and trailers (PROTOCOL-HTTP2.md).
package enum CallHead {
  /// Headers that are the transport's, never custom metadata.
  static let reserved: Set<String> = [
    "content-type", "te", "grpc-timeout", "grpc-encoding", "grpc-accept-encoding", "user-agent",
    "grpc-message-type", "grpc-status", "grpc-message", "grpc-status-details-bin", "content-length",
  ]

  /// Validates a request's headers.
  ///
  /// - Parameter supportedEncodings: message encodings this server can decode besides identity.
  package static func validateRequest(
    _ headers: [HeaderField],
    supportedEncodings: [String]
  ) -> Result<RequestHead, RequestRejection> {
    var method: String?
    var path: String?
    var contentType: String?
    var head = RequestHead(path: "", timeoutNanoseconds: nil, encoding: nil, acceptedEncodings: [], metadata: [])
    for h in headers {
      switch h.name {
      case ":method": method = h.value
      case ":path": path = h.value
      case ":scheme", ":authority": break
      case "content-type": contentType = h.value
      case "grpc-timeout":
        guard let ns = GRPCTimeout.parse(h.value) else {
          return .failure(.grpc(GRPCStatus(.internal, "malformed grpc-timeout \"\(h.value)\""), extraHeaders: []))
        }
        head.timeoutNanoseconds = ns
      case "grpc-encoding":
        let e = h.value.lowercased()
        if e != "identity" { head.encoding = e }
      case "grpc-accept-encoding":
        head.acceptedEncodings += h.value.split(separator: ",").map { String($0).trimmingSpaces().lowercased() }
      default:
        if h.name.hasPrefix(":") || reserved.contains(h.name) || h.name.hasPrefix("grpc-") { continue }
        if BinaryMetadata.isBinaryKey(h.name) {
          guard let bytes = BinaryMetadata.decode(h.value) else {
            return .failure(.grpc(GRPCStatus(.internal, "metadata \(h.name) is not base64"), extraHeaders: []))
          }
          head.metadata.append((h.name, .binary(bytes)))
        } else {
          head.metadata.append((h.name, .text(h.value)))
        }
      }
    }
    guard method == "POST" else {
      return .failure(.http(status: 405, GRPCStatus(.internal, "method \(method ?? "(none)") is not POST")))
    }
    guard let contentType, GRPCContentType.isGRPC(contentType) else {
      return .failure(.http(status: 415, GRPCStatus(.internal, "content-type \(contentType ?? "(none)") is not application/grpc")))
    }
    guard let path, path.hasPrefix("/") else {
      return .failure(.grpc(GRPCStatus(.unimplemented, "malformed path \(path ?? "(none)")"), extraHeaders: []))
    }
    // Exactly one "/" after the leading one, with text on both sides.
    var slashes = 0
    var slashAt = 0
    for (i, b) in path.utf8.enumerated() where b == UInt8(ascii: "/") && i > 0 {
      slashes += 1
      slashAt = i
    }
    guard slashes == 1, slashAt > 1, slashAt < path.utf8.count - 1 else {
      return .failure(.grpc(GRPCStatus(.unimplemented, "malformed path \(path)"), extraHeaders: []))
    }
    head.path = path
    if let e = head.encoding, !supportedEncodings.contains(e) {
      let accept = (["identity"] + supportedEncodings).joined(separator: ",")
      return .failure(.grpc(
        GRPCStatus(.unimplemented, "message encoding \(e) is not supported"),
        extraHeaders: [HeaderField("grpc-accept-encoding", accept)]))
    }
    return .success(head)
  }

  /// A successful response's headers.
  package static func responseHeaders(
    encoding: String?,
    supportedEncodings: [String],
    metadata: Metadata = []
  ) -> [HeaderField] {
    var out = [HeaderField(":status", "200"), HeaderField("content-type", "application/grpc")]
    if let encoding { out.append(HeaderField("grpc-encoding", encoding)) }
    if !supportedEncodings.isEmpty {
      out.append(HeaderField("grpc-accept-encoding", (["identity"] + supportedEncodings).joined(separator: ",")))
    }
    out += metadataFields(metadata)
    return out
  }

  /// The trailers that end a call: status, percent-encoded message, optional `google.rpc.Status`
  /// bytes in `grpc-status-details-bin`, and trailing metadata.
  package static func trailers(
    _ status: GRPCStatus,
    details: [UInt8]? = nil,
    metadata: Metadata = []
  ) -> [HeaderField] {
    var out = [HeaderField("grpc-status", String(status.code.rawValue))]
    if !status.message.isEmpty { out.append(HeaderField("grpc-message", PercentEncoding.encode(status.message))) }
    if let details { out.append(HeaderField("grpc-status-details-bin", BinaryMetadata.encode(details))) }
    out += metadataFields(metadata)
    return out
  }

  /// A Trailers-Only response: one HEADERS frame that carries the status and ends the stream.
  package static func trailersOnly(
    _ status: GRPCStatus,
    details: [UInt8]? = nil,
    extraHeaders: [HeaderField] = [],
    metadata: Metadata = []
  ) -> [HeaderField] {
    [HeaderField(":status", "200"), HeaderField("content-type", "application/grpc")] + extraHeaders
      + trailers(status, details: details, metadata: metadata)
  }

  /// The custom metadata among response headers or trailers: pseudo and reserved headers left
  /// out (but `grpc-retry-pushback-ms`, which retries read), `-bin` values decoded (an
  /// undecodable one is dropped).
  package static func customMetadata(_ fields: [HeaderField]) -> Metadata {
    var out = Metadata()
    for f in fields where !f.name.hasPrefix(":") && !reserved.contains(f.name)
      && (!f.name.hasPrefix("grpc-") || f.name == "grpc-retry-pushback-ms") {
      if BinaryMetadata.isBinaryKey(f.name) {
        if let bytes = BinaryMetadata.decode(f.value) { out.append((f.name, .binary(bytes))) }
      } else {
        out.append((f.name, .text(f.value)))
      }
    }
    return out
  }

  /// Reads a client-side status from trailers (or a Trailers-Only head): the code, the decoded
  /// message and the details bytes. A missing or invalid `grpc-status` is UNKNOWN / INTERNAL.
  package static func status(fromTrailers fields: [HeaderField]) -> (GRPCStatus, details: [UInt8]?) {
    var code: GRPCStatus.Code?
    var message = ""
    var details: [UInt8]?
    var httpStatus: Int?
    for f in fields {
      switch f.name {
      case "grpc-status":
        guard let n = Int(f.value), let c = GRPCStatus.Code(rawValue: n) else {
          return (GRPCStatus(.internal, "invalid grpc-status \"\(f.value)\""), nil)
        }
        code = c
      case "grpc-message": message = PercentEncoding.decode(f.value)
      case "grpc-status-details-bin": details = BinaryMetadata.decode(f.value)
      case ":status": httpStatus = Int(f.value)
      default: break
      }
    }
    if let code { return (GRPCStatus(code, message), details) }
    if let httpStatus, httpStatus != 200 { return (GRPCStatus.fromHTTPStatus(httpStatus), nil) }
    return (GRPCStatus(.unknown, "no grpc-status in trailers"), nil)
  }

  package static func metadataFields(_ metadata: Metadata) -> [HeaderField] {
    metadata.map { key, value in
      switch value {
      case .text(let s): return HeaderField(key, s)
      case .binary(let b): return HeaderField(key, BinaryMetadata.encode(b))
      }
    }
  }
}

extension String {
  func trimmingSpaces() -> String {
    var s = Substring(self)
    while s.first == " " || s.first == "\t" { s = s.dropFirst() }
    while s.last == " " || s.last == "\t" { s = s.dropLast() }
    return String(s)
  }
}
