internal import Foundation
internal import GRPCWire
@testable internal import QuadRPC
internal import Synchronization
internal import Testing
internal import TestSupport

/// What the endless handler saw, shared with the test.
final class EndlessProbe: Sendable {
  let written = Mutex(0)
  let cancelled = Mutex(false)
}

/// The Quad server answering a real grpcio (C core) client over loopback.
@Suite("gRPC server with a grpcio client")
struct GRPCServerTests {
  static func router(_ probe: EndlessProbe) -> Router {
    var r = Router()
    r.registerServerStreaming("/quad.test.v1.Echo/Count") { request, _, writer in
      let n = request.count == 4 ? Int(request[0]) << 24 | Int(request[1]) << 16 | Int(request[2]) << 8 | Int(request[3]) : 0
      for i in 0..<n {
        var m = [UInt8](repeating: 0, count: 100)
        m[0] = UInt8(i >> 24 & 255); m[1] = UInt8(i >> 16 & 255); m[2] = UInt8(i >> 8 & 255); m[3] = UInt8(i & 255)
        try await writer.write(m)
      }
    }
    r.registerServerStreaming("/quad.test.v1.Echo/StreamFail") { _, _, writer in
      for _ in 0..<3 { try await writer.write([1]) }
      throw RPCError(code: .aborted, message: "conflict")
    }
    r.registerServerStreaming("/quad.test.v1.Echo/Endless") { _, _, writer in
      do {
        while true {
          try await writer.write([UInt8](repeating: 9, count: 1024))
          probe.written.withLock { $0 += 1 }
        }
      } catch {
        probe.cancelled.withLock { $0 = true }
        throw error
      }
    }
    r.registerUnary("/quad.test.v1.Echo/Say") { request, _ in request }
    r.registerUnary("/quad.test.v1.Echo/Metadata") { _, context in
      // Reply with what arrived: key=value pairs, -bin values as hex.
      let text = context.metadata.map { key, value -> String in
        switch value {
        case .text(let s): return "\(key)=\(s)"
        case .binary(let b): return "\(key)=" + b.map { String(format: "%02x", $0) }.joined()
        }
      }.joined(separator: ";")
      return Array(text.utf8)
    }
    r.registerUnary("/quad.test.v1.Echo/Fail") { _, _ in
      throw RPCError(code: .notFound, message: "student 42\nnot found ☹")
    }
    r.registerUnary("/quad.test.v1.Echo/Crash") { _, _ in
      struct Secret: Error { let password = "hunter2" }
      throw Secret()
    }
    r.registerUnary("/quad.test.v1.Echo/Slow") { _, _ in
      try await Task.sleep(for: .seconds(5))
      return []
    }
    return r
  }

  @Test("Unary calls, metadata, errors, deadlines, size limits, gzip, 400 concurrent calls, bad prefaces, server streaming")
  func grpcioClient() async throws {
    let probe = EndlessProbe()
    let server = try await GRPCServer.start(router: Self.router(probe), host: "127.0.0.1", port: 0)
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("python/unary_client.py").path
    let (status, output) = try await runProcess(["python3", script, String(server.port)])
    try await Task.sleep(for: .milliseconds(200))
    try await server.stop()
    let lines = output.split(separator: "\n").map(String.init)
    var results: [String: String] = [:]
    for l in lines {
      let parts = l.split(separator: " ", maxSplits: 1).map(String.init)
      results[parts[0]] = parts.count > 1 ? parts[1] : ""
    }
    #expect(status == 0, "\(lines)")
    #expect(results["echo"]?.hasPrefix("OK 68656c6c6f") == true, "\(results)")
    #expect(results["empty"]?.hasPrefix("OK ") == true)
    #expect(results["metadata"]?.hasPrefix("OK " + Array("x-user=ada;x-blob-bin=00ff".utf8).map { String(format: "%02x", $0) }.joined()) == true, "\(results)")
    #expect(results["unimplemented"] == "UNIMPLEMENTED Method not found: /quad.test.v1.Echo/Missing")
    #expect(results["unknown_service"]?.hasPrefix("UNIMPLEMENTED") == true)
    #expect(results["status"] == "NOT_FOUND student 42\\nnot found ☹")
    #expect(results["leak"] == "UNKNOWN handler failed")
    #expect(results["deadline"]?.hasPrefix("DEADLINE_EXCEEDED") == true)
    #expect(results["large"] == "OK")
    #expect(results["too_large"]?.hasPrefix("RESOURCE_EXHAUSTED") == true, "\(results)")
    #expect(results["gzip"] == "OK 10000", "\(results)")
    #expect(results["concurrent"] == "400")
    // Server streaming: order, an error after messages, and a client that stops reading.
    #expect(results["stream"] == "OK 10000 ordered", "\(results)")
    #expect(results["stream_fail"] == "ABORTED 3", "\(results)")
    #expect(results["stream_cancel"]?.hasPrefix("CANCELLED 10") == true || results["stream_cancel"] == "OK 10", "\(results)")
    #expect(probe.cancelled.withLock { $0 }, "the endless handler saw the cancellation")
    let written = probe.written.withLock { $0 }
    print("endless stream: \(written) messages of 1 KiB written before the client cancelled")
    #expect(written < 20_000, "writes stopped by back-pressure: \(written) KiB written")
    // Bad prefaces: the server answers with SETTINGS + GOAWAY and closes, and keeps serving others.
    #expect(results["garbage"]?.hasPrefix("closed") == true, "\(results)")
    #expect(results["http1"]?.hasPrefix("closed") == true, "\(results)")
  }
}
