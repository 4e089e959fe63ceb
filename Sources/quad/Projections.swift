internal import Analytics
internal import ArgumentParser
internal import CampusSupport
internal import EmbeddedPostgres
internal import EventStore
internal import Foundation
internal import Logging
internal import Postgres

/// `quad projections`: operations on the read models projected from the event log.
struct ProjectionsCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "projections",
    abstract: "Operate on the read models projected from the event log.",
    subcommands: [RebuildProjection.self]
  )
}

/// `quad projections rebuild NAME [--database-url URL]`: empties a projection and computes it
/// again from the whole log, in one transaction; a running `quad serve` goes on after it.
struct RebuildProjection: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "rebuild",
    abstract: "Rebuild a projection from the event log (known: analytics)."
  )

  static let known = ["analytics"]

  @Argument(help: "The projection: analytics.")
  var name: String

  @Option(name: .customLong("database-url"), help: "PostgreSQL to use (default: $QUAD_DATABASE_URL, else the private cluster in --data-dir).")
  var databaseURL: String?

  @Option(name: .customLong("data-dir"), help: "Where the private PostgreSQL cluster lives when no database URL is given.")
  var dataDirectory = ".quad"

  func validate() throws {
    guard Self.known.contains(name) else {
      throw ValidationError("unknown projection '\(name)'; known: \(Self.known.joined(separator: ", "))")
    }
  }

  func run() async throws {
    LoggingSystem.bootstrap(StreamLogHandler.standardError)
    let logger = Logger(label: "quad.projections")
    let (conninfo, _, embedded) = try await database(databaseURL, dataDirectory: dataDirectory, command: "quad projections rebuild", logger: logger)
    let pool = PostgresPool(conninfo: conninfo, maximumConnections: 2)
    let started = ContinuousClock.now
    let outcome: Result<(events: Int, position: Int64), any Error>
    do {
      let store = EventStore(pool: pool, upcasters: try CampusUpcasters.all())
      try await store.migrate()
      try await AnalyticsProjection(store: store).migrate()
      outcome = .success(try await AnalyticsProjection.rebuild(store: store))
    } catch {
      outcome = .failure(error)
    }
    pool.shutdown()
    if let embedded, !embedded.wasRunning { try? await embedded.stop() }
    switch outcome {
    case .success(let (events, position)):
      let seconds = (ContinuousClock.now - started).components
      let elapsed = Double(seconds.seconds) + Double(seconds.attoseconds) / 1e18
      print("quad projections rebuild \(name): \(events) events applied; the projection is at log position \(position) (\(String(format: "%.2f", elapsed)) s)")
    case .failure(let error):
      throw ServeFailure(message: "quad projections rebuild \(name): \(error)")
    }
  }
}
