internal import AdminService
internal import CampusContracts
internal import EventsService
internal import Foundation
internal import GRPCWire
internal import QuadProtobuf
internal import QuadRPC
internal import Synchronization
internal import Testing
internal import TestSupport

/// One chaos round: two `quad serve` instances on one PostgreSQL, under write load, with a
/// subscriber on each and a webhook receiver, while the network to the database is cut,
/// PostgreSQL restarts, one instance is SIGKILLed and restarted, the webhook's network is cut,
/// and the network between a subscriber and its instance is cut. No
/// acknowledged write is lost, events arrive in order, the webhook's breaker opens and closes,
/// and each fault's recovery time is printed.
@Suite("Chaos", .serialized)
struct ChaosTests {
  static let quad = repositoryRoot.appendingPathComponent(".build/debug/quad").path
  static let verifier = repositoryRoot.appendingPathComponent("deploy/webhooks/verify_webhook.py").path

  struct Failure: Error, CustomStringConvertible { let description: String }

  /// What the load and the subscriber saw.
  final class Record: Sendable {
    struct State {
      var acknowledged: Set<String> = []
      var lastSuccess: [String: ContinuousClock.Instant] = [:]
      var writeErrors = 0
      /// What each subscriber saw, in order.
      var seen: [String: [(Int64, String)]] = [:]
      var violations: [String] = []
    }
    let state = Mutex(State())
    func with<R>(_ body: (inout State) -> R) -> R { state.withLock { body(&$0) } }
  }

  /// The instances' current ports (an instance restarted gets a new one).
  final class Ports: Sendable {
    let ports = Mutex<[String: Int]>([:])
    subscript(name: String) -> Int? {
      get { ports.withLock { $0[name] } }
    }
    func set(_ name: String, _ port: Int) { ports.withLock { $0[name] = port } }
  }

  static func serve(_ arguments: [String]) async throws -> (BackgroundProcess, Int) {
    let server = try await BackgroundProcess.start([quad, "serve", "--port", "0", "--metrics-port", "0"] + arguments)
    guard server.firstLine.hasPrefix("quad serve: serving"), let port = server.firstLine.split(separator: ":").last.flatMap({ Int($0) }) else {
      throw Failure(description: "quad serve did not start: \(server.firstLine)")
    }
    return (server, port)
  }

  static func eventually(_ what: String, seconds: Int = 90, _ condition: () async throws -> Bool) async throws -> Duration {
    let start = ContinuousClock.now
    while ContinuousClock.now - start < .seconds(Int64(seconds)) {
      if try await condition() { return ContinuousClock.now - start }
      try await Task.sleep(for: .milliseconds(50))
    }
    throw Failure(description: "timed out waiting until \(what)")
  }

