internal import Dispatch
public import Foundation
internal import Glibc

/// The repository's root (for scripts and protos the tests use).
public let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
  .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Runs a command to completion on a thread of its own, never on the cooperative pool or Dispatch's
/// (whose few threads must stay free for handler tasks and name lookups), and returns its exit
/// status and standard output (standard error goes where the tests' goes).
///
/// A command still running after `seconds` is killed and the call throws: a peer that hangs
/// fails its test instead of the whole run.
public func runProcess(_ arguments: [String], seconds: Double = 600) async throws -> (status: Int32, output: String) {
  try await withCheckedThrowingContinuation { continuation in
    Thread.detachNewThread {
      do {
        let child = try Child(arguments, input: false)
        let deadline = Child.now() + seconds
        let output = child.readAll(until: deadline)
        guard let status = child.wait(until: deadline) else {
          child.forceExit()
          throw Child.Failure(description: "\(arguments.joined(separator: " ")) did not finish in \(Int(seconds)) s (killed); its output so far: \(String(decoding: output.suffix(2_000), as: UTF8.self))")
        }
        continuation.resume(returning: (status, String(decoding: output, as: UTF8.self)))
      } catch {
        continuation.resume(throwing: error)
      }
    }
  }
}

/// Runs a command to completion on the calling thread (for synchronous tests; keep it short:
/// the thread is blocked meanwhile), in `directory` if given, and returns its exit status and
/// standard output. Foundation's `Process` is not used: it can leave an exited child unreaped
/// and wait forever, and a blocked synchronous test holds one of the few cooperative threads.
public func runProcessBlocking(_ arguments: [String], in directory: URL? = nil, seconds: Double = 300) throws -> (status: Int32, output: String) {
  let command = directory.map { ["sh", "-c", "cd \"$0\" && exec \"$@\"", $0.path] + arguments } ?? arguments
  let child = try Child(command, input: false)
  let deadline = Child.now() + seconds
  let output = child.readAll(until: deadline)
  guard let status = child.wait(until: deadline) else {
    child.forceExit()
    throw Child.Failure(description: "\(arguments.joined(separator: " ")) did not finish in \(Int(seconds)) s (killed)")
  }
  return (status, String(decoding: output, as: UTF8.self))
}

/// glibc's pipe2 (hidden from Swift behind _GNU_SOURCE): both ends close-on-exec from the
/// start, so no child spawned meanwhile by another thread inherits them.
@_silgen_name("pipe2")
private func pipe2(_ fds: UnsafeMutablePointer<Int32>, _ flags: Int32) -> Int32

