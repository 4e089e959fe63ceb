internal import CampusContracts
internal import EventsService
internal import Foundation
internal import Glibc
internal import GRPCWire
internal import HealthService
internal import Postgres
internal import QuadProtobuf
internal import QuadRPC
internal import Synchronization
internal import Testing
internal import TestSupport

/// `quad serve` with TLS, client certificates, bearer tokens and a policy, called over real
/// sockets: every credential attack gets UNAUTHENTICATED with nothing to learn from, every call
/// outside the policy PERMISSION_DENIED (and a log line), and subscriptions carry only the event
/// types granted.
@Suite("quad serve with identities and a policy")
struct SecuredServeTests {
  static let quad = repositoryRoot.appendingPathComponent(".build/debug/quad").path
  static let options = CallOptions(timeout: .seconds(30))

  static let policy = """
    { "grants": [
        { "services": ["scanner-7"], "methods": ["/campus.scans.v1.Scans/RecordScan", "/quad.events.v1.Events/Subscribe"],
          "events": ["campus.students.v1.*"] },
        { "roles": ["registrar"], "methods": ["/campus.students.v1.Students/*", "/campus.scans.v1.Scans/*", "/quad.events.v1.Events/*"],
          "events": ["*"] },
        { "roles": ["student"], "methods": ["/campus.students.v1.Students/GetStudent", "/campus.scans.v1.Scans/ListScans"], "own": true } ] }
    """

  struct Failure: Error, CustomStringConvertible { let description: String }

  static func code(_ body: () async throws -> Void) async -> (GRPCStatus.Code?, String) {
    do {
      try await body()
      return (.ok, "")
    } catch let e as RPCError {
      return (e.code, e.message)
    } catch {
      return (nil, "\(error)")
    }
  }

