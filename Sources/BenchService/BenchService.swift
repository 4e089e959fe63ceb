package import QuadProtobuf
package import QuadRPC
internal import GRPCWire

/// `bench.v1.Bench`, the transport benchmark's contract: `Unary` echoes `id` and `payload`;
/// `Stream` sends `count` messages of `payload_size` bytes.
package enum BenchService {
  /// A router serving both methods.
  package static func router() -> Router {
    var router = Router()
    router.registerUnary(Bench_V1_Bench.Method.Unary.descriptor.fullPath) { bytes, _ in
      let request = try decode(Bench_V1_Req.self, bytes)
      var response = Bench_V1_Resp()
      response.id = request.id
      response.payload = request.payload
      return response.serializedBytes()
    }
    router.registerServerStreaming(Bench_V1_Bench.Method.Stream.descriptor.fullPath) { bytes, _, writer in
      let request = try decode(Bench_V1_StreamReq.self, bytes)
      guard request.count >= 0, request.payloadSize >= 0, request.payloadSize <= 4 * 1024 * 1024 - 64 else {
        throw RPCError(code: .invalidArgument, message: "count and payload_size must be >= 0, payload_size < 4 MiB")
      }
      var response = Bench_V1_Resp()
      response.payload = [UInt8](repeating: 0x61, count: Int(request.payloadSize))
      for i in 0..<request.count {
        response.id = i
        try await writer.write(response.serializedBytes())
      }
    }
    return router
  }

  static func decode<M: QuadProtobuf.Message>(_ type: M.Type, _ bytes: [UInt8]) throws -> M {
    do {
      return try M(serializedBytes: bytes)
    } catch {
      throw RPCError(code: .invalidArgument, message: "cannot decode \(M.protoMessageName): \(error)")
    }
  }
}
