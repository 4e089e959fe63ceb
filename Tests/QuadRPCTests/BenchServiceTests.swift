internal import BenchService
internal import Foundation
internal import QuadProtobuf
@testable internal import QuadRPC
internal import Testing
internal import TestSupport

/// bench.v1.Bench as `quad bench-server` serves it, called by grpcio with its own messages.
@Suite("bench.v1.Bench service")
struct BenchServiceTests {
  @Test("Unary echoes id and payload; Stream sends count messages of payload_size; an unparseable request is INTERNAL, a negative count INVALID_ARGUMENT")
  func bench() async throws {
    let server = try await GRPCServer.start(router: BenchService.router(), host: "127.0.0.1", port: 0)
    let (_, text) = try await runProcess(["python3", "-c", """
      import sys, grpc
      ch = grpc.insecure_channel("127.0.0.1:" + sys.argv[1])
      def varint(n):
          out = b""
          while True:
              b = n & 0x7F; n >>= 7
              if n: out += bytes([b | 0x80])
              else: return out + bytes([b])
      req = b"\\x08" + varint(42) + b"\\x12" + varint(5) + b"hello"     # Req{id: 42, payload: "hello"}
      print("unary", ch.unary_unary("/bench.v1.Bench/Unary")(req) == req)
      sreq = b"\\x08" + varint(1000) + b"\\x10" + varint(100)        # StreamReq{count: 1000, payload_size: 100}
      msgs = list(ch.unary_stream("/bench.v1.Bench/Stream")(sreq))
      print("stream", len(msgs), all(m.endswith(b"a" * 100) and m[0] in (0x12, 0x08) for m in msgs))
      try:
          ch.unary_unary("/bench.v1.Bench/Unary")(b"\\xff\\xff")
      except grpc.RpcError as e:
          print("bad", e.code().name)
      try:
          list(ch.unary_stream("/bench.v1.Bench/Stream")(b"\\x08" + b"\\xff" * 9 + b"\\x01"))  # count: -1
      except grpc.RpcError as e:
          print("negative", e.code().name)
      """, String(server.port)])
    try await server.stop()
    #expect(text.contains("unary True"), "\(text)")
    #expect(text.contains("stream 1000 True"), "\(text)")
    #expect(text.contains("bad INTERNAL"), "\(text)")
    #expect(text.contains("negative INVALID_ARGUMENT"), "\(text)")
  }
}
