internal import GRPCWire
package import QuadRPC

/// `grpc.testing.TestService` as the gRPC interop test descriptions specify the server
/// (doc/interop-test-descriptions.md, "Server"): payloads of the requested sizes, requested
/// statuses and compression, and echoed `x-grpc-test-echo-initial` /
/// `x-grpc-test-echo-trailing-bin` metadata.
package struct InteropTestService: Grpc_Testing_TestService.ServiceProtocol {
  package init() {}

  /// A router serving the test service (`UnimplementedCall` is left UNIMPLEMENTED).
  /// The descriptors of the interop protos, for server reflection.
  package static let protoFiles = [
    QuadFile_src_proto_grpc_testing_empty_proto.serializedDescriptor,
    QuadFile_src_proto_grpc_testing_messages_proto.serializedDescriptor,
    QuadFile_src_proto_grpc_testing_test_proto.serializedDescriptor,
    QuadFile_quad_xds_update_health_proto.serializedDescriptor,
  ]

  package static func router() -> Router {
    var router = Router()
    InteropTestService().register(in: &router)
    return router
  }

  package func emptyCall(_ request: Grpc_Testing_Empty, context: ServerContext) async throws -> Grpc_Testing_Empty {
    Self.echoMetadata(context)
    return Grpc_Testing_Empty()
  }

  package func unaryCall(_ request: Grpc_Testing_SimpleRequest, context: ServerContext) async throws -> Grpc_Testing_SimpleResponse {
    Self.echoMetadata(context)
    if request.hasExpectCompressed {
      try Self.checkCompression(expected: request.expectCompressed.value, actual: context.requestCompressed)
    }
    if request.hasResponseStatus, request.responseStatus.code != 0 {
      throw Self.error(request.responseStatus)
    }
    if request.hasResponseCompressed {
      context.setCompression(request.responseCompressed.value)
    }
    var response = Grpc_Testing_SimpleResponse()
    response.payload = try Self.payload(size: request.responseSize)
    return response
  }

  package func cacheableUnaryCall(_ request: Grpc_Testing_SimpleRequest, context: ServerContext) async throws -> Grpc_Testing_SimpleResponse {
    try await unaryCall(request, context: context)
  }

  package func streamingOutputCall(
    _ request: Grpc_Testing_StreamingOutputCallRequest,
    writer: ResponseStreamWriter<Grpc_Testing_StreamingOutputCallResponse>,
    context: ServerContext
  ) async throws {
    Self.echoMetadata(context)
    try await Self.respond(to: request, writer: writer)
  }

  package func streamingInputCall(
    _ requests: RequestStream<Grpc_Testing_StreamingInputCallRequest>,
    context: ServerContext
  ) async throws -> Grpc_Testing_StreamingInputCallResponse {
    Self.echoMetadata(context)
    var total = 0
    for try await request in requests { total += request.payload.body.count }
    var response = Grpc_Testing_StreamingInputCallResponse()
    response.aggregatedPayloadSize = Int32(clamping: total)
    return response
  }

  package func fullDuplexCall(
    _ requests: RequestStream<Grpc_Testing_StreamingOutputCallRequest>,
    writer: ResponseStreamWriter<Grpc_Testing_StreamingOutputCallResponse>,
    context: ServerContext
  ) async throws {
    Self.echoMetadata(context)
    for try await request in requests {
      try await Self.respond(to: request, writer: writer)
    }
  }

  package func halfDuplexCall(
    _ requests: RequestStream<Grpc_Testing_StreamingOutputCallRequest>,
    writer: ResponseStreamWriter<Grpc_Testing_StreamingOutputCallResponse>,
    context: ServerContext
  ) async throws {
    Self.echoMetadata(context)
    var all: [Grpc_Testing_StreamingOutputCallRequest] = []
    for try await request in requests { all.append(request) }
    for request in all { try await Self.respond(to: request, writer: writer) }
  }

  package func unimplementedCall(_ request: Grpc_Testing_Empty, context: ServerContext) async throws -> Grpc_Testing_Empty {
    throw RPCError(code: .unimplemented, message: "UnimplementedCall is not implemented, on purpose")
  }

  // MARK: Rules shared by the methods

  /// Payloads are capped so a request cannot make the server allocate without bound (the
  /// interop cases ask for at most 314,159 bytes).
  static let maximumPayload = 4 * 1024 * 1024 - 64

  static func payload(size: Int32) throws -> Grpc_Testing_Payload {
    guard size >= 0, Int(size) <= maximumPayload else {
      throw RPCError(code: .invalidArgument, message: "payload size \(size) is outside 0...\(maximumPayload)")
    }
    var payload = Grpc_Testing_Payload()
    payload.type = .compressable
    payload.body = [UInt8](repeating: 0, count: Int(size))
    return payload
  }

  static func respond(
    to request: Grpc_Testing_StreamingOutputCallRequest,
    writer: ResponseStreamWriter<Grpc_Testing_StreamingOutputCallResponse>
  ) async throws {
    if request.hasResponseStatus, request.responseStatus.code != 0 {
      throw error(request.responseStatus)
    }
    for parameters in request.responseParameters {
      if parameters.intervalUs > 0 {
        try await Task.sleep(for: .microseconds(Int(parameters.intervalUs)))
      }
      var response = Grpc_Testing_StreamingOutputCallResponse()
      response.payload = try payload(size: parameters.size)
      try await writer.write(response, compressed: parameters.hasCompressed ? parameters.compressed.value : nil)
    }
  }

  static func checkCompression(expected: Bool, actual: Bool) throws {
    guard expected == actual else {
      throw RPCError(
        code: .invalidArgument,
        message: expected ? "expected a compressed request" : "expected an uncompressed request")
    }
  }

  static func error(_ status: Grpc_Testing_EchoStatus) -> RPCError {
    RPCError(code: GRPCStatus.Code(rawValue: Int(status.code)) ?? .unknown, message: status.message)
  }

  static func echoMetadata(_ context: ServerContext) {
    if let initial = context.metadata.first("x-grpc-test-echo-initial") {
      var m = Metadata()
      m.add("x-grpc-test-echo-initial", initial)
      context.addInitialMetadata(m)
    }
    if let trailing = context.metadata.firstBytes("x-grpc-test-echo-trailing-bin") {
      var m = Metadata()
      m.add("x-grpc-test-echo-trailing-bin", bytes: trailing)
      context.addTrailingMetadata(m)
    }
  }
}
