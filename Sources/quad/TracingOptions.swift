internal import ArgumentParser
internal import Foundation
internal import Logging
internal import OTLPTracing
internal import QuadRPC
internal import ServiceLifecycle

/// `quad serve`'s tracing: a span for every call, consumer handling and subscriber delivery,
/// exported to an OpenTelemetry collector over OTLP/gRPC when an endpoint is given.
struct TracingOptions: ParsableArguments {
  @Option(name: .customLong("otlp-endpoint"), help: "The OpenTelemetry collector to export spans to over OTLP/gRPC: host:port, http://host:port or https://host:port (default: $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else $OTEL_EXPORTER_OTLP_ENDPOINT; none: no spans are recorded).")
  var endpoint: String?

  @Option(name: .customLong("otlp-ca"), help: "The CA certificates (PEM) an https collector is verified with (default: the system's).")
  var caFile: String?

  @Option(name: .customLong("otlp-service-name"), help: "The service.name resource attribute of the exported spans (default: $OTEL_SERVICE_NAME, else quad).")
  var serviceName: String?

  func validate() throws {
    if let endpoint = resolvedEndpoint { _ = try Self.parse(endpoint) }
    if let name = serviceName, name.isEmpty || name.utf8.count > 255 { throw ValidationError("--otlp-service-name must be 1 to 255 bytes") }
  }

  /// The flag, else OTel's standard environment variables.
  var resolvedEndpoint: String? {
    let env = ProcessInfo.processInfo.environment
    return [endpoint, env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"], env["OTEL_EXPORTER_OTLP_ENDPOINT"]].lazy.compactMap { $0 }.first { !$0.isEmpty }
  }

  /// `host:port` and whether to use TLS.
  static func parse(_ endpoint: String) throws -> (target: String, tls: Bool) {
    var rest = Substring(endpoint)
    var tls = false
    if let range = rest.range(of: "://") {
      let scheme = rest[..<range.lowerBound].lowercased()
      guard ["http", "https"].contains(scheme) else { throw ValidationError("--otlp-endpoint: the scheme must be http or https (\(endpoint))") }
      tls = scheme == "https"
      rest = rest[range.upperBound...]
      while rest.hasSuffix("/") { rest = rest.dropLast() }
    }
    guard let colon = rest.lastIndex(of: ":"), !rest[..<colon].isEmpty, let port = Int(rest[rest.index(after: colon)...]),
      (1...65_535).contains(port), !rest.contains("/")
    else { throw ValidationError("--otlp-endpoint must be host:port, http://host:port or https://host:port (\(endpoint))") }
    return (String(rest), tls)
  }

  /// The tracer, when an endpoint is configured (else nil: nothing is recorded).
  func tracer() -> QuadTracer? { resolvedEndpoint == nil ? nil : QuadTracer() }

  /// The exporter of `tracer`'s spans to the configured endpoint, for the server on `port`.
  func exporter(for tracer: QuadTracer, port: Int) throws -> OTLPExporter {
    let endpoint = resolvedEndpoint ?? ""
    let (target, tls) = try Self.parse(endpoint)
    let name = serviceName ?? ProcessInfo.processInfo.environment["OTEL_SERVICE_NAME"].flatMap { $0.isEmpty ? nil : $0 } ?? "quad"
    do {
      return try OTLPExporter(
        tracer: tracer, endpoint: target, serviceName: name,
        resource: ["service.instance.id": "\(ProcessInfo.processInfo.hostName):\(port)", "telemetry.sdk.name": "quad", "telemetry.sdk.language": "swift"],
        tls: tls ? ClientTLS(trustRootsPath: caFile) : nil, logger: Logger(label: "quad.tracing"))
    } catch {
      throw ServeFailure(message: "quad serve: --otlp-endpoint \(endpoint): \(error.message)")
    }
  }

  /// For the ready line.
  var summary: String { resolvedEndpoint.map { "; traces to \($0)" } ?? "" }
}

/// Exports spans until the group shuts down (then sends what is left).
struct TraceExportService: Service {
  let exporter: OTLPExporter

  func run() async throws {
    await cancelWhenGracefulShutdown { await exporter.run() }
  }
}
