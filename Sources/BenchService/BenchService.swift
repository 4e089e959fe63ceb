package import QuadRPC
internal import GRPCWire

/// `bench.v1.Bench` (../shared/bench/grpc/bench.proto) for `quad bench-server`: `Unary` echoes
/// the request's `id` and `payload`; `Stream` sends `count` messages of `payload_size` bytes.
package struct BenchService: Bench_V1_Bench.ServiceProtocol {
  package init() {}

  /// A router serving both methods.
  /// The descriptor of `bench.proto`, for server reflection.
  package static let protoFiles = [QuadFile_bench_v1_bench_proto.serializedDescriptor]

  package static func router() -> Router {
    var router = Router()
    BenchService().register(in: &router)
    return router
  }

  package func unary(_ request: Bench_V1_Req, context: ServerContext) async throws -> Bench_V1_Resp {
    var response = Bench_V1_Resp()
    response.id = request.id
    response.payload = request.payload
    return response
  }

  package func stream(_ request: Bench_V1_StreamReq, writer: ResponseStreamWriter<Bench_V1_Resp>, context: ServerContext) async throws {
    guard request.count >= 0, request.payloadSize >= 0, request.payloadSize <= 4 * 1024 * 1024 - 64 else {
      throw RPCError(code: .invalidArgument, message: "count and payload_size must be >= 0, payload_size < 4 MiB")
    }
    var response = Bench_V1_Resp()
    response.payload = [UInt8](repeating: 0x61, count: Int(request.payloadSize))
    for i in 0..<request.count {
      response.id = i
      try await writer.write(response)
    }
  }
}
