public import Foundation
internal import Glibc

/// A private, throw-away PostgreSQL cluster for tests: `initdb` in a fresh temporary folder,
/// the server on a Unix socket inside it (no TCP), trust authentication for user `postgres`.
/// As root it runs as the unprivileged user `quadtest` (PostgreSQL refuses root).
public final class TestPostgres: Sendable {
  /// The cluster's folder (data, socket, log).
  public let directory: String
  /// libpq connection string for database `postgres` as user `postgres`.
  public var conninfo: String { "host=\(directory)/socket port=\(tlsPort ?? 5432) user=postgres dbname=postgres" }

  /// The TCP port on 127.0.0.1 when started with TLS (`nil`: Unix socket only).
  public let tlsPort: Int?

  /// The server's options (what ``resume()`` starts it with again).
  private let options: String

  private init(directory: String, tlsPort: Int? = nil, options: String) {
    self.directory = directory
    self.tlsPort = tlsPort
    self.options = options
  }

  /// Debian keeps the server binaries out of PATH: the newest /usr/lib/postgresql/N/bin.
  static let findBin = #"BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1); [ -x "$BIN/initdb" ] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)"; exit 1; }"#

  /// Creates and starts a cluster; throws with initdb's or pg_ctl's output when that fails.
  ///
  /// - Parameter tls: also listen on 127.0.0.1 (a free port, ``tlsPort``) with TLS, serving
  ///   these certificates' server certificate.
  public static func start(tls: TestCertificates? = nil) async throws -> TestPostgres {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quad-pg-\(UUID().uuidString)").path
    var port: Int?
    var tlsOptions = ""
    var tlsSetup = ""
    if let tls {
      let p = try freePort()
      port = p
      tlsSetup = """
        cp '\(tls.serverCertificate)' '\(dir)/server.pem'; cp '\(tls.serverKey)' '\(dir)/server.key'; chmod 600 '\(dir)/server.key'
        """
      tlsOptions = " -c listen_addresses=127.0.0.1 -p \(p) -c ssl=on -c ssl_cert_file=\(dir)/server.pem -c ssl_key_file=\(dir)/server.key"
    }
    let options = "-c listen_addresses='' -c unix_socket_directories='\(dir)/socket' -c fsync=off -c max_connections=200\(tlsOptions)"
    let script = """
      set -e
      \(findBin)
      AS=""
      if [ "$(id -u)" = 0 ]; then
        # Parallel tests on a new machine would race to create the user: one at a time.
        id quadtest >/dev/null 2>&1 || flock /tmp/quad-test-useradd.lock sh -c \
          'id quadtest >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin quadtest' 
        AS="runuser -u quadtest --"
      fi
      mkdir -p '\(dir)/socket'
      \(tlsSetup)
      [ -z "$AS" ] || chown -R quadtest '\(dir)'
      chmod 700 '\(dir)'
      $AS env LC_ALL=C "$BIN/initdb" -D '\(dir)/data' -U postgres --auth=trust -E UTF8 --locale=C >'\(dir)/initdb.log' 2>&1 || { cat '\(dir)/initdb.log'; exit 1; }
      $AS env LC_ALL=C "$BIN/pg_ctl" -D '\(dir)/data' -l '\(dir)/server.log' -w -t 60 \
        -o "\(options)" start </dev/null >/dev/null 2>&1 \
        || { cat '\(dir)/server.log'; exit 1; }
      echo started
      """
    let (status, output) = await runShell(script)
    guard status == 0 else { throw Failure(output: output) }
    return TestPostgres(directory: dir, tlsPort: port, options: options)
  }

  /// A TCP port free on 127.0.0.1 now.
  static func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { p in
      p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw Failure(output: "no free TCP port") }
    return Int(UInt16(bigEndian: address.sin_port))
  }

  /// Runs `body` with a fresh cluster, stopped after it whether `body` returns or throws.
  public static func with<R>(_ body: (TestPostgres) async throws -> R) async throws -> R {
    let pg = try await start()
    do {
      let result = try await body(pg)
      await pg.stop()
      return result
    } catch {
      await pg.stop()
      throw error
    }
  }

  /// Restarts the server (fast: sessions are cut, as when PostgreSQL restarts under a running
  /// service).
  public func restart() async throws {
    try await pgCtl("-l '\(directory)/server.log' -m fast -w -t 60 restart")
  }

  /// Stops the server and keeps its data, until ``resume()`` (the database "goes away").
  public func halt() async throws {
    try await pgCtl("-m fast -w stop")
  }

  /// Starts the server ``halt()`` stopped, with its options.
  public func resume() async throws {
    try await pgCtl("-l '\(directory)/server.log' -w -t 60 -o \"\(options)\" start")
  }

  /// Runs pg_ctl on the cluster as its user; throws with the server's log when it fails.
  private func pgCtl(_ arguments: String) async throws {
    let script = """
      \(Self.findBin)
      AS=""; [ "$(id -u)" = 0 ] && AS="runuser -u quadtest --"
      $AS env LC_ALL=C "$BIN/pg_ctl" -D '\(directory)/data' \(arguments) </dev/null >/dev/null 2>&1 || { cat '\(directory)/server.log'; exit 1; }
      """
    let (status, output) = await Self.runShell(script)
    guard status == 0 else { throw Failure(output: output) }
  }

  /// Stops the server and removes the folder.
  public func stop() async {
    let script = """
      \(Self.findBin)
      AS=""; [ "$(id -u)" = 0 ] && AS="runuser -u quadtest --"
      $AS "$BIN/pg_ctl" -D '\(directory)/data' -m fast -w stop </dev/null >/dev/null 2>&1
      rm -rf '\(directory)'
      """
    _ = await Self.runShell(script)
  }

  /// Runs a bash script on a thread of its own (TestSupport's spawn: no descriptor of this
  /// process reaches the server it may start) and returns its exit status and output, killing
  /// it after 300 s. Not Foundation's `Process`: it misses the exit of a script that starts a
  /// daemon through `runuser` and `pg_ctl`, and waits forever.
  static func runShell(_ script: String) async -> (status: Int32, output: String) {
    await withCheckedContinuation { continuation in
      Thread.detachNewThread {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("quad-sh-\(UUID().uuidString)").path
        try? script.write(toFile: base + ".sh", atomically: true, encoding: .utf8)
        // Through TestSupport's spawn, not system(3): the server pg_ctl starts must not inherit
        // this process's sockets (SwiftNIO's are not close-on-exec).
        var status: Int32 = -1
        var output = ""
        if let child = try? Child(["bash", "-c", "exec bash \"$0\" 2>&1", base + ".sh"], input: false) {
          let deadline = Child.now() + 300
          output = String(decoding: child.readAll(until: deadline), as: UTF8.self)
          if let exited = child.wait(until: deadline) { status = exited } else { child.forceExit() }
        }
        try? FileManager.default.removeItem(atPath: base + ".sh")
        continuation.resume(returning: (status, output))
      }
    }
  }

  public struct Failure: Error, CustomStringConvertible {
    public let output: String
    public var description: String { "could not start PostgreSQL: \(output)" }
  }
}
