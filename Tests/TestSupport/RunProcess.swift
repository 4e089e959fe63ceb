internal import Dispatch
public import Foundation

/// The repository's root (for scripts and protos the tests use).
public let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
  .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Runs a command to completion on a Dispatch thread, never on the cooperative pool (whose few
/// threads must stay free for the server's handler tasks), and returns its exit status and output.
public func runProcess(_ arguments: [String]) async throws -> (status: Int32, output: String) {
  try await withCheckedThrowingContinuation { continuation in
    DispatchQueue.global().async {
      let p = Process()
      p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
      p.arguments = arguments
      let out = Pipe()
      p.standardOutput = out
      do {
        try p.run()
      } catch {
        continuation.resume(throwing: error)
        return
      }
      let data = out.fileHandleForReading.readDataToEndOfFile()
      p.waitUntilExit()
      continuation.resume(returning: (p.terminationStatus, String(decoding: data, as: UTF8.self)))
    }
  }
}
