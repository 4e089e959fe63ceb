internal import AdminService
internal import CampusContracts
internal import EventsService
internal import Foundation
internal import GRPCWire
internal import QuadProtobuf
internal import QuadRPC
internal import Testing
internal import TestSupport
internal import Webhooks

/// Webhook deliveries from `quad serve` to a real HTTP receiver (the verifier example in
/// `deploy/webhooks`): signed, in log order, each once on the receiver's side after retries,
/// and held back, not lost, while the receiver is down (the breaker opens, then closes).
@Suite("Webhooks", .serialized)
struct WebhookDeliveryTests {
  static let quad = repositoryRoot.appendingPathComponent(".build/debug/quad").path
  static let verifier = repositoryRoot.appendingPathComponent("deploy/webhooks/verify_webhook.py").path

  struct Failure: Error, CustomStringConvertible { let description: String }

  @Test("Swift signs, Python's verifier accepts; a changed body, another secret or an old timestamp is refused")
  func signatures() async throws {
    let body = Array(#"{"position":7,"event_type":"campus.students.v1.StudentRegistered"}"#.utf8)
    let secret = Array("s3cret".utf8)
    let now = Int64(Date().timeIntervalSince1970)
    let header = WebhookSignature.sign(body, secret: secret, timestamp: now)
    #expect(WebhookSignature.verify(header, body: body, secret: secret, now: now))
    #expect(!WebhookSignature.verify(header, body: body + [32], secret: secret, now: now))
    #expect(!WebhookSignature.verify(header, body: body, secret: Array("other".utf8), now: now))
    #expect(!WebhookSignature.verify(header, body: body, secret: secret, now: now + 301), "a replay after the tolerance")
    let dir = URL(fileURLWithPath: Self.verifier).deletingLastPathComponent().path
    let script = """
      import sys; sys.path.insert(0, sys.argv[1]); from verify_webhook import verify
      body = sys.argv[3].encode()
      print(verify(b"s3cret", sys.argv[2], body), verify(b"s3cret", sys.argv[2], body + b" "), verify(b"other", sys.argv[2], body),
            verify(b"s3cret", sys.argv[2], body, now=\(now + 301)))
      """
    let (status, output) = try await runProcess(["python3", "-c", script, dir, header, String(decoding: body, as: UTF8.self)])
    #expect(status == 0 && output == "True False False False\n", "\(output)")
  }

  @Test("Every event reaches the receiver in order after 503s, a receiver that is down opens the breaker and delays delivery, and nothing is lost or parked")
  func delivery() async throws {
    let pg = try await TestPostgres.start()
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quad-webhook-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let secretFile = dir.appendingPathComponent("secret").path
    let out = dir.appendingPathComponent("received.jsonl").path
    try "webhook-secret-\(UUID().uuidString)\n".write(toFile: secretFile, atomically: true, encoding: .utf8)
    var receiver = try await BackgroundProcess.start(["python3", Self.verifier, "--port", "0", "--secret-file", secretFile, "--out", out, "--fail-first", "3"])
    let hookPort = try #require(Int(receiver.firstLine), "receiver: \(receiver.firstLine)")
    let server = try await BackgroundProcess.start([
      Self.quad, "serve", "--port", "0", "--metrics-port", "0", "--database-url", pg.conninfo,
      "--webhook", "campus=http://127.0.0.1:\(hookPort)/hook", "--webhook-secret-file", secretFile,
      "--webhook-events", "campus.students.v1.StudentRegistered,campus.students.v1.CardIssued",
    ])
    guard server.firstLine.hasPrefix("quad serve: serving"), let port = server.firstLine.split(separator: ":").last.flatMap({ Int($0) }),
      let metricsStart = server.firstLine.range(of: "(metrics at http://0.0.0.0:"),
      let metricsPort = server.firstLine[metricsStart.upperBound...].split(separator: "/").first.flatMap({ Int($0) })
    else { throw Failure(description: "quad serve did not start: \(server.firstLine)") }
    let grpc = try GRPCClient(target: "127.0.0.1:\(port)")
    let students = Campus_Students_V1_Students.Client(grpc)
    func register(_ id: String) async throws {
      var r = Campus_Students_V1_RegisterStudentRequest()
      r.studentId = id
      r.givenName = "Web"
      r.familyName = "Hook"
      r.email = "\(id.lowercased())@uni.example.edu"
      _ = try await students.registerStudent(r, options: CallOptions(timeout: .seconds(30)))
    }
    func received() -> [[String: Any]] {
      ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").split(separator: "\n")
        .compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }
    func eventually(_ what: String, seconds: Int = 60, _ condition: () async throws -> Bool) async throws {
      let deadline = ContinuousClock.now + .seconds(Int64(seconds))
      while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(200))
      }
      throw Failure(description: "timed out waiting until \(what)")
    }
    func scrape() async throws -> String {
      try await runProcess(["python3", "-c", "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())",
                            "http://127.0.0.1:\(metricsPort)/metrics"]).output
    }

