internal import ArgumentParser
internal import EventRelay
internal import Foundation
internal import Logging
internal import ProtoDescriptors
internal import Resilience
internal import ServiceLifecycle
internal import Webhooks

/// `quad serve`'s webhook deliveries: the log's events POSTed, signed, to HTTP endpoints.
struct WebhookOptions: ParsableArguments {
  @Option(name: .customLong("webhook"), help: "Deliver events to NAME=URL (repeatable; NAME keeps its checkpoint across restarts).")
  var webhooks: [String] = []

  @Option(name: .customLong("webhook-secret-file"), help: "The shared secret the deliveries are signed with (HMAC-SHA256; required with --webhook).")
  var secretFile: String?

  @Option(name: .customLong("webhook-events"), help: "Only these event types, comma-separated (default: all).")
  var eventTypes: String?

  @Option(name: .customLong("webhook-breaker-failures"), help: "Failed deliveries in a row that open a webhook's circuit breaker.")
  var breakerFailures = 5

  @Option(name: .customLong("webhook-breaker-open-seconds"), help: "How long an open webhook breaker waits before it lets one delivery probe the receiver.")
  var breakerOpenSeconds = 5.0

  func validate() throws {
    guard webhooks.isEmpty || secretFile != nil else { throw ValidationError("--webhook needs --webhook-secret-file") }
    guard (1...1000).contains(breakerFailures) else { throw ValidationError("--webhook-breaker-failures must be 1 to 1000") }
    guard (0.1...3600).contains(breakerOpenSeconds) else { throw ValidationError("--webhook-breaker-open-seconds must be 0.1 to 3600") }
    var names = Set<String>()
    for entry in webhooks {
      let (name, url) = try Self.split(entry)
      guard names.insert(name).inserted else { throw ValidationError("--webhook \(name) is given twice") }
      _ = url
    }
  }

  static func split(_ entry: String) throws -> (String, URL) {
    let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
    guard parts.count == 2, !parts[0].isEmpty, parts[0].utf8.count <= 64,
      parts[0].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." })
    else { throw ValidationError("--webhook must be NAME=URL, NAME of letters, digits, '-', '_' and '.' (\(entry))") }
    guard let url = URL(string: parts[1]), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host?.isEmpty == false else {
      throw ValidationError("--webhook \(parts[0]): not an http or https URL: \(parts[1])")
    }
    return (parts[0], url)
  }

  /// The sinks, one per webhook; the secret file is read now.
  func sinks(relay: EventRelay, codec: DynamicCodec?, instrumentation: (any EventInstrumentation)? = nil) throws -> [WebhookSink] {
    guard !webhooks.isEmpty, let secretFile else { return [] }
    guard let data = FileManager.default.contents(atPath: secretFile), !data.isEmpty else {
      throw ServeFailure(message: "quad serve: --webhook-secret-file \(secretFile): cannot read the file, or it is empty")
    }
    let secret = [UInt8](data).reversed().drop { $0 == 10 || $0 == 13 }.reversed()  // a trailing newline is not the secret
    let types = Set((eventTypes ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
    return try webhooks.map { entry in
      let (name, url) = try Self.split(entry)
      var settings = WebhookSink.Settings(url: url, secret: Array(secret))
      settings.eventTypes = types
      settings.breaker = CircuitBreaker.Settings(failureThreshold: breakerFailures, openDuration: .milliseconds(Int64(breakerOpenSeconds * 1000)))
      settings.instrumentation = instrumentation
      return try WebhookSink(name: name, relay: relay, settings: settings, codec: codec, logger: Logger(label: "quad.webhooks"))
    }
  }
}

/// One webhook's deliveries until the group shuts down.
struct WebhookService: Service {
  let sink: WebhookSink

  func run() async throws {
    try await cancelWhenGracefulShutdown { try await sink.run() }
  }
}
