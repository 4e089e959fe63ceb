internal import Glibc
internal import NIOPosix

/// Runs a program to its end, without a shell and without handing it any of this process's
/// file descriptors but stdin from /dev/null and stdout/stderr into `log` (a daemon it starts,
/// like the postmaster, must not keep a pipe or lock of ours open).
enum Spawn {
  struct Failure: Error, CustomStringConvertible {
    let description: String
  }

  /// Exit status of `argv` (a full path first); waits on NIO's blocking thread pool.
  static func run(_ argv: [String], environment: [String], log: String) async throws -> Int32 {
    try await NIOThreadPool.singleton.runIfActive { try runBlocking(argv, environment: environment, log: log) }
  }

  static func runBlocking(_ argv: [String], environment: [String], log: String) throws -> Int32 {
    closeOnExec()
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o600)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    // Its own process group: a Ctrl-C meant for quad does not kill the server under it. No
    // signal blocked and every one at its default: the spawning thread may be a pool thread
    // with signals blocked, and a child inherits that mask.
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    posix_spawnattr_setpgroup(&attributes, 0)
    var none = sigset_t()
    sigemptyset(&none)
    posix_spawnattr_setsigmask(&attributes, &none)
    var all = sigset_t()
    sigfillset(&all)
    posix_spawnattr_setsigdefault(&attributes, &all)
    var pid: pid_t = 0
    let status = withCStrings(argv) { args in
      withCStrings(environment) { env in posix_spawn(&pid, argv[0], &actions, &attributes, args, env) }
    }
    guard status == 0 else {
      throw Failure(description: "could not start \(argv[0]): \(String(cString: strerror(status)))")
    }
    var wait: Int32 = 0
    while waitpid(pid, &wait, 0) == -1 && errno == EINTR {}
    // WIFEXITED / WEXITSTATUS, spelled out (macros do not reach Swift).
    if wait & 0x7F == 0 { return (wait >> 8) & 0xFF }
    return 128 + (wait & 0x7F)
  }

  /// Marks every descriptor above stderr close-on-exec (those quad opens are already; this
  /// catches what its own parent left open, a CI harness's pipe say), so no child inherits one.
  /// glibc's `posix_spawn_file_actions_addclosefrom_np` would do it per spawn, but Swift's
  /// Glibc module does not export it.
  static func closeOnExec() {
    guard let dir = opendir("/proc/self/fd") else { return }
    defer { closedir(dir) }
    let own = dirfd(dir)
    while let entry = readdir(dir) {
      guard let fd = Int32(entryName(entry)), fd > 2, fd != own else { continue }
      let flags = fcntl(fd, F_GETFD)
      if flags >= 0 && flags & FD_CLOEXEC == 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
    }
  }

  /// A `readdir` entry's file name.
  static func entryName(_ entry: UnsafeMutablePointer<dirent>) -> String {
    withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
  }

  private static func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer { for p in pointers { free(p) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
  }
}

extension Spawn {
  /// ``runBlocking(_:environment:log:)`` with output discarded; -1 when it could not start.
  static func runBlockingOrFail(_ argv: [String]) -> Int32 {
    (try? runBlocking(argv, environment: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"], log: "/dev/null")) ?? -1
  }
}
