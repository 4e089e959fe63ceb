@testable internal import GRPCWire
internal import Testing

let validRequest = [
  HeaderField(":method", "POST"), HeaderField(":scheme", "http"), HeaderField(":path", "/campus.students.v1.Students/Get"),
  HeaderField(":authority", "localhost:50051"), HeaderField("content-type", "application/grpc"), HeaderField("te", "trailers"),
  HeaderField("grpc-timeout", "250m"), HeaderField("grpc-encoding", "gzip"), HeaderField("grpc-accept-encoding", "gzip, identity"),
  HeaderField("user-agent", "grpc-python/1.76"), HeaderField("x-request-id", "r-1"), HeaderField("x-trace-bin", "AQID"),
]

@Suite("Call heads: requests")
struct RequestHeadTests {
  @Test("A valid request gives path parts, deadline, encodings and custom metadata in order")
  func valid() throws {
    let head = try CallHead.validateRequest(validRequest, supportedEncodings: ["gzip"]).get()
    #expect(head.service == "campus.students.v1.Students")
    #expect(head.method == "Get")
    #expect(head.timeoutNanoseconds == 250_000_000)
    #expect(head.encoding == "gzip")
    #expect(head.acceptedEncodings == ["gzip", "identity"])
    #expect(head.metadata.map(\.key) == ["x-request-id", "x-trace-bin"])
    #expect(head.metadata.map(\.value) == [.text("r-1"), .binary([1, 2, 3])])
  }

  func rejection(_ headers: [HeaderField], supported: [String] = ["gzip"]) -> RequestRejection? {
    if case .failure(let r) = CallHead.validateRequest(headers, supportedEncodings: supported) { return r }
    return nil
  }

  func replacing(_ name: String, with value: String?) -> [HeaderField] {
    validRequest.compactMap { $0.name == name ? value.map { HeaderField(name, $0) } : $0 }
  }

  @Test("A content type that is not gRPC gets HTTP 415; a method other than POST gets 405")
  func httpRejections() {
    guard case .http(415, _)? = rejection(replacing("content-type", with: "application/json")) else {
      Issue.record("expected 415")
      return
    }
    guard case .http(415, _)? = rejection(replacing("content-type", with: nil)) else {
      Issue.record("expected 415 without content-type")
      return
    }
    guard case .http(405, _)? = rejection(replacing(":method", with: "GET")) else {
      Issue.record("expected 405")
      return
    }
  }

  @Test("An unknown message encoding is UNIMPLEMENTED and lists what is accepted")
  func unknownEncoding() {
    let r = rejection(replacing("grpc-encoding", with: "snappy"))
    #expect(r == .grpc(GRPCStatus(.unimplemented, "message encoding snappy is not supported"),
                       extraHeaders: [HeaderField("grpc-accept-encoding", "identity,gzip")]))
    #expect(rejection(replacing("grpc-encoding", with: "gzip"), supported: []) != nil)
    #expect(rejection(replacing("grpc-encoding", with: "identity"), supported: []) == nil)
  }

  @Test("Malformed timeouts, paths and binary metadata are rejected with a gRPC status", arguments: [
    (":path", "/onlyservice"), (":path", "noslash/M"), (":path", "//M"), ("grpc-timeout", "1.5S"), ("x-trace-bin", "!!"),
  ])
  func malformed(_ name: String, _ value: String) {
    guard case .grpc(let status, _)? = rejection(replacing(name, with: value)) else {
      Issue.record("\(name): \(value) accepted")
      return
    }
    #expect([GRPCStatus.Code.internal, .unimplemented].contains(status.code))
  }
}

@Suite("Call heads: responses and trailers")
struct ResponseHeadTests {
  @Test("Trailers carry the code, a percent-encoded message, details and metadata; they read back")
  func trailers() {
    let status = GRPCStatus(.notFound, "student 42\nnot found ☹")
    let fields = CallHead.trailers(status, details: [0x08, 0x05], metadata: [("x-retry", .text("no")), ("x-blob-bin", .binary([0xFF]))])
    #expect(fields == [
      HeaderField("grpc-status", "5"), HeaderField("grpc-message", "student 42%0Anot found %E2%98%B9"),
      HeaderField("grpc-status-details-bin", "CAU"), HeaderField("x-retry", "no"), HeaderField("x-blob-bin", "/w"),
    ])
    let (back, details) = CallHead.status(fromTrailers: fields)
    #expect(back == status)
    #expect(details == [0x08, 0x05])
  }

  @Test("Trailers-Only: :status 200, content type, status in one block; OK has no message")
  func trailersOnly() {
    #expect(CallHead.trailersOnly(GRPCStatus(.ok)) == [
      HeaderField(":status", "200"), HeaderField("content-type", "application/grpc"), HeaderField("grpc-status", "0"),
    ])
  }

  @Test("Clients map missing or invalid grpc-status and HTTP errors as the spec says")
  func clientMapping() {
    #expect(CallHead.status(fromTrailers: [HeaderField(":status", "503")]).0.code == .unavailable)
    #expect(CallHead.status(fromTrailers: [HeaderField(":status", "404")]).0.code == .unimplemented)
    #expect(CallHead.status(fromTrailers: [HeaderField("grpc-status", "17")]).0.code == .internal)
    #expect(CallHead.status(fromTrailers: [HeaderField(":status", "200")]).0.code == .unknown)
    #expect(GRPCStatus.Code.unauthenticated.description == "UNAUTHENTICATED")
  }

  @Test("Response headers advertise accepted encodings")
  func responseHeaders() {
    #expect(CallHead.responseHeaders(encoding: "gzip", supportedEncodings: ["gzip"], metadata: [("x-a", .text("1"))]) == [
      HeaderField(":status", "200"), HeaderField("content-type", "application/grpc"), HeaderField("grpc-encoding", "gzip"),
      HeaderField("grpc-accept-encoding", "identity,gzip"), HeaderField("x-a", "1"),
    ])
  }
}