  @Test("Tokens (none, expired, forged, alg none, wrong audience, valid RS256 and ES256), mTLS service identities, an unknown CA, method grants, own records, filtered subscriptions, denials logged")
  func secured() async throws {
    let pg = try await TestPostgres.start()
    let certs = try await TestCertificates.make()
    let issuer = try await TestIssuer.make()
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quad-secured-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let jwks = dir.appendingPathComponent("jwks.json").path
    let policy = dir.appendingPathComponent("policy.json").path
    let log = dir.appendingPathComponent("serve.log").path
    try Data(issuer.jwks).write(to: URL(fileURLWithPath: jwks))
    try Self.policy.write(toFile: policy, atomically: true, encoding: .utf8)
    let command = [
      Self.quad, "serve", "--port", "0", "--metrics-port", "0", "--database-url", pg.conninfo,
      "--tls-cert", certs.serverCertificate, "--tls-key", certs.serverKey, "--client-ca", certs.caCertificate,
      "--jwks", jwks, "--jwt-issuer", issuer.issuer, "--jwt-audience", issuer.audience, "--policy", policy,
    ]
    let server = try await BackgroundProcess.start(["sh", "-c", "exec \"$@\" 2>>'\(log)'", log] + command)
    guard server.firstLine.hasPrefix("quad serve: serving"), let port = server.firstLine.split(separator: ":").last.flatMap({ Int($0) }) else {
      throw Failure(description: "quad serve did not start: \(server.firstLine)")
    }
    #expect(server.firstLine.contains("; mutual TLS, bearer tokens, policy)"), "\(server.firstLine)")
    let target = "127.0.0.1:\(port)"
    let person = try GRPCClient(target: target, tls: ClientTLS(trustRootsPath: certs.caCertificate, serverHostOverride: "localhost"))
    let service = try GRPCClient(target: target, tls: ClientTLS(
      trustRootsPath: certs.caCertificate, certificateChainPath: certs.clientCertificate, privateKeyPath: certs.clientKey, serverHostOverride: "localhost"))
    let stranger = try GRPCClient(target: target, tls: ClientTLS(
      trustRootsPath: certs.caCertificate, certificateChainPath: certs.strangerCertificate, privateKeyPath: certs.strangerKey, serverHostOverride: "localhost"))
    func bearer(_ token: String) -> CallOptions {
      CallOptions(timeout: .seconds(30), metadata: [("authorization", .text("Bearer " + token))])
    }
    let registrar = bearer(try await issuer.token("registrar-1", roles: ["registrar"], kid: "rsa1"))
    let students = Campus_Students_V1_Students.Client(person)

    // Health stays open: no credential needed.
    let health = try await Grpc_Health_V1_Health.Client(person).check(Grpc_Health_V1_HealthCheckRequest(), options: Self.options)
    #expect(health.status == .serving)

    // A registrar (RS256) registers two students; an ES256 registrar token works as well.
    for (id, name) in [("S1", "Sam"), ("S2", "Alex")] {
      var r = Campus_Students_V1_RegisterStudentRequest()
      r.studentId = id
      r.givenName = name
      r.familyName = "Secure"
      r.email = "\(id.lowercased())@uni.example.edu"
      _ = try await students.registerStudent(r, options: registrar)
    }
    let ecRegistrar = bearer(try await issuer.token("registrar-2", roles: ["registrar"]))
    #expect(try await students.listStudents(Campus_Students_V1_ListStudentsRequest(), options: ecRegistrar).students.map(\.studentId) == ["S1", "S2"])

    // Credential attacks: UNAUTHENTICATED, and the same words whatever was wrong.
    var get = Campus_Students_V1_GetStudentRequest()
    get.studentId = "S1"
    let attacks: [(String, CallOptions)] = [
      ("expired", bearer(try await issuer.token("S1", roles: ["student"], expiresIn: -600))),
      ("forged (another key, same kid)", bearer(try await issuer.token("S1", roles: ["registrar"], forged: true))),
      ("alg none", bearer(TestIssuer.unsigned("S1", alg: "none"))),
      ("wrong audience", bearer(try await issuer.token("S1", roles: ["student"], audience: "payroll"))),
      ("not a bearer token", CallOptions(timeout: .seconds(30), metadata: [("authorization", .text("Basic cm9vdDpyb290"))])),
    ]
    for (what, options) in attacks {
      let (code, message) = await Self.code { _ = try await students.getStudent(get, options: options) }
      #expect(code == .unauthenticated && message == "invalid credentials", "\(what): \(String(describing: code)) \(message)")
    }
    let (anonymous, anonymousMessage) = await Self.code { _ = try await students.getStudent(get, options: Self.options) }
    #expect(anonymous == .unauthenticated && anonymousMessage == "credentials required")

    // A student reads their own record and scans, and nothing else.
    let sam = bearer(try await issuer.token("S1", roles: ["student"]))
    #expect(try await students.getStudent(get, options: sam).givenName == "Sam")
    var other = get
    other.studentId = "S2"
    #expect(await Self.code { _ = try await students.getStudent(other, options: sam) }.0 == .permissionDenied)
    #expect(await Self.code { _ = try await students.listStudents(Campus_Students_V1_ListStudentsRequest(), options: sam) }.0 == .permissionDenied)
    let scans = Campus_Scans_V1_Scans.Client(person)
    var mine = Campus_Scans_V1_ListScansRequest()
    mine.studentId = "S1"
    #expect(try await scans.listScans(mine, options: sam).scans.isEmpty)
    var byLocation = Campus_Scans_V1_ListScansRequest()
    byLocation.location = "gym"
    #expect(await Self.code { _ = try await scans.listScans(byLocation, options: sam) }.0 == .permissionDenied, "not filtered by their own id")

    // The scanner service (mutual TLS, no token) records scans but may not touch students.
    var scan = Campus_Scans_V1_RecordScanRequest()
    scan.scanId = "sec-1"
    scan.cardId = "CARD-NONE"
    scan.location = "gym"
    scan.direction = .in
    scan.scannedAt = Google_Protobuf_Timestamp(microseconds: Int64(Date().timeIntervalSince1970 * 1_000_000) - 60_000_000)
    scan.deviceId = "door-gym"
    _ = try await Campus_Scans_V1_Scans.Client(service).recordScan(scan, options: Self.options)
    var update = Campus_Students_V1_UpdateStudentRequest()
    update.studentId = "S1"
    update.expectedVersion = 1
    update.givenName = "Mallory"
    let (denied, deniedMessage) = await Self.code { _ = try await Campus_Students_V1_Students.Client(service).updateStudent(update, options: Self.options) }
    #expect(denied == .permissionDenied && deniedMessage == "service:scanner-7 may not call /campus.students.v1.Students/UpdateStudent", "\(deniedMessage)")

    // Its subscription carries student events only; the registrar's carries everything.
    func subscribed(_ client: GRPCClient, _ options: CallOptions) async -> [String] {
      var request = Quad_Events_V1_SubscribeRequest()
      request.start = .first
      var types: [String] = []
      do {
        try await Quad_Events_V1_Events.Client(client).subscribe(request, options: options) { stream in
          for try await e in stream { types.append(e.eventType) }
        }
      } catch {}
      return types
    }
    let serviceSees = await subscribed(service, CallOptions(timeout: .seconds(3)))
    var registrarWatch = registrar
    registrarWatch.timeout = .seconds(3)
    let registrarSees = await subscribed(person, registrarWatch)
    #expect(registrarSees.contains("campus.scans.v1.ScanRecorded") && registrarSees.filter { $0.hasPrefix("campus.students.v1.") }.count >= 2, "\(registrarSees)")
    #expect(!serviceSees.isEmpty && serviceSees == registrarSees.filter { $0.hasPrefix("campus.students.v1.") }, "\(serviceSees)")

    // A certificate from another CA does not get a connection at all.
    let (refused, _) = await Self.code { _ = try await Grpc_Health_V1_Health.Client(stranger).check(Grpc_Health_V1_HealthCheckRequest(), options: Self.options) }
    #expect(refused == .unavailable)

    await person.close()
    await service.close()
    await stranger.close()
    await server.kill()
    await pg.stop()
    // Every denial is logged with its identity and method; tokens never are.
    let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
    #expect(lines.contains { $0.contains("permission denied") && $0.contains("service:scanner-7") && $0.contains("/campus.students.v1.Students/UpdateStudent") })
    #expect(lines.contains { $0.contains("permission denied") && $0.contains("user:S1") && $0.contains("/campus.students.v1.Students/ListStudents") })
    #expect(lines.contains { $0.contains("unauthenticated call refused") && $0.contains("expired") })
    #expect(!lines.contains { $0.contains("eyJ") }, "no token in the log")
    // Every read of personal data is audited with who, what and whose.
    let audits = lines.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
      .filter { $0["message"] as? String == "personal data read" }
    #expect(audits.contains { $0["identity"] as? String == "user:S1" && $0["method"] as? String == "/campus.students.v1.Students/GetStudent" && $0["subjects"] as? String == "S1" })
    #expect(audits.contains { $0["identity"] as? String == "user:registrar-2" && $0["method"] as? String == "/campus.students.v1.Students/ListStudents" && $0["subjects"] as? String == "S1,S2" })
    #expect(!audits.contains { $0["subjects"] as? String == "S2" && $0["identity"] as? String == "user:S1" }, "a denied read is not a read")
    try? FileManager.default.removeItem(at: dir)
  }

