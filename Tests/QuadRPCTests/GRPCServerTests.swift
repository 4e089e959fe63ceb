internal import Foundation
internal import GRPCWire
@testable internal import QuadRPC
internal import Testing

/// The Quad server answering a real grpcio (C core) client over loopback.
@Suite("gRPC server with a grpcio client")
struct GRPCServerTests {
  static func router() -> Router {
    var r = Router()
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

  @Test("Unary calls, metadata, errors, deadlines, size limits, gzip, 400 concurrent calls, bad prefaces")
  func grpcioClient() async throws {
    let server = try await GRPCServer.start(router: Self.router(), host: "127.0.0.1", port: 0)
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("python/unary_client.py").path
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", script, String(server.port)]
    let out = Pipe()
    p.standardOutput = out
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    try await server.stop()
    let lines = String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
    var results: [String: String] = [:]
    for l in lines {
      let parts = l.split(separator: " ", maxSplits: 1).map(String.init)
      results[parts[0]] = parts.count > 1 ? parts[1] : ""
    }
    #expect(p.terminationStatus == 0, "\(lines)")
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
    // Bad prefaces: the server answers with SETTINGS + GOAWAY and closes, and keeps serving others.
    #expect(results["garbage"]?.hasPrefix("closed") == true, "\(results)")
    #expect(results["http1"]?.hasPrefix("closed") == true, "\(results)")
  }
}
