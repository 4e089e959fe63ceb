internal import AdminService
internal import ArgumentParser
internal import CampusSupport
internal import EmbeddedPostgres
internal import EventRelay
internal import EventStore
internal import EventsService
internal import Foundation
internal import HealthService
internal import Logging
internal import Metrics
internal import NIOCore
internal import Observability
internal import OTLPTracing
internal import Postgres
internal import Prometheus
internal import Scans
internal import ProtoDescriptors
internal import QuadRPC
internal import ServiceLifecycle
internal import UnixSignals
internal import Webhooks

/// `quad serve`: the main job. The event log and its services on one port, on the PostgreSQL
/// named by `--database-url` (or `QUAD_DATABASE_URL`), or on a private cluster in `--data-dir`.
/// SIGTERM and SIGINT drain calls in flight, then stop the relay and the cluster.
struct ServeCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "serve",
    abstract: "Serve Quad: the campus contexts and the event log (quad.events.v1.Events), health and reflection, on PostgreSQL."
  )

  @Option(help: "The TCP port to listen on (all local addresses; 0 picks a free one).")
  var port: Int = 50051

  @Option(name: .customLong("database-url"), help: "PostgreSQL to use (libpq URL or key=value string; default: $QUAD_DATABASE_URL, else a private cluster in --data-dir).")
  var databaseURL: String?

  @Option(name: .customLong("data-dir"), help: "Where the private PostgreSQL cluster lives when no database URL is given.")
  var dataDirectory = ".quad"

  @Option(name: .customLong("pool-size"), help: "PostgreSQL connections at most.")
  var poolSize = 16

  @Option(name: .customLong("relay-tail-mib"), help: "Memory the relay keeps the newest events in, shared by all subscribers (MiB).")
  var relayTailMiB = 64

  @Option(help: "The campus contexts to serve, comma-separated (students, scans, analytics, accounts, cards); each can be deployed on its own, cards only with students and accounts.")
  var contexts = CampusContext.allCases.map(\.rawValue).joined(separator: ",")

  @Option(name: .customLong("scan-retention-days"), help: "Anonymise scans older than this many days (whole UTC days; 0: keep them as they are), at start and every hour.")
  var scanRetentionDays = 0

  @Option(help: "Event-loop threads serving gRPC (default: one per core).")
  var threads = System.coreCount

  @Option(name: .customLong("metrics-port"), help: "The TCP port of the Prometheus endpoint (GET /metrics; 0 picks a free one).")
  var metricsPort = 9464

  @Option(name: .customLong("log-format"), help: "Log lines on standard error: json (one object per line) or text.")
  var logFormat = "json"

  @Option(name: .customLong("log-level"), help: "The least severe level logged: trace, debug, info, notice, warning, error, critical.")
  var logLevel = "info"

  @OptionGroup(title: "Security")
  var security: SecurityOptions

  @OptionGroup(title: "Webhooks")
  var webhooks: WebhookOptions

  @OptionGroup(title: "Tracing")
  var tracing: TracingOptions

  func validate() throws {
    guard (0...65_535).contains(port) else { throw ValidationError("--port must be 0 to 65535") }
    guard poolSize >= 2 else { throw ValidationError("--pool-size must be at least 2") }
    guard (1...65_536).contains(relayTailMiB) else { throw ValidationError("--relay-tail-mib must be 1 to 65536") }
    guard !dataDirectory.isEmpty else { throw ValidationError("--data-dir must not be empty") }
    do { _ = try CampusContext.parse(contexts) } catch { throw ValidationError("\(error)".replacingOccurrences(of: "quad serve: ", with: "")) }
    guard (0...36_500).contains(scanRetentionDays) else { throw ValidationError("--scan-retention-days must be 0 to 36500") }
    guard (1...256).contains(threads) else { throw ValidationError("--threads must be 1 to 256") }
    guard (0...65_535).contains(metricsPort) else { throw ValidationError("--metrics-port must be 0 to 65535") }
    guard ["json", "text"].contains(logFormat) else { throw ValidationError("--log-format must be json or text") }
    try LogSetup.validate(level: logLevel)
  }

  func run() async throws {
    // Logs go to standard error; standard output carries the one ready line scripts wait for.
    LogSetup.bootstrap(level: logLevel, json: logFormat == "json")
    let logger = Logger(label: "quad.serve")
    let registry = PrometheusCollectorRegistry()
    var factory = PrometheusMetricsFactory(registry: registry)
    factory.defaultDurationHistogramBuckets = [
      .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
      .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(10),
    ]
    MetricsSystem.bootstrap(factory)
    let secured = try await security.load()  // before the database: a bad file fails fast
    let tracer = tracing.tracer()
    let eventTracing = tracer.map { EventTracing(tracer: $0) }  // consumers', deliveries' and webhooks' spans
    let (conninfo, url, embedded) = try await database(databaseURL, dataDirectory: dataDirectory, command: "quad serve", logger: logger)
    let platform: EventPlatform
    do {
      var relay = EventRelay.Settings()
      relay.tailByteCapacity = relayTailMiB << 20
      platform = try await EventPlatform.start(
        conninfo: conninfo, poolSize: poolSize, relay: relay, instrumentation: eventTracing)
    } catch {
      try? await embedded?.stop()
      throw ServeFailure(message: "quad serve: the database at \(url == nil ? "the private cluster" : "--database-url") is not usable: \(error)")
    }
    var router = Router()
    platform.events.register(in: &router)
    let campus: CampusContexts
    do {
      campus = try await CampusContexts.start(
        try CampusContext.parse(contexts), relay: platform.relay, router: &router, instrumentation: eventTracing)
    } catch {
      platform.store.pool.shutdown()
      try? await embedded?.stop()
      throw ServeFailure(message: "quad serve: the contexts could not start: \(error)")
    }
    let served = [Quad_Events_V1_Events.serviceName] + campus.contexts.map(\.serviceName)
    let health = HealthService()
    for name in served { health.setStatus(.serving, for: name) }
    AdminService().register(in: &router)
    var routes = try withStandardServices(router, files: EventsService.protoFiles + campus.protoFiles + AdminService.protoFiles, health: health)
    if let tracer { routes.intercept(with: TracingServerInterceptor(tracer: tracer)) }  // outermost: logs carry its span
    routes.intercept(with: RPCObserver(logger: Logger(label: "quad.rpc"), methods: routes.paths))
    for interceptor in secured.interceptors { routes.intercept(with: interceptor) }
    let metrics: MetricsEndpoint
    do {
      metrics = try await MetricsEndpoint.start(registry: registry, host: "0.0.0.0", port: metricsPort)
    } catch {
      platform.store.pool.shutdown()
      try? await embedded?.stop()
      throw ServeFailure(message: "quad serve: cannot serve metrics on port \(metricsPort): \(error)")
    }
    let server: GRPCServer
    do {
      server = try await GRPCServer.start(router: routes, host: "0.0.0.0", port: port, threads: threads, tls: secured.tls)
    } catch {
      await metrics.stop()
      platform.store.pool.shutdown()
      try? await embedded?.stop()
      throw ServeFailure(message: "quad serve: cannot serve on port \(port): \(error)")
    }
    FileHandle.standardOutput.write(Data(
      "quad serve: serving \(served.joined(separator: ", ")) (metrics at http://0.0.0.0:\(metrics.port)/metrics\(tracing.summary)\(secured.summary)) on 0.0.0.0:\(server.port)\n".utf8))

    let sinks: [WebhookSink]
    let exporter: OTLPExporter?
    do {
      let codec = (try? DescriptorPool(files: EventsService.protoFiles + campus.protoFiles)).map { DynamicCodec(pool: $0, ignoreUnknownFields: true) }
      sinks = try webhooks.sinks(relay: platform.relay, codec: codec, instrumentation: eventTracing)
      exporter = try tracer.map { try tracing.exporter(for: $0, port: server.port) }
    } catch {
      try? await server.stop()
      await metrics.stop()
      platform.store.pool.shutdown()
      try? await embedded?.stop()
      throw error
    }
    var outcome: Result<Void, any Error> = .success(())
    // The exporter first: the group stops services in reverse, so it sends the last spans.
    let tracingServices = exporter.map { [ServiceGroupConfiguration.ServiceConfiguration(service: TraceExportService(exporter: $0), serviceName: "trace-export")] } ?? []
    let retention = scanRetentionDays > 0 && campus.contexts.contains(.scans)
      ? [ServiceGroupConfiguration.ServiceConfiguration(
          service: ScanRetentionService(
            retention: ScanRetention(store: platform.store, days: scanRetentionDays, logger: Logger(label: "quad.scans")), events: platform.events),
          serviceName: "scan-retention")]
      : []
    let beside = tracingServices + campus.services + retention + [
      .init(service: DatabaseHealthService(pool: platform.store.pool, health: health, services: served, logger: logger), serviceName: "database-health"),
      .init(service: MetricsSampler(metrics: PlatformMetrics(relay: platform.relay)), serviceName: "metrics"),
      .init(service: SecurityReloader(security: secured, server: server, logger: logger), serviceName: "security-reload"),
    ] + sinks.map { .init(service: WebhookService(sink: $0), serviceName: "webhook.\($0.name)") }
    do { try await runUntilSignalled(server, relay: platform.relay, health: health, logger: logger, beside: beside) } catch { outcome = .failure(error) }
    await metrics.stop()
    platform.store.pool.shutdown()
    if let embedded {
      do { try await embedded.stop() } catch { logger.error("\(error)") }
    }
    try outcome.get()
  }
}

