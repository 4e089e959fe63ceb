internal import Dispatch
public import Foundation
internal import Glibc

/// The repository's root (for scripts and protos the tests use).
public let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
  .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Runs a command to completion on a thread of its own, never on the cooperative pool or Dispatch's
/// (whose few threads must stay free for handler tasks and name lookups), and returns its exit
/// status and output.
public func runProcess(_ arguments: [String]) async throws -> (status: Int32, output: String) {
  try await withCheckedThrowingContinuation { continuation in
    Thread.detachNewThread {
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

/// A background process started for a test (a peer server): it runs until ``stop()`` closes its
/// standard input and waits for it.
public final class BackgroundProcess: @unchecked Sendable {
  private let process: Process
  private let stdin: Pipe
  /// The first line it printed (servers print their port when ready).
  public let firstLine: String

  private init(process: Process, stdin: Pipe, firstLine: String) {
    self.process = process
    self.stdin = stdin
    self.firstLine = firstLine
  }

  /// Starts `arguments` and waits (on a thread of its own) for its first line of output.
  public static func start(_ arguments: [String]) async throws -> BackgroundProcess {
    try await withCheckedThrowingContinuation { continuation in
      Thread.detachNewThread {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = arguments
        let input = Pipe()
        let out = Pipe()
        p.standardInput = input
        p.standardOutput = out
        do {
          try p.run()
        } catch {
          continuation.resume(throwing: error)
          return
        }
        var line: [UInt8] = []
        let handle = out.fileHandleForReading
        while true {
          let byte = handle.readData(ofLength: 1)
          guard let b = byte.first, b != UInt8(ascii: "\n") else { break }
          line.append(b)
        }
        continuation.resume(returning: BackgroundProcess(process: p, stdin: input, firstLine: String(decoding: line, as: UTF8.self)))
      }
    }
  }

  /// Terminates it (SIGTERM) and waits for it to exit.
  public func kill() async {
    await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
      Thread.detachNewThread {
        self.process.terminate()
        self.process.waitUntilExit()
        c.resume()
      }
    }
  }

  /// Sends `signal` (SIGKILL: a crash) and waits for it to exit.
  public func kill(signal: Int32) async {
    await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
      Thread.detachNewThread {
        _ = Glibc.kill(self.process.processIdentifier, signal)
        self.process.waitUntilExit()
        c.resume()
      }
    }
  }

  /// Its process id.
  public var pid: Int32 { process.processIdentifier }

  /// How it ended: its exit status (or the signal that ended it).
  public var terminationStatus: Int32 { process.terminationStatus }

  /// Closes its input and waits for it to exit.
  public func stop() async {
    await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
      Thread.detachNewThread {
        try? self.stdin.fileHandleForWriting.close()
        self.process.waitUntilExit()
        c.resume()
      }
    }
  }
}
