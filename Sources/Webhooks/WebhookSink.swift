package import EventConsumers
package import EventRelay
internal import EventStore
package import Foundation
package import Logging
package import ProtoDescriptors
package import Resilience

/// Delivers the log's events to an HTTP endpoint, for systems that cannot speak gRPC: one POST
/// per event, in log order, at least once (a consumer group keeps its checkpoint), signed with
/// ``WebhookSignature``. 2xx is delivered; 408, 429, 5xx and network failures count against the
/// target's ``CircuitBreaker`` and are retried with backoff until they succeed (while the
/// breaker is open, delivery waits: a target that is down parks nothing); any other status is
/// the event's fault: retried by the consumer a few times, then parked as a dead letter.
package final class WebhookSink: Sendable {
  package struct Settings: Sendable {
    package var url: URL
    package var secret: [UInt8]
    /// Only these event types (all when empty).
    package var eventTypes: Set<String> = []
    package var timeout: Duration = .seconds(10)
    package var breaker = CircuitBreaker.Settings()
    package var consumer = EventConsumer.Settings()
    /// Runs around each delivery (a consumer span in the event's trace), when set.
    package var instrumentation: (any EventInstrumentation)?

    package init(url: URL, secret: [UInt8]) {
      self.url = url
      self.secret = secret
    }
  }

  /// A delivery the endpoint refused for good (a 4xx other than 408 and 429).
  struct Refused: Error, CustomStringConvertible {
    let status: Int
    var description: String { "the endpoint answered \(status)" }
  }

  package let name: String
  package let settings: Settings
  package let breaker: CircuitBreaker
  private let poster: HTTPPoster
  private let codec: DynamicCodec?
  private let logger: Logger
  private let consumer: EventConsumer

  /// - Parameters:
  ///   - name: names the consumer group (`consumer:webhook.<name>`) and the breaker.
  ///   - codec: renders payloads as proto3 JSON when it knows their type.
  package init(name: String, relay: EventRelay, settings: Settings, codec: DynamicCodec?, logger: Logger) throws {
    self.name = name
    self.settings = settings
    self.codec = codec
    self.logger = logger
    poster = try HTTPPoster()
    let breaker = CircuitBreaker(target: "webhook:" + name, settings: settings.breaker)
    self.breaker = breaker
    let holder = Holder()
    let consumer = EventConsumer(
      name: "webhook." + name, relay: relay, filter: EventFilter(eventTypes: settings.eventTypes), settings: settings.consumer
    ) { event in try await holder.sink!.deliver(event) }
    self.consumer = settings.instrumentation.map { consumer.instrumented(with: $0) } ?? consumer
    holder.sink = self
  }

  /// Delivers until cancelled.
  package func run() async throws {
    defer { Task { [poster] in await poster.shutdown() } }
    try await consumer.run()
  }

  /// Lets the consumer reach back to the sink it was made for.
  final class Holder: @unchecked Sendable {
    weak var sink: WebhookSink?
  }

  /// Delivers one event: returns once the endpoint took it, throws ``Refused`` when it refused
  /// it for good. Transient failures are retried here, with backoff and jitter, through the
  /// breaker (so a target that is down parks nothing).
  func deliver(_ event: StoredEvent) async throws {
    let body = body(event)
    var backoff = Duration.milliseconds(100)
    while true {
      do {
        try breaker.admit()
      } catch {
        try await Task.sleep(for: error.retryAfter)
        continue
      }
      var failure: String
      do {
        let signature = WebhookSignature.sign(body, secret: settings.secret, timestamp: Int64(Date().timeIntervalSince1970))
        let status = try await poster.post(settings.url, body: body, headers: [
          ("Content-Type", "application/json"), (WebhookSignature.header, signature),
          ("Quad-Event-Position", String(event.position)), ("Quad-Event-Type", event.type),
        ], timeout: settings.timeout)
        switch status {
        case 200..<300:
          breaker.record(success: true)
          return
        case 408, 429, 500...:
          failure = "status \(status)"
        default:
          breaker.record(success: true)  // the target answers; this event is the problem
          throw Refused(status: status)
        }
      } catch let refused as Refused {
        throw refused
      } catch let cancelled as CancellationError {
        breaker.record(success: true)
        throw cancelled
      } catch {
        failure = "\(error)"
      }
      breaker.record(success: false)
      logger.warning("webhook delivery failed; retrying", metadata: ["webhook": "\(name)", "position": "\(event.position)", "error": "\(failure)"])
      try await Task.sleep(for: backoff * Double.random(in: 0.5...1.0))
      backoff = min(backoff * 2, .seconds(10))
    }
  }

  /// The delivery's JSON: where the event sits in the log, its type and stream, when it was
  /// recorded, its payload (base64, and as proto3 JSON when the type is known) and metadata.
  func body(_ event: StoredEvent) -> [UInt8] {
    var object: [String: Any] = [
      "position": event.position, "event_type": event.type, "stream_type": event.stream.type, "stream_id": event.stream.id,
      "stream_version": event.version, "recorded_at_us": event.recordedAtMicroseconds,
      "payload_base64": Data(event.payload).base64EncodedString(),
    ]
    if let codec, let json = try? codec.json(fromBinary: event.payload, type: event.type),
      let parsed = try? JSONSerialization.jsonObject(with: Data(json.utf8))
    {
      object["payload"] = parsed
    }
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
    return [UInt8](data)
  }
}
