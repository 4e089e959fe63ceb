internal import Dispatch
public import Foundation
internal import Glibc

/// The repository's root (for scripts and protos the tests use).
public let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
  .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Runs a command to completion on a thread of its own, never on the cooperative pool or Dispatch's
/// (whose few threads must stay free for handler tasks and name lookups), and returns its exit
/// status and standard output (standard error goes where the tests' goes).
public func runProcess(_ arguments: [String]) async throws -> (status: Int32, output: String) {
  try await withCheckedThrowingContinuation { continuation in
    Thread.detachNewThread {
      do {
        let child = try Child(arguments, input: false)
        let output = child.readAll()
        continuation.resume(returning: (child.wait(), String(decoding: output, as: UTF8.self)))
      } catch {
        continuation.resume(throwing: error)
      }
    }
  }
}

/// glibc's pipe2 (hidden from Swift behind _GNU_SOURCE): both ends close-on-exec from the
/// start, so no child spawned meanwhile by another thread inherits them.
@_silgen_name("pipe2")
private func pipe2(_ fds: UnsafeMutablePointer<Int32>, _ flags: Int32) -> Int32

/// A child process started with posix_spawn and reaped with waitpid. Not Foundation's
/// `Process`: with many children at once its reaper misses exits, and `waitUntilExit` waits
/// forever on a zombie.
final class Child: @unchecked Sendable {
  struct Failure: Error, CustomStringConvertible { let description: String }

  let pid: pid_t
  /// Our ends of its standard input (-1 without) and output.
  private(set) var input: Int32
  let output: Int32
  private let lock = NSLock()
  private var status: Int32?

  /// Starts `arguments` (looked up in PATH by /usr/bin/env) with its output on a pipe, and its
  /// input on a pipe when `input` (else /dev/null).
  init(_ arguments: [String], input withInput: Bool) throws {
    var out: [Int32] = [0, 0]
    var inp: [Int32] = [-1, -1]
    guard pipe2(&out, O_CLOEXEC) == 0 else { throw Failure(description: "pipe: \(String(cString: strerror(errno)))") }
    if withInput, pipe2(&inp, O_CLOEXEC) != 0 {
      close(out[0])
      close(out[1])
      throw Failure(description: "pipe: \(String(cString: strerror(errno)))")
    }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    if withInput {
      posix_spawn_file_actions_adddup2(&actions, inp[0], 0)
    } else {
      posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    }
    posix_spawn_file_actions_adddup2(&actions, out[1], 1)
    let argv = ["/usr/bin/env"] + arguments
    var pid: pid_t = 0
    let cArgs = argv.map { strdup($0) } + [nil]
    defer { for a in cArgs { free(a) } }
    let spawned = cArgs.withUnsafeBufferPointer { args in
      posix_spawn(&pid, argv[0], &actions, nil, UnsafeMutablePointer(mutating: args.baseAddress!), environ)
    }
    close(out[1])
    if withInput { close(inp[0]) }
    guard spawned == 0 else {
      close(out[0])
      if withInput { close(inp[1]) }
      throw Failure(description: "could not start \(arguments.first ?? ""): \(String(cString: strerror(spawned)))")
    }
    self.pid = pid
    self.input = withInput ? inp[1] : -1
    self.output = out[0]
  }

  /// Reads its output to the end (and closes our end).
  func readAll() -> [UInt8] {
    var data: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while true {
      let n = buffer.withUnsafeMutableBytes { read(output, $0.baseAddress, $0.count) }
      if n < 0 && errno == EINTR { continue }
      if n <= 0 { break }
      data += buffer[0..<n]
    }
    close(output)
    return data
  }

  /// Reads one line of its output (without the newline), leaving the rest unread.
  func readLine() -> String {
    var line: [UInt8] = []
    var byte: UInt8 = 0
    while true {
      let n = read(output, &byte, 1)
      if n < 0 && errno == EINTR { continue }
      if n <= 0 || byte == UInt8(ascii: "\n") { break }
      line.append(byte)
    }
    return String(decoding: line, as: UTF8.self)
  }

  func closeInput() {
    lock.lock()
    defer { lock.unlock() }
    if input >= 0 {
      close(input)
      input = -1
    }
  }

  /// Waits for it to exit: its exit status, or the number of the signal that ended it.
  @discardableResult
  func wait() -> Int32 {
    lock.lock()
    if let status {
      lock.unlock()
      return status
    }
    lock.unlock()
    var raw: Int32 = 0
    while waitpid(pid, &raw, 0) == -1 && errno == EINTR {}
    // WIFEXITED / WEXITSTATUS / WTERMSIG, spelled out (macros do not reach Swift).
    let result = raw & 0x7F == 0 ? (raw >> 8) & 0xFF : raw & 0x7F
    lock.lock()
    status = result
    lock.unlock()
    return result
  }

  var terminationStatus: Int32 {
    lock.lock()
    defer { lock.unlock() }
    return status ?? -1
  }
}

/// A background process started for a test (a peer server): it runs until ``stop()`` closes its
/// standard input and waits for it.
public final class BackgroundProcess: @unchecked Sendable {
  private let child: Child
  /// The first line it printed (servers print their port when ready).
  public let firstLine: String

  private init(child: Child, firstLine: String) {
    self.child = child
    self.firstLine = firstLine
  }

  /// Starts `arguments` and waits (on a thread of its own) for its first line of output; the
  /// rest of its output is drained so it never blocks writing.
  public static func start(_ arguments: [String]) async throws -> BackgroundProcess {
    try await withCheckedThrowingContinuation { continuation in
      Thread.detachNewThread {
        do {
          let child = try Child(arguments, input: true)
          let line = child.readLine()
          Thread.detachNewThread { _ = child.readAll() }
          continuation.resume(returning: BackgroundProcess(child: child, firstLine: line))
        } catch {
          continuation.resume(throwing: error)
        }
      }
    }
  }

  /// Terminates it (SIGTERM) and waits for it to exit.
  public func kill() async {
    await kill(signal: SIGTERM)
  }

  /// Sends `signal` (SIGKILL: a crash) and waits for it to exit.
  public func kill(signal: Int32) async {
    await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
      Thread.detachNewThread {
        _ = Glibc.kill(self.child.pid, signal)
        self.child.wait()
        self.child.closeInput()
        c.resume()
      }
    }
  }

  /// Its process id.
  public var pid: Int32 { child.pid }

  /// How it ended: its exit status (or the signal that ended it).
  public var terminationStatus: Int32 { child.terminationStatus }

  /// Closes its input and waits for it to exit.
  public func stop() async {
    await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
      Thread.detachNewThread {
        self.child.closeInput()
        self.child.wait()
        c.resume()
      }
    }
  }
}