/// The database a command uses: `--database-url`, else `QUAD_DATABASE_URL`, else the private
/// cluster in `dataDirectory` (started, or reused when it runs already).
func database(
  _ databaseURL: String?, dataDirectory: String, command: String, logger: Logger
) async throws -> (conninfo: String, url: String?, embedded: EmbeddedPostgres?) {
  if let url = databaseURL ?? ProcessInfo.processInfo.environment["QUAD_DATABASE_URL"].flatMap({ $0.isEmpty ? nil : $0 }) {
    return (url, url, nil)
  }
  do {
    let pg = try await EmbeddedPostgres.start(dataDirectory: dataDirectory)
    for note in pg.notes { logger.notice("\(note)") }
    logger.info("PostgreSQL cluster \(pg.clusterDirectory) is up (socket in \(pg.socketDirectory))")
    return (pg.conninfo, nil, pg)
  } catch let e as EmbeddedPostgres.Failure {
    throw ServeFailure(message: "\(command): \(e.description)")
  }
}

/// The event log's parts on one database: pool, migrated store, relay, events service.
struct EventPlatform {
  let store: EventStore
  let relay: EventRelay
  let events: EventsService

  static func start(
    conninfo: String, poolSize: Int, writeConcurrency: Int? = nil, relay settings: EventRelay.Settings = EventRelay.Settings(),
    instrumentation: (any EventInstrumentation)? = nil
  ) async throws -> EventPlatform {
    let pool = PostgresPool(conninfo: conninfo, maximumConnections: poolSize)
    let store = EventStore(pool: pool, writeConcurrency: writeConcurrency, upcasters: try CampusUpcasters.all())
    do {
      try await store.migrate()
    } catch {
      pool.shutdown()
      throw error
    }
    let relay = EventRelay(store: store, settings: settings)
    return EventPlatform(store: store, relay: relay, events: EventsService(relay: relay, instrumentation: instrumentation))
  }
}