  /// Waits (up to 30 s) until `condition` holds.
  static func eventually(_ what: String, _ condition: () async -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(30)
    while ContinuousClock.now < deadline {
      if await condition() { return }
      try await Task.sleep(for: .milliseconds(200))
    }
    throw Failure(description: "timed out waiting until \(what)")
  }

  @Test("Rotation without restart: a changed policy, JWKS and TLS certificate apply to the next calls; a broken file keeps the last good one; SIGHUP reloads; a subscription open throughout keeps going")
  func rotation() async throws {
    let pg = try await TestPostgres.start()
    let first = try await TestCertificates.make()
    let second = try await TestCertificates.make()
    let oldIssuer = try await TestIssuer.make()
    let newIssuer = try await TestIssuer.make()
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quad-rotate-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    func file(_ name: String) -> String { dir.appendingPathComponent(name).path }
    func install(_ certs: TestCertificates) throws {
      // Each file replaced atomically (a rename), as deployment tools do.
      for (from, to) in [(certs.serverCertificate, "server.pem"), (certs.serverKey, "server.key"), (certs.caCertificate, "ca.pem")] {
        try? FileManager.default.removeItem(atPath: file(to + ".new"))
        try FileManager.default.copyItem(atPath: from, toPath: file(to + ".new"))
        _ = rename(file(to + ".new"), file(to))
      }
    }
    try install(first)
    try Data(oldIssuer.jwks).write(to: URL(fileURLWithPath: file("jwks.json")), options: .atomic)
    let before = #"{"grants": [{"roles": ["registrar"], "methods": ["/campus.students.v1.Students/*", "/quad.events.v1.Events/*"], "events": ["*"]}]}"#
    let after = #"{"grants": [{"roles": ["registrar"], "methods": ["/campus.students.v1.Students/*", "/quad.events.v1.Events/*"], "events": ["*"]}, {"roles": ["auditor"], "methods": ["/campus.students.v1.Students/ListStudents"]}]}"#
    try before.write(toFile: file("policy.json"), atomically: true, encoding: .utf8)
    let log = file("serve.log")
    let command = [
      Self.quad, "serve", "--port", "0", "--metrics-port", "0", "--database-url", pg.conninfo,
      "--tls-cert", file("server.pem"), "--tls-key", file("server.key"), "--client-ca", file("ca.pem"),
      "--jwks", file("jwks.json"), "--jwt-issuer", oldIssuer.issuer, "--jwt-audience", oldIssuer.audience, "--policy", file("policy.json"),
    ]
    let server = try await BackgroundProcess.start(["sh", "-c", "exec \"$@\" 2>>'\(log)'", log] + command)
    guard server.firstLine.hasPrefix("quad serve: serving"), let port = server.firstLine.split(separator: ":").last.flatMap({ Int($0) }) else {
      throw Failure(description: "quad serve did not start: \(server.firstLine)")
    }
    let target = "127.0.0.1:\(port)"
    func client(_ certs: TestCertificates) throws -> GRPCClient {
      try GRPCClient(target: target, tls: ClientTLS(trustRootsPath: certs.caCertificate, serverHostOverride: "localhost"))
    }
    func bearer(_ token: String, seconds: Int = 10) -> CallOptions {
      CallOptions(timeout: .seconds(Int64(seconds)), metadata: [("authorization", .text("Bearer " + token))])
    }
    func register(_ client: GRPCClient, _ id: String, _ options: CallOptions) async throws {
      var r = Campus_Students_V1_RegisterStudentRequest()
      r.studentId = id
      r.givenName = "Rota"
      r.familyName = "Tion"
      r.email = "\(id.lowercased())@uni.example.edu"
      _ = try await Campus_Students_V1_Students.Client(client).registerStudent(r, options: options)
    }
    let old = try client(first)
    let registrar = bearer(try await oldIssuer.token("registrar-1", roles: ["registrar"]))
    try await register(old, "R1", registrar)

    // A subscription open from before every rotation to after them all.
    let seen = SeenStudents()
    var request = Quad_Events_V1_SubscribeRequest()
    request.start = .first
    let subscription = Task {
      try await Quad_Events_V1_Events.Client(old).subscribe(request, options: bearer(try await oldIssuer.token("registrar-1", roles: ["registrar"]), seconds: 120)) { stream in
        for try await e in stream where e.eventType == "campus.students.v1.StudentRegistered" { seen.add(e.streamId) }
      }
    }
    defer { subscription.cancel() }
    try await Self.eventually("the subscriber sees R1") { seen.contains("R1") }

    // The policy: an auditor is denied, then allowed once the file changes.
    let auditor = bearer(try await oldIssuer.token("audit-1", roles: ["auditor"]))
    let list = Campus_Students_V1_ListStudentsRequest()
    #expect(await Self.code { _ = try await Campus_Students_V1_Students.Client(old).listStudents(list, options: auditor) }.0 == .permissionDenied)
    try after.write(toFile: file("policy.json"), atomically: true, encoding: .utf8)
    try await Self.eventually("the new policy applies") {
      await Self.code { _ = try await Campus_Students_V1_Students.Client(old).listStudents(list, options: auditor) }.0 == .ok
    }
    // A broken policy file is refused; the last good policy stays in force (no fail-open).
    try "{ not json".write(toFile: file("policy.json"), atomically: true, encoding: .utf8)
    try await Self.eventually("the broken policy is reported") {
      ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("policy reload failed")
    }
    #expect(await Self.code { _ = try await Campus_Students_V1_Students.Client(old).listStudents(list, options: auditor) }.0 == .ok)
    let denied = bearer(try await oldIssuer.token("nobody", roles: []))
    #expect(await Self.code { _ = try await Campus_Students_V1_Students.Client(old).listStudents(list, options: denied) }.0 == .permissionDenied)
    try after.write(toFile: file("policy.json"), atomically: true, encoding: .utf8)

    // The JWKS: the new issuer's keys replace the old ones.
    let newRegistrar = bearer(try await newIssuer.token("registrar-2", roles: ["registrar"]))
    #expect(await Self.code { try await register(old, "R2", newRegistrar) }.0 == .unauthenticated)
    try Data(newIssuer.jwks).write(to: URL(fileURLWithPath: file("jwks.json")), options: .atomic)
    try await Self.eventually("the new keys apply") { await Self.code { try await register(old, "R2", newRegistrar) }.0 == .ok }
    #expect(await Self.code { try await register(old, "R3", registrar) }.0 == .unauthenticated, "the old key no longer verifies")

    // TLS: new connections get the new certificate; the connection already open keeps working.
    try install(second)
    try await Self.eventually("a client trusting only the new CA connects") {
      guard let fresh = try? client(second) else { return false }
      defer { Task { await fresh.close() } }
      return await Self.code { try await register(fresh, "R4", newRegistrar) }.0 == .ok
    }
    let stale = try client(first)
    #expect(await Self.code { _ = try await Campus_Students_V1_Students.Client(stale).listStudents(list, options: newRegistrar) }.0 == .unavailable,
      "a new connection trusting only the old CA is refused")
    await stale.close()
    try await register(old, "R5", newRegistrar)
    try await Self.eventually("the subscription, open throughout, sees every student") { ["R1", "R2", "R4", "R5"].allSatisfy(seen.contains) }
    #expect(!seen.contains("R3"))

    // SIGHUP reloads too (nothing changed: it says so and goes on serving).
    _ = kill(server.pid, SIGHUP)
    try await Self.eventually("SIGHUP is logged") {
      ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains(#""why":"SIGHUP""#)
    }
    try await register(old, "R6", newRegistrar)

    subscription.cancel()
    await old.close()
    await server.kill()
    #expect(server.terminationStatus == 0, "SIGTERM drains and exits 0")
    await pg.stop()
    try? FileManager.default.removeItem(at: dir)
  }
}

/// The student ids a subscriber saw registered.
final class SeenStudents: Sendable {
  private let ids = Mutex<Set<String>>([])
  func add(_ id: String) { _ = ids.withLock { $0.insert(id) } }
  func contains(_ id: String) -> Bool { ids.withLock { $0.contains(id) } }
}