    // Three 503s first, then every registration arrives, in order, signed (the receiver checks).
    for i in 1...3 { try await register("W\(i)") }
    try await eventually("three deliveries") { received().count >= 3 }
    var got = received()
    #expect(got.map { $0["stream_id"] as? String } == ["W1", "W2", "W3"])
    #expect(got.allSatisfy { $0["event_type"] as? String == "campus.students.v1.StudentRegistered" })
    let payload = try #require(got.first?["payload"] as? [String: Any])
    #expect(payload["studentId"] as? String == "W1", "the payload as proto3 JSON: \(payload)")
    #expect((payload["givenName"] as? String)?.hasPrefix("quad-enc:v1:") == true, "personal fields leave sealed: \(payload)")
    let positions = got.compactMap { $0["position"] as? Int }
    #expect(positions == positions.sorted() && Set(positions).count == positions.count)

    // The receiver goes away: deliveries fail, the breaker opens; events wait.
    await receiver.kill()
    for i in 4...6 { try await register("W\(i)") }
    try await eventually("the breaker opens") {
      try await scrape().contains("quad_circuit_breaker_state{target=\"webhook:campus\"} 2")
    }
    // The admin RPC shows it too.
    let admin = Quad_Admin_V1_Admin.Client(grpc)
    let open = try await admin.listCircuitBreakers(Quad_Admin_V1_ListCircuitBreakersRequest(), options: CallOptions(timeout: .seconds(10)))
    let breaker = try #require(open.breakers.first { $0.target == "webhook:campus" })
    #expect(breaker.state == .open || breaker.state == .halfOpen, "\(breaker.state)")
    #expect(breaker.opened >= 1 && breaker.failureThreshold == 5)
    // Back on the same port: the breaker lets a probe through, closes, and the rest follow.
    receiver = try await BackgroundProcess.start(["python3", Self.verifier, "--port", String(hookPort), "--secret-file", secretFile, "--out", out])
    #expect(receiver.firstLine == String(hookPort))
    try await eventually("all six delivered") { received().count >= 6 }
    got = received()
    #expect(got.map { $0["stream_id"] as? String } == ["W1", "W2", "W3", "W4", "W5", "W6"], "each once, in order")
    try await eventually("the breaker closes") {
      try await scrape().contains("quad_circuit_breaker_state{target=\"webhook:campus\"} 0")
    }
    #expect(try await admin.listCircuitBreakers(Quad_Admin_V1_ListCircuitBreakersRequest(), options: CallOptions(timeout: .seconds(10)))
      .breakers.first { $0.target == "webhook:campus" }?.state == .closed)
    // Nothing was parked.
    let parked = try await Quad_Events_V1_Events.Client(grpc).listParked(Quad_Events_V1_ListParkedRequest(), options: CallOptions(timeout: .seconds(10)))
    #expect(parked.events.isEmpty, "\(parked.events.map(\.consumer))")

    await grpc.close()
    await server.kill()
    await receiver.kill()
    await pg.stop()
    try? FileManager.default.removeItem(at: dir)
  }
}