/// Serves `server` with the relay (and the services `beside` it) running until SIGTERM or
/// SIGINT, then drains: the server first, then the others, the relay last.
func runUntilSignalled(
  _ server: GRPCServer, relay: EventRelay, health: HealthService, logger: Logger,
  beside: [ServiceGroupConfiguration.ServiceConfiguration] = []
) async throws {
  let group = ServiceGroup(
    configuration: ServiceGroupConfiguration(
      services: [.init(service: RelayService(relay: relay), serviceName: "relay")] + beside + [
        .init(service: GRPCServerService(server: server, health: health), successTerminationBehavior: .gracefullyShutdownGroup, serviceName: "grpc"),
      ],
      gracefulShutdownSignals: [.sigterm, .sigint],
      logger: logger))
  try await group.run()
}

/// A start-up failure quad reports in one line and exits 1 for.
struct ServeFailure: Error, CustomStringConvertible {
  let message: String
  var description: String { message }
}

/// The scan retention job: at start, then every hour, until the group shuts down.
struct ScanRetentionService: Service {
  let retention: ScanRetention
  let events: EventsService

  func run() async throws {
    await cancelWhenGracefulShutdown {
      while !Task.isCancelled {
        do {
          events.forget(rewritten: try await retention.run())
        } catch {
          Logger(label: "quad.scans").warning("scan retention failed; trying again in an hour: \(error)")
        }
        try? await Task.sleep(for: .seconds(3600))
      }
    }
  }
}

/// The gRPC server until the group shuts down; then NOT_SERVING, and calls in flight get up to
/// 10 s to finish.
struct GRPCServerService: Service {
  let server: GRPCServer
  let health: HealthService

  func run() async throws {
    try? await gracefulShutdown()
    health.setStatus(.notServing)
    try await server.stop(grace: .seconds(10))
  }
}

/// The platform's gauges, sampled until the group shuts down.
struct MetricsSampler: Service {
  let metrics: PlatformMetrics

  func run() async throws {
    await cancelWhenGracefulShutdown { await metrics.run() }
  }
}

/// The relay, until the group shuts down.
struct RelayService: Service {
  let relay: EventRelay

  func run() async throws {
    try await cancelWhenGracefulShutdown { try await relay.run() }
  }
}
