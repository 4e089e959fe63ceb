internal import GRPCWire
internal import QuadProtobuf
package import QuadRPC

/// The gRPC interop client cases (doc/interop-test-descriptions.md), run against any
/// `grpc.testing.TestService` server.
package struct InteropClient: Sendable {
  /// The cases this client implements, in the order `all` runs them.
  package static let cases = [
    "empty_unary", "large_unary", "client_compressed_unary", "server_compressed_unary",
    "client_streaming", "server_streaming", "ping_pong", "empty_stream", "cancel_after_begin",
    "cancel_after_first_response", "timeout_on_sleeping_server", "custom_metadata",
    "status_code_and_message", "special_status_message", "unimplemented_method",
    "unimplemented_service",
  ]

  /// A case's failed check.
  package struct Failure: Error, CustomStringConvertible {
    package var description: String
  }

  let client: GRPCClient
  let service: Grpc_Testing_TestService.Client

  package init(client: GRPCClient) {
    self.client = client
    self.service = Grpc_Testing_TestService.Client(client)
  }

  /// Runs one case by its official name.
  ///
  /// - Throws: ``Failure`` (or the unexpected ``RPCError``) when the case fails.
  package func run(_ name: String) async throws {
    switch name {
    case "empty_unary": try await emptyUnary()
    case "large_unary": try await largeUnary()
    case "client_compressed_unary": try await clientCompressedUnary()
    case "server_compressed_unary": try await serverCompressedUnary()
    case "client_streaming": try await clientStreaming()
    case "server_streaming": try await serverStreaming()
    case "ping_pong": try await pingPong()
    case "empty_stream": try await emptyStream()
    case "cancel_after_begin": try await cancelAfterBegin()
    case "cancel_after_first_response": try await cancelAfterFirstResponse()
    case "timeout_on_sleeping_server": try await timeoutOnSleepingServer()
    case "custom_metadata": try await customMetadata()
    case "status_code_and_message": try await statusCodeAndMessage()
    case "special_status_message": try await specialStatusMessage()
    case "unimplemented_method": try await unimplementedMethod()
    case "unimplemented_service": try await unimplementedService()
    default: throw Failure(description: "unknown test case \(name)")
    }
  }

  // MARK: Helpers

  static func check(_ condition: Bool, _ why: @autoclosure () -> String) throws {
    if !condition { throw Failure(description: why()) }
  }

  static func payload(_ size: Int) -> Grpc_Testing_Payload {
    var p = Grpc_Testing_Payload()
    p.body = [UInt8](repeating: 0, count: size)
    return p
  }

  static func bool(_ v: Bool) -> Grpc_Testing_BoolValue {
    var b = Grpc_Testing_BoolValue()
    b.value = v
    return b
  }

  static func largeRequest() -> Grpc_Testing_SimpleRequest {
    var r = Grpc_Testing_SimpleRequest()
    r.responseSize = 314_159
    r.payload = payload(271_828)
    return r
  }

  static func streamingRequest(responseSizes: [Int32], payloadSize: Int) -> Grpc_Testing_StreamingOutputCallRequest {
    var r = Grpc_Testing_StreamingOutputCallRequest()
    r.responseParameters = responseSizes.map { size in
      var p = Grpc_Testing_ResponseParameters()
      p.size = size
      return p
    }
    if payloadSize > 0 { r.payload = payload(payloadSize) }
    return r
  }

  /// Runs `body` and checks it fails with `code` (and `message`, when given).
  static func expectError(_ code: GRPCStatus.Code, message: String? = nil, _ body: () async throws -> Void) async throws {
    do {
      try await body()
    } catch let e as RPCError {
      try check(e.code == code, "status \(e.code), expected \(code) (\(e.message))")
      if let message { try check(e.message == message, "message \(e.message.debugDescription), expected \(message.debugDescription)") }
      return
    }
    throw Failure(description: "call succeeded, expected \(code)")
  }

  static func checkZeros(_ payload: Grpc_Testing_Payload, _ size: Int) throws {
    try check(payload.body.count == size, "payload of \(payload.body.count) bytes, expected \(size)")
    try check(payload.body.allSatisfy { $0 == 0 }, "payload bytes are not all zero")
  }

  // MARK: Cases

  func emptyUnary() async throws {
    _ = try await service.emptyCall(Grpc_Testing_Empty())
  }

  func largeUnary() async throws {
    let r = try await service.unaryCall(Self.largeRequest())
    try Self.checkZeros(r.payload, 314_159)
  }

  func clientCompressedUnary() async throws {
    var probe = Self.largeRequest()
    probe.expectCompressed = Self.bool(true)
    try await Self.expectError(.invalidArgument) { _ = try await service.unaryCall(probe) }
    let compressed = try await service.unaryCall(probe, options: CallOptions(compressRequests: true))
    try Self.checkZeros(compressed.payload, 314_159)
    var plain = Self.largeRequest()
    plain.expectCompressed = Self.bool(false)
    let r = try await service.unaryCall(plain)
    try Self.checkZeros(r.payload, 314_159)
  }

  func serverCompressedUnary() async throws {
    for compressed in [true, false] {
      var request = Self.largeRequest()
      request.responseCompressed = Self.bool(compressed)
      let r = try await service.unaryCall(request)
      try Self.checkZeros(r.payload, 314_159)
    }
  }

  func clientStreaming() async throws {
    let r = try await service.streamingInputCall { writer in
      for size in [27_182, 8, 1_828, 45_904] {
        var m = Grpc_Testing_StreamingInputCallRequest()
        m.payload = Self.payload(size)
        try await writer.write(m)
      }
    }
    try Self.check(r.aggregatedPayloadSize == 74_922, "aggregated size \(r.aggregatedPayloadSize), expected 74922")
  }

  func serverStreaming() async throws {
    let sizes: [Int32] = [31_415, 9, 2_653, 58_979]
    let got = try await service.streamingOutputCall(Self.streamingRequest(responseSizes: sizes, payloadSize: 0)) { responses in
      var got: [Int] = []
      for try await r in responses { got.append(r.payload.body.count) }
      return got
    }
    try Self.check(got == sizes.map(Int.init), "response sizes \(got), expected \(sizes)")
  }

  func pingPong() async throws {
    let pairs: [(Int32, Int)] = [(31_415, 27_182), (9, 8), (2_653, 1_828), (58_979, 45_904)]
    try await service.fullDuplexCall { writer, responses in
      var it = responses.makeAsyncIterator()
      for (responseSize, requestSize) in pairs {
        try await writer.write(Self.streamingRequest(responseSizes: [responseSize], payloadSize: requestSize))
        guard let r = try await it.next() else { throw Failure(description: "stream ended early") }
        try Self.checkZeros(r.payload, Int(responseSize))
      }
      writer.finish()
      try Self.check(try await it.next() == nil, "a response after the last request")
    }
  }

  func emptyStream() async throws {
    try await service.fullDuplexCall { writer, responses in
      writer.finish()
      var n = 0
      for try await _ in responses { n += 1 }
      try Self.check(n == 0, "\(n) responses to an empty stream")
    }
  }

  /// Whether an error reports a client-side cancellation.
  static func isCancelled(_ error: any Error) -> Bool {
    if let e = error as? RPCError { return e.code == .cancelled }
    return error is CancellationError
  }

  func cancelAfterBegin() async throws {
    let service = self.service
    let task = Task {
      _ = try await service.streamingInputCall { _ in
        try await Task.sleep(for: .seconds(30))
      }
    }
    try await Task.sleep(for: .milliseconds(50))
    task.cancel()
    do {
      try await task.value
      throw Failure(description: "call succeeded after cancellation")
    } catch {
      try Self.check(Self.isCancelled(error), "ended with \(error), expected CANCELLED")
    }
  }

  func cancelAfterFirstResponse() async throws {
    let service = self.service
    let task = Task {
      try await service.fullDuplexCall { writer, responses in
        var it = responses.makeAsyncIterator()
        try await writer.write(Self.streamingRequest(responseSizes: [31_415], payloadSize: 27_182))
        guard let r = try await it.next() else { throw Failure(description: "no first response") }
        try Self.checkZeros(r.payload, 31_415)
        withUnsafeCurrentTask { $0?.cancel() }
        _ = try await it.next()
      }
    }
    do {
      try await task.value
      throw Failure(description: "call went on after cancellation")
    } catch let f as Failure {
      throw f
    } catch {
      try Self.check(Self.isCancelled(error), "ended with \(error), expected CANCELLED")
    }
  }

  func timeoutOnSleepingServer() async throws {
    try await Self.expectError(.deadlineExceeded) {
      try await service.fullDuplexCall(options: CallOptions(timeout: .milliseconds(1))) { writer, responses in
        try await writer.write(Self.streamingRequest(responseSizes: [], payloadSize: 27_182))
        for try await _ in responses {}
      }
    }
  }

  static let echoInitial = ("x-grpc-test-echo-initial", "test_initial_metadata_value")
  static let echoTrailing = ("x-grpc-test-echo-trailing-bin", [UInt8]([0xAB, 0xAB, 0xAB]))

  static func checkEcho(initial: Metadata, trailing: Metadata) throws {
    try check(initial.first(echoInitial.0) == echoInitial.1, "initial metadata [\(initial)]")
    try check(trailing.firstBytes(echoTrailing.0) == echoTrailing.1, "trailing metadata [\(trailing)]")
  }

  func customMetadata() async throws {
    var metadata = Metadata()
    metadata.add(Self.echoInitial.0, Self.echoInitial.1)
    metadata.add(Self.echoTrailing.0, bytes: Self.echoTrailing.1)
    let options = CallOptions(metadata: metadata)
    let unary = try await client.unary(
      Grpc_Testing_TestService.Method.UnaryCall.descriptor.fullPath, request: Self.largeRequest(),
      responseType: Grpc_Testing_SimpleResponse.self, options: options)
    try Self.checkZeros(unary.message.payload, 314_159)
    try Self.checkEcho(initial: unary.initialMetadata, trailing: unary.trailingMetadata)
    try await service.fullDuplexCall(options: options) { writer, responses in
      try await writer.write(Self.streamingRequest(responseSizes: [314_159], payloadSize: 271_828))
      writer.finish()
      var sizes: [Int] = []
      for try await r in responses { sizes.append(r.payload.body.count) }
      try Self.check(sizes == [314_159], "duplex response sizes \(sizes)")
      try Self.checkEcho(initial: try await responses.initialMetadata(), trailing: try await responses.trailingMetadata())
    }
  }

  func checkStatus(_ message: String, duplex: Bool) async throws {
    var status = Grpc_Testing_EchoStatus()
    status.code = 2
    status.message = message
    var request = Grpc_Testing_SimpleRequest()
    request.responseStatus = status
    try await Self.expectError(.unknown, message: message) { _ = try await service.unaryCall(request) }
    guard duplex else { return }
    var streaming = Grpc_Testing_StreamingOutputCallRequest()
    streaming.responseStatus = status
    try await Self.expectError(.unknown, message: message) {
      try await service.fullDuplexCall { writer, responses in
        try await writer.write(streaming)
        writer.finish()
        for try await _ in responses {}
      }
    }
  }

  func statusCodeAndMessage() async throws {
    try await checkStatus("test status message", duplex: true)
  }

  func specialStatusMessage() async throws {
    try await checkStatus("\t\ntest with whitespace\r\nand Unicode BMP \u{263A} and non-BMP \u{1F608}\t\n", duplex: false)
  }

  func unimplementedMethod() async throws {
    try await Self.expectError(.unimplemented) { _ = try await service.unimplementedCall(Grpc_Testing_Empty()) }
  }

  func unimplementedService() async throws {
    let other = Grpc_Testing_UnimplementedService.Client(client)
    try await Self.expectError(.unimplemented) { _ = try await other.unimplementedCall(Grpc_Testing_Empty()) }
  }
}
