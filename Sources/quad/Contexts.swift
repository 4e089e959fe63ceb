internal import Accounts
internal import Analytics
internal import CampusContracts
internal import CardOffice
internal import EventConsumers
internal import EventRelay
internal import EventStore
internal import EventsService
internal import Foundation
internal import HealthService
internal import Logging
internal import Postgres
internal import QuadRPC
internal import Scans
internal import ServiceLifecycle
internal import Students

/// The campus's bounded contexts `quad serve` can run: each owns its schema and shares only
/// the event log with the others.
enum CampusContext: String, CaseIterable {
  case students, scans, analytics, accounts, cards

  /// `--contexts students,scans`: the named contexts, in their canonical order.
  static func parse(_ list: String) throws -> [CampusContext] {
    var chosen: Set<CampusContext> = []
    for name in list.split(separator: ",", omittingEmptySubsequences: false).map({ $0.trimmingCharacters(in: .whitespaces) }) {
      guard let c = CampusContext(rawValue: name) else {
        throw ServeFailure(message: "quad serve: --contexts: unknown context '\(name)'; known: \(allCases.map(\.rawValue).joined(separator: ", "))")
      }
      chosen.insert(c)
    }
    if chosen.contains(.cards), !chosen.isSuperset(of: [.students, .accounts]) {
      throw ServeFailure(message: "quad serve: --contexts: cards drives the students and accounts contexts in-process: serve them with it")
    }
    return allCases.filter(chosen.contains)
  }

  var serviceName: String {
    switch self {
    case .students: Campus_Students_V1_Students.serviceName
    case .scans: Campus_Scans_V1_Scans.serviceName
    case .analytics: Campus_Analytics_V1_Analytics.serviceName
    case .accounts: Campus_Accounts_V1_Accounts.serviceName
    case .cards: Campus_Cards_V1_CardOffice.serviceName
    }
  }
}

/// The chosen contexts on one event log: their tables migrated, their services registered,
/// and the consumers that keep their own state running beside the server.
struct CampusContexts {
  let contexts: [CampusContext]
  let protoFiles: [[UInt8]]
  let consumers: [EventConsumer]
  /// The card office's saga runner, when the cards context is served.
  let sagas: SagaRunner?

  /// Migrates each context's schema and registers its service in `router`.
  static func start(
    _ contexts: [CampusContext], relay: EventRelay, router: inout Router, instrumentation: (any EventInstrumentation)? = nil
  ) async throws -> CampusContexts {
    let store = relay.store
    var files: [[UInt8]] = []
    var consumers: [EventConsumer] = []
    var students: StudentsService?
    var accounts: AccountsService?
    var sagas: SagaRunner?
    for c in contexts {
      switch c {
      case .students:
        let s = StudentsService(store: store)
        try await s.migrate()
        s.register(in: &router)
        files += StudentsService.protoFiles
        students = s
      case .scans:
        let s = ScansService(store: store)
        try await s.migrate()
        s.register(in: &router)
        files += ScansService.protoFiles
        consumers.append(CardDirectory(store: store).consumer(relay: relay))
      case .analytics:
        let projection = AnalyticsProjection(store: store)
        try await projection.migrate()
        AnalyticsService(relay: relay).register(in: &router)
        files += AnalyticsService.protoFiles
        consumers.append(projection.consumer(relay: relay))
      case .accounts:
        let a = AccountsService(store: store)
        try await a.migrate()
        a.register(in: &router)
        files += AccountsService.protoFiles
        accounts = a
      case .cards:
        guard let students, let accounts else { throw ServeFailure(message: "quad serve: the cards context needs students and accounts") }
        var settings = SagaRunner.Settings()
        settings.faults = try SagaFaults(ProcessInfo.processInfo.environment["QUAD_SAGA_FAULTS"] ?? "")
        let runner = SagaRunner(store: store, accounts: accounts, students: students, settings: settings, logger: Logger(label: "quad.cards"))
        let office = CardOfficeService(store: store, runner: runner)
        try await office.migrate()
        office.register(in: &router)
        files += CardOfficeService.protoFiles
        sagas = runner
      }
    }
    if let instrumentation { consumers = consumers.map { $0.instrumented(with: instrumentation) } }
    return CampusContexts(contexts: contexts, protoFiles: files, consumers: consumers, sagas: sagas)
  }

  /// The services the server's group runs for these contexts: their consumers.
  var services: [ServiceGroupConfiguration.ServiceConfiguration] {
    consumers.map { .init(service: ConsumerService(consumer: $0), serviceName: $0.group) }
      + (sagas.map { [.init(service: SagaService(runner: $0), serviceName: "card-office.sagas")] } ?? [])
  }
}

/// The card office's sagas, driven until the group shuts down.
struct SagaService: Service {
  let runner: SagaRunner

  func run() async throws {
    await cancelWhenGracefulShutdown { await runner.run() }
  }
}

/// An in-process consumer, until the group shuts down.
struct ConsumerService: Service {
  let consumer: EventConsumer

  func run() async throws {
    try await cancelWhenGracefulShutdown { try await consumer.run() }
  }
}

/// Reports every served service NOT_SERVING while the database does not answer, and SERVING
/// again once it does (checked every second, 2 s allowed per check).
struct DatabaseHealthService: Service {
  let pool: PostgresPool
  let health: HealthService
  let services: [String]
  let logger: Logger

  func run() async throws {
    await cancelWhenGracefulShutdown {
      var up = true
      while !Task.isCancelled {
        let ok: Bool
        do {
          _ = try await pool.withConnection { db in
            try await db.query("SELECT 1", named: "health.ping", deadline: .now + .seconds(2))
          }
          ok = true
        } catch {
          ok = false
          if up { logger.error("the database does not answer: \(error); services are NOT_SERVING") }
        }
        if ok != up {
          if ok { logger.notice("the database answers again; services are SERVING") }
          for s in services { health.setStatus(ok ? .serving : .notServing, for: s) }
          health.setStatus(ok ? .serving : .notServing)
          up = ok
        }
        try? await Task.sleep(for: .seconds(1))
      }
    }
  }
}
