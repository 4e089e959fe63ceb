internal import CampusContracts
internal import EventsService
internal import Foundation
internal import GRPCWire
internal import QuadProtobuf
internal import QuadRPC
internal import Testing
internal import TestSupport

/// `quad serve --otlp-endpoint` against a collector written with grpcio and the official
/// opentelemetry-proto package: a caller's `traceparent` is continued by the server span, stored
/// on the events the call wrote, and restored in the consumers' and the subscriber's spans; the
/// spans reach the collector over OTLP/gRPC even when its first export fails.
@Suite("Tracing: W3C traceparent through calls, events, consumers and subscribers, exported over OTLP/gRPC")
struct TracingTests {
  static let collector = repositoryRoot.appendingPathComponent("Tests/OTLPTracingTests/python/otlp_collector.py").path

  struct Failure: Error, CustomStringConvertible { let description: String }

  /// One span as the collector decoded it.
  struct Received {
    let json: [String: Any]
    var traceID: String { json["trace_id"] as? String ?? "" }
    var spanID: String { json["span_id"] as? String ?? "" }
    var parentID: String { json["parent_span_id"] as? String ?? "" }
    var name: String { json["name"] as? String ?? "" }
    var kind: Int { json["kind"] as? Int ?? -1 }
    var flags: Int { json["flags"] as? Int ?? -1 }
    var attributes: [String: Any] { json["attributes"] as? [String: Any] ?? [:] }
    var resource: [String: Any] { json["resource"] as? [String: Any] ?? [:] }
  }

