internal import EmbeddedPostgres
internal import Foundation
internal import Glibc
internal import Postgres
internal import Testing

/// The private cluster `quad serve` runs: created, reused, recovered, placed where its user
/// can reach it. As root (CI) the server runs as an unprivileged user.
@Suite("Embedded PostgreSQL", .serialized)
struct EmbeddedPostgresTests {
  static func temporaryDirectory(mode: mode_t = 0o755) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("quad-embedded-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    chmod(path, mode)
    return path
  }

  static func answer(_ pg: EmbeddedPostgres) async throws -> String {
    let db = try await PostgresConnection.connect(pg.conninfo)
    let s = try await db.query("SELECT current_setting('server_encoding') || ' ' || current_setting('lc_collate') AS s", named: "test.settings")[0].decode("s", as: String.self)
    await db.close()
    return s
  }

  @Test("First start creates a UTF-8, C-locale cluster on a Unix socket; the next start reuses its data")
  func createAndReuse() async throws {
    let dir = try Self.temporaryDirectory()
    let pg = try await EmbeddedPostgres.start(dataDirectory: dir + "/.quad")
    #expect(pg.clusterDirectory == dir + "/.quad/postgres")
    #expect(try await Self.answer(pg) == "UTF8 C")
    let db = try await PostgresConnection.connect(pg.conninfo)
    _ = try await db.query("CREATE TABLE kept (v int)", named: "test.create")
    await db.close()
    // Nothing of ours leaks into the server: only its own descriptors besides 0-2.
    let pid = try #require(String(contentsOfFile: pg.clusterDirectory + "/postmaster.pid", encoding: .utf8).split(separator: "\n").first)
    let fds = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").compactMap(Int.init).sorted()
    let links = fds.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)") }
    #expect(!links.contains { $0.contains("quad-embedded") && !$0.hasSuffix(".log") }, "\(links)")
    try await pg.stop()
    #expect(!FileManager.default.fileExists(atPath: pg.clusterDirectory + "/postmaster.pid"))

    let again = try await EmbeddedPostgres.start(dataDirectory: dir + "/.quad")
    let db2 = try await PostgresConnection.connect(again.conninfo)
    #expect(try await db2.query("SELECT count(*) AS n FROM kept", named: "test.count")[0].decode("n", as: Int64.self) == 0)
    await db2.close()
    try await again.stop()
    try? FileManager.default.removeItem(atPath: dir)
  }

  @Test("A stale postmaster.pid (its PID now another process) is removed and said; a server left running is reused")
  func stalePIDAndLeftRunning() async throws {
    let dir = try Self.temporaryDirectory()
    let pg = try await EmbeddedPostgres.start(dataDirectory: dir)
    // Left running (quad was SIGKILLed): the next start reuses it.
    let reused = try await EmbeddedPostgres.start(dataDirectory: dir)
    #expect(reused.notes.contains { $0.contains("reusing") }, "\(reused.notes)")
    #expect(try await Self.answer(reused) == "UTF8 C")
    try await pg.stop()
    // A crash left postmaster.pid naming a PID that is now this test process.
    let stale = "\(getpid())\n\(pg.clusterDirectory)\n"
    try stale.write(toFile: pg.clusterDirectory + "/postmaster.pid", atomically: true, encoding: .utf8)
    let recovered = try await EmbeddedPostgres.start(dataDirectory: dir)
    #expect(recovered.notes.contains { $0.contains("removed the postmaster.pid") }, "\(recovered.notes)")
    #expect(try await Self.answer(recovered) == "UTF8 C")
    try await recovered.stop()
    try? FileManager.default.removeItem(atPath: dir)
  }

  @Test("As root, a data folder the server's user cannot reach puts the cluster under /var/lib/quad and says so")
  func unreachableDataFolder() async throws {
    guard geteuid() == 0 else { return }
    let closed = try Self.temporaryDirectory(mode: 0o700)
    let pg = try await EmbeddedPostgres.start(dataDirectory: closed + "/checkout/.quad")
    #expect(pg.clusterDirectory.hasPrefix("/var/lib/quad/"))
    #expect(pg.notes.contains { $0.contains("cannot reach \(closed)") && $0.contains(pg.clusterDirectory) }, "\(pg.notes)")
    #expect(try await Self.answer(pg) == "UTF8 C")
    try await pg.stop()
    try? FileManager.default.removeItem(atPath: pg.clusterDirectory)
    try? FileManager.default.removeItem(atPath: pg.clusterDirectory + ".log")
    try? FileManager.default.removeItem(atPath: closed)
  }

  @Test("A socket path that would pass the 107-byte limit moves under /tmp")
  func longPath() async throws {
    let dir = try Self.temporaryDirectory()
    let deep = dir + "/" + String(repeating: "d", count: 60) + "/" + String(repeating: "e", count: 40)
    let pg = try await EmbeddedPostgres.start(dataDirectory: deep)
    #expect(pg.socketDirectory.hasPrefix("/tmp/quad-pg-"))
    #expect(try await Self.answer(pg) == "UTF8 C")
    try await pg.stop()
    try? FileManager.default.removeItem(atPath: dir)
    try? FileManager.default.removeItem(atPath: pg.socketDirectory)
  }
}