/// glibc's posix_spawn_file_actions_addclosefrom_np (2.34+; hidden from Swift behind
/// _GNU_SOURCE): the child closes every descriptor from `from` up.
@_silgen_name("posix_spawn_file_actions_addclosefrom_np")
private func addCloseFrom(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ from: Int32) -> Int32

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
    // Nothing else of this process: SwiftNIO's sockets are not close-on-exec, and a child that
    // kept one (a server running for minutes) would keep a closed connection open for its peer.
    _ = addCloseFrom(&actions, 3)
    let argv = ["/usr/bin/env"] + arguments
    var pid: pid_t = 0
    let cArgs = argv.map { strdup($0) } + [nil]
    defer { for a in cArgs { free(a) } }
    // No signal blocked and every one at its default: the spawning thread descends from a pool
    // thread with signals blocked, and a child inherits the mask (a SIGTERM would never land).
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    var none = sigset_t()
    sigemptyset(&none)
    posix_spawnattr_setsigmask(&attributes, &none)
    var all = sigset_t()
    sigfillset(&all)
    posix_spawnattr_setsigdefault(&attributes, &all)
    let spawned = cArgs.withUnsafeBufferPointer { args in
      posix_spawn(&pid, argv[0], &actions, &attributes, UnsafeMutablePointer(mutating: args.baseAddress!), environ)
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

  /// Seconds on the monotonic clock.
  static func now() -> Double {
    Double(DispatchTime.now().uptimeNanoseconds) / 1e9
  }

  /// Waits until its output is readable (or closed): false when `deadline` passed first.
  private func readable(until deadline: Double) -> Bool {
    while true {
      let left = deadline - Self.now()
      if left <= 0 { return false }
      var fds = pollfd(fd: output, events: Int16(POLLIN), revents: 0)
      let n = poll(&fds, 1, Int32(min(left, 1) * 1000) + 1)
      if n > 0 { return true }
      if n < 0 && errno != EINTR { return true }
    }
  }

  /// Reads its output to the end, or until `deadline` (and closes our end).
  func readAll(until deadline: Double = .infinity) -> [UInt8] {
    var data: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while readable(until: deadline) {
      let n = buffer.withUnsafeMutableBytes { read(output, $0.baseAddress, $0.count) }
      if n < 0 && errno == EINTR { continue }
      if n <= 0 { break }
      data += buffer[0..<n]
    }
    close(output)
    return data
  }

  /// Reads one line of its output (without the newline), leaving the rest unread; nil when
  /// `deadline` passed first.
  func readLine(until deadline: Double) -> String? {
    var line: [UInt8] = []
    var byte: UInt8 = 0
    while true {
      guard readable(until: deadline) else { return nil }
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
    wait(until: .infinity)!
  }

  /// Waits for it to exit until `deadline`: its exit status (or the signal that ended it), nil
  /// if it is still running then.
  func wait(until deadline: Double) -> Int32? {
    if let known = recorded() { return known }
    var raw: Int32 = 0
    while true {
      let reaped = waitpid(pid, &raw, deadline == .infinity ? 0 : WNOHANG)
      if reaped == pid { break }
      if reaped == -1 && errno == EINTR { continue }
      if reaped == -1 {
        // Reaped by another thread's wait, which records its status next.
        usleep(10_000)
        return recorded() ?? -1
      }
      if Self.now() >= deadline { return nil }
      usleep(10_000)
    }
    // WIFEXITED / WEXITSTATUS / WTERMSIG, spelled out (macros do not reach Swift).
    let result = raw & 0x7F == 0 ? (raw >> 8) & 0xFF : raw & 0x7F
    lock.lock()
    status = result
    lock.unlock()
    return result
  }

  private func recorded() -> Int32? {
    lock.lock()
    defer { lock.unlock() }
    return status
  }

  /// Kills it (SIGKILL) and reaps it.
  func forceExit() {
    if recorded() == nil { _ = Glibc.kill(pid, SIGKILL) }
    wait()
  }

  /// Waits up to `seconds` for it to exit, then kills it: false when it had to be killed.
  @discardableResult
  func waitOrKill(seconds: Double) -> Bool {
    if wait(until: Self.now() + seconds) != nil { return true }
    FileHandle.standardError.write(Data("test process \(pid) did not exit in \(Int(seconds)) s: killed\n".utf8))
    forceExit()
    return false
  }

  var terminationStatus: Int32 { recorded() ?? -1 }
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
          guard let line = child.readLine(until: Child.now() + 180) else {
            child.forceExit()
            throw Child.Failure(description: "\(arguments.joined(separator: " ")) printed nothing in 180 s (killed)")
          }
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
        if self.child.terminationStatus == -1 { _ = Glibc.kill(self.child.pid, signal) }
        self.child.waitOrKill(seconds: 120)
        self.child.closeInput()
        c.resume()
      }
    }
  }

  /// Waits up to `seconds` for it to exit by itself: how it ended (its exit status or the
  /// signal that ended it), or nil when it still runs.
  public func waitForExit(seconds: Double) async -> Int32? {
    await withCheckedContinuation { (c: CheckedContinuation<Int32?, Never>) in
      Thread.detachNewThread { c.resume(returning: self.child.wait(until: Child.now() + seconds)) }
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
        self.child.waitOrKill(seconds: 120)
        c.resume()
      }
    }
  }
}

/// `quad serve` (the debug build) started for a test: the process and the port it serves on.
public enum QuadServe {
  public static let executable = repositoryRoot.appendingPathComponent(".build/debug/quad").path

  public struct NotStarted: Error, CustomStringConvertible {
    public let description: String
  }

  /// Starts `quad serve --port 0 --metrics-port 0` with `arguments`, its standard error
  /// appended to `log`, and `environment` (NAME=value) set; waits for its ready line.
  public static func start(_ arguments: [String], log: String, environment: [String] = []) async throws -> (process: BackgroundProcess, port: Int) {
    let script = "exec env \(environment.map { "'\($0)'" }.joined(separator: " ")) \"$@\" 2>>'\(log)'"
    let server = try await BackgroundProcess.start(["sh", "-c", script, "quad", executable, "serve", "--port", "0", "--metrics-port", "0"] + arguments)
    guard server.firstLine.hasPrefix("quad serve: serving"), let port = server.firstLine.split(separator: ":").last.flatMap({ Int($0) }) else {
      throw NotStarted(description: "quad serve did not start: \(server.firstLine)")
    }
    return (server, port)
  }
}