  static func received(_ path: String) -> [Received] {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
    return text.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }.map(Received.init)
  }

  /// Waits (up to 60 s) until the collector has spans that satisfy `condition`.
  static func spans(_ path: String, _ what: String, until condition: ([Received]) -> Bool) async throws -> [Received] {
    let deadline = ContinuousClock.now + .seconds(60)
    while ContinuousClock.now < deadline {
      let spans = received(path)
      if condition(spans) { return spans }
      try await Task.sleep(for: .milliseconds(200))
    }
    throw Failure(description: "the collector never received \(what); it has: \(received(path).map { "\($0.name) \($0.traceID)/\($0.parentID)" })")
  }

  static func options(traceparent: String?) -> CallOptions {
    var o = CallOptions(timeout: .seconds(30))
    if let traceparent { o.metadata.add("traceparent", traceparent) }
    return o
  }

  @Test("traceparent continued by the server span, stored on the event, restored in consumer and subscriber spans; unsampled traces propagate unrecorded; a malformed one starts a new trace; the first export's failure is retried")
  func traced() async throws {
    let pg = try await TestPostgres.start()
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quad-tracing-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let output = dir.appendingPathComponent("spans.jsonl").path
    let collector = try await BackgroundProcess.start(["python3", Self.collector, output, "--fail-first", "1"])
    guard collector.firstLine.hasPrefix("listening "), let collectorPort = Int(collector.firstLine.dropFirst("listening ".count)) else {
      throw Failure(description: "the collector did not start: \(collector.firstLine)")
    }
    let log = dir.appendingPathComponent("serve.log").path
    let (server, port) = try await QuadServe.start(
      ["--database-url", pg.conninfo, "--otlp-endpoint", "http://127.0.0.1:\(collectorPort)", "--otlp-service-name", "quad-tracing-test"], log: log)
    #expect(server.firstLine.contains("; traces to http://127.0.0.1:\(collectorPort))"), "\(server.firstLine)")
    let client = try GRPCClient(target: "127.0.0.1:\(port)")
    let students = Campus_Students_V1_Students.Client(client)

    // An unsampled trace first: propagated onto its event, never recorded.
    let quietTrace = "0af7651916cd43dd8448eb211c80319c"
    var quiet = Campus_Students_V1_RegisterStudentRequest()
    quiet.studentId = "T0"
    quiet.givenName = "Quiet"
    quiet.familyName = "Trace"
    quiet.email = "t0@uni.example.edu"
    _ = try await students.registerStudent(quiet, options: Self.options(traceparent: "00-\(quietTrace)-b7ad6b7169203331-00"))

    // A malformed traceparent is ignored: the call succeeds in a trace of its own.
    var stray = quiet
    stray.studentId = "T9"
    stray.email = "t9@uni.example.edu"
    _ = try await students.registerStudent(stray, options: Self.options(traceparent: "00-not-a-trace-01"))

    // The traced calls: register, issue a card (consumed by scans.cards), record a scan with it
    // (consumed by the analytics projection, a page consumer).
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    let caller = "00f067aa0ba902b7"
    let traced = Self.options(traceparent: "00-\(trace)-\(caller)-01")
    var register = Campus_Students_V1_RegisterStudentRequest()
    register.studentId = "T1"
    register.givenName = "Tracy"
    register.familyName = "Spanner"
    register.email = "t1@uni.example.edu"
    _ = try await students.registerStudent(register, options: traced)
    var issue = Campus_Students_V1_IssueCardRequest()
    issue.studentId = "T1"
    issue.expectedVersion = 1
    issue.cardId = "CARD-T1"
    _ = try await students.issueCard(issue, options: traced)

    // The events carry the server spans' traceparent: the caller's trace, the server's span.
    var request = Quad_Events_V1_SubscribeRequest()
    request.start = .first
    var envelopes: [Quad_Events_V1_EventEnvelope] = []
    do {
      try await Quad_Events_V1_Events.Client(client).subscribe(request, options: CallOptions(timeout: .seconds(3))) { stream in
        for try await e in stream { envelopes.append(e) }
      }
    } catch {}
    let byStudent = Dictionary(grouping: envelopes, by: \.streamId)
    let registered = try #require(byStudent["T1"]?.first { $0.eventType == "campus.students.v1.StudentRegistered" })
    let cardIssued = try #require(byStudent["T1"]?.first { $0.eventType == "campus.students.v1.CardIssued" })
    let parts = registered.metadata.traceparent.split(separator: "-").map(String.init)
    #expect(parts.count == 4 && parts[0] == "00" && parts[1] == trace && parts[2] != caller && parts[3] == "01", "\(registered.metadata.traceparent)")
    let quietEvent = try #require(byStudent["T0"]?.first)
    #expect(quietEvent.metadata.traceparent.hasPrefix("00-\(quietTrace)-") && quietEvent.metadata.traceparent.hasSuffix("-00"), "\(quietEvent.metadata.traceparent)")
    let strayEvent = try #require(byStudent["T9"]?.first)
    #expect(strayEvent.metadata.traceparent.count == 55 && !strayEvent.metadata.traceparent.contains("not-a-trace"), "\(strayEvent.metadata.traceparent)")

    var scan = Campus_Scans_V1_RecordScanRequest()
    scan.scanId = "trace-1"
    scan.cardId = "CARD-T1"
    scan.location = "library"
    scan.direction = .in
    scan.scannedAt = Google_Protobuf_Timestamp(microseconds: Int64(Date().timeIntervalSince1970 * 1_000_000) - 60_000_000)
    scan.deviceId = "door-lib"
    _ = try await Campus_Scans_V1_Scans.Client(client).recordScan(scan, options: traced)

    // The collector gets: a server span per call (children of the caller's span), a consumer span
    // per consumed event (children of the span that wrote it), a producer span per delivery.
    let spans = try await Self.spans(output, "the traced calls' server, consumer and subscriber spans") { spans in
      let inTrace = spans.filter { $0.traceID == trace }
      return inTrace.filter { $0.kind == 2 }.count >= 3 && inTrace.contains { $0.kind == 5 && $0.name == "process campus.scans.v1.ScanRecorded" }
        && inTrace.contains { $0.kind == 5 && $0.name == "process campus.students.v1.CardIssued" }
        && inTrace.filter { $0.kind == 4 }.count >= 2
    }
    let inTrace = spans.filter { $0.traceID == trace }
    let servers = inTrace.filter { $0.kind == 2 }
    let registerSpan = try #require(servers.first { $0.name == "campus.students.v1.Students/RegisterStudent" })
    #expect(registerSpan.parentID == caller)
    #expect(registerSpan.spanID == parts[2], "the event's traceparent names the server span")
    #expect(registerSpan.flags == 0x301, "sampled, with a remote parent: \(registerSpan.flags)")
    #expect(registerSpan.attributes["rpc.system"] as? String == "grpc" && registerSpan.attributes["rpc.method"] as? String == "RegisterStudent")
    #expect(registerSpan.attributes["rpc.grpc.status_code"] as? Int == 0)
    #expect(registerSpan.resource["service.name"] as? String == "quad-tracing-test")
    #expect(Set(servers.map(\.name)) == ["campus.students.v1.Students/RegisterStudent", "campus.students.v1.Students/IssueCard", "campus.scans.v1.Scans/RecordScan"])
    #expect(servers.allSatisfy { $0.parentID == caller })

    let issueSpan = try #require(servers.first { $0.name == "campus.students.v1.Students/IssueCard" })
    let cardConsumer = try #require(inTrace.first { $0.name == "process campus.students.v1.CardIssued" })
    #expect(cardConsumer.parentID == issueSpan.spanID, "the consumer span is a child of the span that wrote the event")
    #expect(cardConsumer.attributes["messaging.consumer.group.name"] as? String == "scans.cards")
    #expect(cardConsumer.attributes["quad.event.position"] as? Int == Int(cardIssued.cursor.position))
    let scanSpan = try #require(servers.first { $0.name == "campus.scans.v1.Scans/RecordScan" })
    let projection = try #require(inTrace.first { $0.name == "process campus.scans.v1.ScanRecorded" })
    #expect(projection.parentID == scanSpan.spanID && projection.attributes["messaging.consumer.group.name"] as? String == "analytics")
    let deliveries = inTrace.filter { $0.kind == 4 }
    #expect(deliveries.contains { $0.name == "send campus.students.v1.StudentRegistered" && $0.parentID == registerSpan.spanID })
    #expect(deliveries.contains { $0.name == "send campus.students.v1.CardIssued" && $0.parentID == issueSpan.spanID })

    // Nothing of the unsampled trace was recorded; the malformed one's call has a root span.
    let all = Self.received(output)
    #expect(!all.contains { $0.traceID == quietTrace })
    #expect(all.contains { $0.name == "campus.students.v1.Students/RegisterStudent" && $0.parentID.isEmpty && strayEvent.metadata.traceparent.contains($0.traceID) })

    await client.close()
    await server.kill()  // SIGTERM: a graceful shutdown
    await collector.kill()
    await pg.stop()
    // The first export failed (UNAVAILABLE) and was retried: the log says so once.
    let lines = try String(contentsOfFile: log, encoding: .utf8)
    #expect(lines.contains("trace export failed") && lines.contains("the collector accepts spans again"), "\(lines.suffix(2000))")
    try? FileManager.default.removeItem(at: dir)
  }
}