  @Test("Database link cut, PostgreSQL restart, an instance SIGKILLed, the webhook link cut, a subscriber's link cut, under load: nothing acknowledged lost, order kept, the breaker opens and closes, every fault recovered")
  func chaosRound() async throws {
    let pg = try await TestPostgres.start()
    let dbLink = try TCPProxy(to: .unix(path: "\(pg.directory)/socket/.s.PGSQL.5432"))
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quad-chaos-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let secretFile = dir.appendingPathComponent("secret").path
    let out = dir.appendingPathComponent("received.jsonl").path
    try "chaos-\(UUID().uuidString)".write(toFile: secretFile, atomically: true, encoding: .utf8)
    let receiver = try await BackgroundProcess.start(["python3", Self.verifier, "--port", "0", "--secret-file", secretFile, "--out", out])
    let hookLink = try TCPProxy(to: .tcp(port: try #require(Int(receiver.firstLine))))
    let aArguments = [
      "--database-url", pg.conninfo, "--webhook", "chaos=http://127.0.0.1:\(hookLink.port)/hook", "--webhook-secret-file", secretFile,
      "--webhook-events", "campus.students.v1.StudentRegistered", "--webhook-breaker-failures", "3", "--webhook-breaker-open-seconds", "2",
    ]
    var (a, aPort) = try await Self.serve(aArguments)
    let (b, bPort) = try await Self.serve(["--database-url", "host=127.0.0.1 port=\(dbLink.port) user=postgres dbname=postgres"])
    let ports = Ports()
    ports.set("a", aPort)
    ports.set("b", bPort)
    let record = Record()
    let writing = Flag()

    try await withThrowingTaskGroup(of: Void.self) { group in
      // Writers: two per instance, each registering students one after another; a failed
      // write is retried with the same idempotency key until it is acknowledged.
      for instance in ["a", "b"] {
        for w in 0..<2 {
          group.addTask {
            var client: (port: Int, grpc: GRPCClient)?
            var n = 0
            while writing.isSet {
              let id = "C-\(instance)\(w)-\(n)"
              var r = Campus_Students_V1_RegisterStudentRequest()
              r.studentId = id
              r.givenName = "Chaos"
              r.familyName = "Monkey"
              r.email = "\(id.lowercased())@uni.example.edu"
              do {
                let port = ports[instance]!
                if client?.port != port {
                  await client?.grpc.close()
                  client = (port, try GRPCClient(target: "127.0.0.1:\(port)"))
                }
                let options = CallOptions(timeout: .seconds(5), metadata: [("idempotency-key", .text(id))])
                _ = try await Campus_Students_V1_Students.Client(client!.grpc).registerStudent(r, options: options)
                record.with {
                  $0.acknowledged.insert(id)
                  $0.lastSuccess[instance] = .now
                }
                n += 1
              } catch {
                record.with { $0.writeErrors += 1 }
                try? await Task.sleep(for: .milliseconds(100))
              }
              try? await Task.sleep(for: .milliseconds(20))
            }
            await client?.grpc.close()
          }
        }
      }
      // Subscribers, each resuming from its cursor after every failure: one on instance a, one
      // on instance b through a link the test cuts (the network between a campus service and b).
      let subLink = try TCPProxy(to: .tcp(port: bPort))
      let subPort = subLink.port
      let portA: @Sendable () -> Int = { ports["a"]! }
      let portB: @Sendable () -> Int = { subPort }
      for (name, port) in [("a", portA), ("b", portB)] {
        group.addTask {
          var cursor: Quad_Events_V1_Cursor?
          var client: (port: Int, grpc: GRPCClient)?
          while !Task.isCancelled {
            var request = Quad_Events_V1_SubscribeRequest()
            request.eventTypes = ["campus.students.v1.StudentRegistered"]
            if let cursor { request.after = cursor } else { request.start = .first }
            do {
              let port = port()
              if client?.port != port {
                await client?.grpc.close()
                client = (port, try GRPCClient(target: "127.0.0.1:\(port)"))
              }
              try await Quad_Events_V1_Events.Client(client!.grpc).subscribe(request, options: CallOptions(timeout: .seconds(300))) { stream in
                for try await e in stream {
                  record.with { s in
                    if let last = s.seen[name]?.last, e.cursor.position <= last.0 { s.violations.append("\(name): \(e.cursor.position) after \(last.0)") }
                    s.seen[name, default: []].append((e.cursor.position, e.streamId))
                  }
                  cursor = e.cursor
                }
              }
            } catch {
              try? await Task.sleep(for: .milliseconds(100))
            }
          }
          await client?.grpc.close()
        }
      }
      defer { subLink.stop() }

      func recovered(_ instance: String, after instant: ContinuousClock.Instant) -> Bool {
        record.with { ($0.lastSuccess[instance] ?? instant) > instant }
      }
      _ = try await Self.eventually("both instances write") { recovered("a", after: .now - .seconds(1)) && recovered("b", after: .now - .seconds(1)) }

      // 1. The network between instance b and PostgreSQL goes away for 3 s.
      dbLink.cut()
      try await Task.sleep(for: .seconds(3))
      dbLink.restore()
      let restored = ContinuousClock.now
      let linkRecovery = try await Self.eventually("b writes again after the database link is back") { recovered("b", after: restored) }
      print("chaos: instance b wrote again \(linkRecovery) after its database link came back (cut 3 s)")

      // 2. PostgreSQL restarts under both.
      try await pg.restart()
      let up = ContinuousClock.now
      let pgRecovery = try await Self.eventually("both write again after the PostgreSQL restart") { recovered("a", after: up) && recovered("b", after: up) }
      print("chaos: both instances wrote again \(pgRecovery) after PostgreSQL was back")

      // 3. Instance a is SIGKILLed and started again (on a new port).
      await a.kill(signal: SIGKILL)
      let killed = ContinuousClock.now
      (a, aPort) = try await Self.serve(aArguments)
      ports.set("a", aPort)
      _ = try await Self.eventually("a writes again after its restart") { recovered("a", after: killed) }
      print("chaos: instance a wrote again \(ContinuousClock.now - killed) after its SIGKILL (its restart included)")

      // 4. The webhook's network goes away: the breaker opens; back: it closes.
      let admin = { () async throws -> Quad_Admin_V1_CircuitBreaker.State? in
        let grpc = try GRPCClient(target: "127.0.0.1:\(ports["a"]!)")
        defer { Task { await grpc.close() } }
        return try await Quad_Admin_V1_Admin.Client(grpc).listCircuitBreakers(Quad_Admin_V1_ListCircuitBreakersRequest(), options: CallOptions(timeout: .seconds(5)))
          .breakers.first { $0.target == "webhook:chaos" }?.state
      }
      hookLink.cut()
      let opened = try await Self.eventually("the webhook's breaker opens") { try await admin() == .open }
      print("chaos: the webhook breaker opened \(opened) after its link was cut")
      hookLink.restore()
      let closed = try await Self.eventually("the webhook's breaker closes") { try await admin() == .closed }
      print("chaos: the webhook breaker closed \(closed) after its link came back")

      // 5. The network between subscriber b and instance b goes away for 3 s.
      subLink.cut()
      try await Task.sleep(for: .seconds(3))
      let seenBefore = record.with { $0.seen["b"]?.count ?? 0 }
      subLink.restore()
      let relinked = ContinuousClock.now
      _ = try await Self.eventually("subscriber b receives again after its link is back") { record.with { ($0.seen["b"]?.count ?? 0) > seenBefore } }
      print("chaos: subscriber b received again \(ContinuousClock.now - relinked) after its link to instance b came back (cut 3 s)")

      writing.clear()
      try await Task.sleep(for: .milliseconds(500))  // the writers' last calls end (5 s timeouts at most)
      let final = record.with { $0.acknowledged }
      let caughtUp = try await Self.eventually("both subscribers have every acknowledged write") {
        record.with { s in ["a", "b"].allSatisfy { final.isSubset(of: Set((s.seen[$0] ?? []).map(\.1))) } }
      }
      print("chaos: both subscribers had every acknowledged write \(caughtUp) after the load stopped")
      _ = try await Self.eventually("the webhook has every acknowledged write") {
        let delivered = ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").split(separator: "\n")
          .compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }.compactMap { $0["stream_id"] as? String }
        return final.isSubset(of: Set(delivered))
      }
      group.cancelAll()
    }
    let final = record.with { $0 }
    let delivered = ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").split(separator: "\n")
      .compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }.compactMap { $0["position"] as? Int }
    print("chaos: \(final.acknowledged.count) writes acknowledged, \(final.writeErrors) failed attempts, \(final.seen["a"]?.count ?? 0) and \(final.seen["b"]?.count ?? 0) events seen, \(delivered.count) webhook deliveries")
    #expect(final.acknowledged.count > 50)
    #expect(final.writeErrors > 0, "the faults should have failed some writes")
    #expect(final.violations.isEmpty, "\(final.violations.prefix(5))")
    for name in ["a", "b"] {
      let seen = final.seen[name] ?? []
      #expect(Set(seen.map(\.1)).count == seen.count, "cursor subscriber \(name) saw a student twice")
    }
    // At least once: after instance a's restart its webhook resumes from its checkpoint and
    // delivers some events again, in order. What must hold: every event delivered for the first
    // time comes after all the events delivered before it.
    var last = 0
    var deliveredOnce = Set<Int>()
    var outOfOrder = 0
    for p in delivered {
      if deliveredOnce.insert(p).inserted, p < last { outOfOrder += 1 }
      last = max(last, p)
    }
    print("chaos: \(delivered.count - deliveredOnce.count) webhook deliveries were repeats after the restart")
    #expect(outOfOrder == 0, "webhook deliveries out of order: \(outOfOrder)")
    await a.kill()
    await b.kill()
    await receiver.kill()
    dbLink.stop()
    hookLink.stop()
    await pg.stop()
    try? FileManager.default.removeItem(at: dir)
  }
}

/// Whether the writers go on.
final class Flag: Sendable {
  private let value = Mutex(true)
  var isSet: Bool { value.withLock { $0 } }
  func clear() { value.withLock { $0 = false } }
}
