internal import Glibc

/// A private PostgreSQL cluster that `quad serve` runs when it is given no database URL: created
/// with `initdb` in a data folder on first start, reused after, served on a Unix socket only,
/// stopped cleanly on shutdown.
///
/// As root it runs the server as an unprivileged user (PostgreSQL refuses root): Debian's
/// `postgres`, or a `quad` system user it creates. When that user cannot reach the data folder
/// (a checkout under `/root`), the cluster goes to `/var/lib/quad/` instead, and ``notes`` says
/// so. A `postmaster.pid` left by a crash is recognised and removed; a server left running by a
/// killed `quad` is reused.
package final class EmbeddedPostgres: Sendable {
  /// What went wrong starting or stopping the cluster, in words an operator can act on.
  package struct Failure: Error, CustomStringConvertible {
    package let description: String
  }

  /// The cluster's own folder (`PGDATA`).
  package let clusterDirectory: String
  /// The folder holding the server's Unix socket.
  package let socketDirectory: String
  /// The server's log.
  package let logFile: String
  /// libpq connection string for database `postgres` as user `postgres`.
  package var conninfo: String { "host=\(socketDirectory) port=\(Self.port) user=postgres dbname=postgres" }
  /// What start-up decided that an operator should know (where the cluster is, what was
  /// recovered).
  package let notes: [String]
  /// Whether this start found the server already running (left by another quad, or serving
  /// one now): a short-lived command leaves such a server running.
  package let wasRunning: Bool

  private let binaries: String
  private let runAs: (uid: uid_t, gid: gid_t, name: String)?

  static let port = 5432

  private init(clusterDirectory: String, socketDirectory: String, binaries: String, runAs: (uid_t, gid_t, String)?, notes: [String], wasRunning: Bool = false) {
    self.wasRunning = wasRunning
    self.clusterDirectory = clusterDirectory
    self.socketDirectory = socketDirectory
    self.logFile = clusterDirectory + ".log"
    self.binaries = binaries
    self.runAs = runAs.map { (uid: $0.0, gid: $0.1, name: $0.2) }
    self.notes = notes
  }

  /// Creates (first time) or reuses the cluster for `dataDirectory` and starts it, returning
  /// once it accepts connections.
  ///
  /// - Throws: ``Failure`` naming what is missing (the PostgreSQL binaries, permissions) or
  ///   quoting the server's log.
  package static func start(dataDirectory: String) async throws -> EmbeddedPostgres {
    var notes: [String] = []
    let binaries = try findBinaries()
    let runAs = try geteuid() == 0 ? unprivilegedUser(notes: &notes) : nil
    let data = absolute(dataDirectory)
    try makeDirectories(data, mode: 0o755)
    var cluster = data + "/postgres"
    if let runAs, let blocker = firstUnreachable(cluster, uid: runAs.0, gid: runAs.1) {
      let elsewhere = "/var/lib/quad/" + safeName(data)
      notes.append("user \(runAs.2) cannot reach \(blocker) (its permissions shut it out), so the PostgreSQL cluster for \(data) lives in \(elsewhere)")
      try makeDirectories("/var/lib/quad", mode: 0o755)
      cluster = elsewhere
    }
    // A Unix socket path is at most 107 bytes: a deep folder gets its socket under /tmp.
    var socket = cluster
    if (socket + "/.s.PGSQL.\(port)").utf8.count > 100 {
      socket = "/tmp/quad-pg-" + String(fnv(cluster), radix: 16)
      notes.append("the socket path under \(cluster) would be too long; the socket is in \(socket)")
    }
    for dir in [cluster, socket] {
      try makeDirectories(dir, mode: 0o700)
      if let runAs { chown(dir, runAs.0, runAs.1) }
    }
    let pg = EmbeddedPostgres(clusterDirectory: cluster, socketDirectory: socket, binaries: binaries, runAs: runAs, notes: notes)
    try await pg.initializeIfNeeded()
    let (note, wasRunning) = try await pg.startServer()
    return EmbeddedPostgres(
      clusterDirectory: cluster, socketDirectory: socket, binaries: binaries, runAs: runAs, notes: notes + (note.map { [$0] } ?? []),
      wasRunning: wasRunning)
  }

  /// Stops the server (fast shutdown: open sessions are ended, committed work is kept).
  package func stop() async throws {
    let status = try await run(["pg_ctl", "-D", clusterDirectory, "-m", "fast", "-w", "-t", "60", "stop"])
    guard status == 0 else { throw Failure(description: "pg_ctl stop failed (exit \(status)); see \(logFile)") }
  }

  // MARK: Steps

  private func initializeIfNeeded() async throws {
    guard access(clusterDirectory + "/PG_VERSION", F_OK) != 0 else { return }
    let status = try await run([
      "initdb", "-D", clusterDirectory, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-instructions",
    ])
    guard status == 0 else {
      throw Failure(description: "initdb failed (exit \(status)) in \(clusterDirectory):\n\(tail(logFile))")
    }
  }

  /// Starts the server; returns what it recovered from, if anything.
  private func startServer() async throws -> (note: String?, wasRunning: Bool) {
    var recovered: String?
    if let pid = Self.postmasterPID(clusterDirectory) {
      if Self.isPostgres(pid) {
        // Left running by a quad that was killed, or serving one now: ours, and usable.
        return ("reusing the PostgreSQL server (PID \(pid)) already running on \(clusterDirectory)", true)
      }
      recovered = "removed the postmaster.pid a crashed run left in \(clusterDirectory) (its PID \(pid) is no PostgreSQL server now)"
      // A crash left the file behind and the PID now belongs to another process (or none).
      unlink(clusterDirectory + "/postmaster.pid")
      unlink(socketDirectory + "/.s.PGSQL.\(Self.port).lock")
      unlink(socketDirectory + "/.s.PGSQL.\(Self.port)")
    }
    let options = "-c listen_addresses='' -c unix_socket_directories='\(socketDirectory)' -p \(Self.port)"
    let status = try await run(["pg_ctl", "-D", clusterDirectory, "-l", logFile, "-w", "-t", "60", "-o", options, "start"])
    guard status == 0 else {
      throw Failure(description: "PostgreSQL did not start (pg_ctl exit \(status)); its log \(logFile) ends:\n\(tail(logFile))")
    }
    return (recovered, false)
  }

  /// Runs a PostgreSQL program as the cluster's user, with a C locale and nothing inherited.
  private func run(_ command: [String]) async throws -> Int32 {
    var argv = [binaries + "/" + command[0]] + command.dropFirst()
    if let runAs {
      argv = ["/usr/bin/setpriv", "--reuid=\(runAs.uid)", "--regid=\(runAs.gid)", "--clear-groups", "--"] + argv
    }
    let environment = ["LC_ALL=C", "LANG=C", "PATH=/usr/bin:/bin", "TZ=UTC", "HOME=\(clusterDirectory)"]
    // The log is created by the caller's user; the server appends to it as its own.
    let fd = open(logFile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
    if fd >= 0 {
      if let runAs { fchown(fd, runAs.uid, runAs.gid) }
      close(fd)
    }
    return try await Spawn.run(argv, environment: environment, log: logFile)
  }

  // MARK: Finding things

  /// Debian keeps the server binaries out of PATH, in /usr/lib/postgresql/<major>/bin.
  static func findBinaries() throws -> String {
    var candidates: [(Int, String)] = []
    if let dir = opendir("/usr/lib/postgresql") {
      defer { closedir(dir) }
      while let entry = readdir(dir) {
        let name = Spawn.entryName(entry)
        if let major = Int(name) { candidates.append((major, "/usr/lib/postgresql/\(name)/bin")) }
      }
    }
    for (_, bin) in candidates.sorted(by: { $0.0 > $1.0 }) where access(bin + "/initdb", X_OK) == 0 && access(bin + "/pg_ctl", X_OK) == 0 {
      return bin
    }
    for bin in ["/usr/local/pgsql/bin", "/usr/bin"] where access(bin + "/initdb", X_OK) == 0 && access(bin + "/pg_ctl", X_OK) == 0 {
      return bin
    }
    throw Failure(description: "PostgreSQL is not installed: no initdb and pg_ctl under /usr/lib/postgresql/<major>/bin. Install it (apt-get install postgresql) or pass --database-url")
  }

  /// Debian's `postgres` user, or a `quad` system user created for the purpose.
  static func unprivilegedUser(notes: inout [String]) throws -> (uid_t, gid_t, String) {
    for name in ["postgres", "quad"] {
      if let pw = getpwnam(name) { return (pw.pointee.pw_uid, pw.pointee.pw_gid, name) }
    }
    let status = Spawn.runBlockingOrFail(["/usr/sbin/useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "quad"])
    guard status == 0, let pw = getpwnam("quad") else {
      throw Failure(description: "running as root, PostgreSQL needs an unprivileged user: there is no user postgres, and useradd quad failed (exit \(status))")
    }
    notes.append("created the system user quad to run PostgreSQL (it refuses to run as root)")
    return (pw.pointee.pw_uid, pw.pointee.pw_gid, "quad")
  }

  /// The first folder on the way to `path` that `uid` cannot search, if any.
  static func firstUnreachable(_ path: String, uid: uid_t, gid: gid_t) -> String? {
    var prefix = ""
    for part in path.split(separator: "/").dropLast() {
      prefix += "/" + part
      var st = stat()
      guard stat(prefix, &st) == 0 else { return nil }
      let mode = st.st_mode
      let ok = (st.st_uid == uid && mode & S_IXUSR != 0) || (st.st_gid == gid && mode & S_IXGRP != 0) || mode & S_IXOTH != 0
      if !ok { return prefix }
    }
    return nil
  }

  /// The PID in `postmaster.pid`, if the file exists.
  static func postmasterPID(_ cluster: String) -> pid_t? {
    guard let text = readSmallFile(cluster + "/postmaster.pid") else { return nil }
    return text.split(separator: "\n").first.flatMap { pid_t($0.trimmingSpaces()) }
  }

  /// Whether `pid` is alive and is a PostgreSQL server.
  static func isPostgres(_ pid: pid_t) -> Bool {
    guard kill(pid, 0) == 0 || errno == EPERM, let cmdline = readSmallFile("/proc/\(pid)/cmdline") else { return false }
    // argv[0] of a postmaster is its binary, …/bin/postgres.
    let program = cmdline.split(separator: " ").first.map { $0.split(separator: "/").last ?? $0 }
    return program == "postgres" || program == "postmaster"
  }

  /// A small file's text with NULs as spaces (`/proc/<pid>/cmdline` separates arguments so).
  static func readSmallFile(_ path: String) -> String? {
    readWholeFile(path).map { String($0.map { $0 == "\u{0}" ? " " : $0 }) }
  }

  func tail(_ path: String) -> String {
    guard let text = Self.readWholeFile(path) else { return "(no log)" }
    return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(15).joined(separator: "\n")
  }

  static func readWholeFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
      let n = read(fd, &buffer, buffer.count)
      if n <= 0 { break }
      out += buffer[..<n]
      if out.count > 4 << 20 { out.removeFirst(out.count - (1 << 20)) }
    }
    return String(decoding: out, as: UTF8.self)
  }

  static func absolute(_ path: String) -> String {
    if path.hasPrefix("/") { return path }
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX))
    guard getcwd(&buffer, buffer.count) != nil else { return path }
    let cwd = String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    let relative = path.hasPrefix("./") ? String(path.dropFirst(2)) : path
    return (cwd == "/" ? "" : cwd) + "/" + relative
  }

  static func makeDirectories(_ path: String, mode: mode_t) throws {
    var prefix = ""
    for part in path.split(separator: "/") {
      prefix += "/" + part
      if mkdir(prefix, prefix == path ? mode : 0o755) != 0 && errno != EEXIST {
        throw Failure(description: "cannot create \(prefix): \(String(cString: strerror(errno)))")
      }
    }
  }

  /// A folder name for `path` under /var/lib/quad: readable, and unique per path.
  static func safeName(_ path: String) -> String {
    let readable = path.split(separator: "/").suffix(2).joined(separator: "-").filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "_" }
    return readable + "-" + String(fnv(path), radix: 16)
  }

  static func fnv(_ s: String) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in s.utf8 {
      h ^= UInt64(b)
      h = h &* 0x100_0000_01b3
    }
    return h
  }
}

extension Substring {
  func trimmingSpaces() -> Substring {
    var s = self
    while s.first == " " { s.removeFirst() }
    while s.last == " " || s.last == "\r" { s.removeLast() }
    return s
  }
}
