package import EventRelay
package import EventStore
internal import Postgres

/// An in-process consumer of the log (a projection, say): it holds its group's lease (one
/// instance at a time runs it), hands its handler every matching event after its checkpoint in
/// order, retries a failing event with exponential backoff, and after
/// ``Settings/maximumAttempts`` parks it in the dead-letter table with the error and goes on.
/// Parked events an operator asked to retry are handed to the handler again. Delivery is
/// at-least-once: the checkpoint moves after the handler returns.
package final class EventConsumer: Sendable {
  /// How the consumer retries and checkpoints.
  package struct Settings: Sendable {
    /// Tries per event before it is parked.
    package var maximumAttempts = 5
    /// The first retry's pause; each next one doubles, up to ``maximumBackoff``.
    package var initialBackoff: Duration = .milliseconds(100)
    package var maximumBackoff: Duration = .seconds(10)
    /// Handled events between two checkpoint commits within a page.
    package var checkpointEvery = 100
    /// How often parked events asked for a retry are looked for.
    package var retryPoll: Duration = .seconds(1)
    /// Lease timing (as ``EventsService``'s groups).
    package var leaseTTL: Duration = .seconds(5)
    package var leaseRenewal: Duration = .seconds(1)

    package init() {}
  }

  /// Hands one event to the consumer's code; a thrown error is a failed attempt.
  package typealias Handler = @Sendable (StoredEvent) async throws -> Void

  package let name: String
  package let filter: EventFilter
  package let settings: Settings
  private let relay: EventRelay
  private let handler: Handler
  private var store: EventStore { relay.store }
  /// The consumer group the consumer's checkpoint and lease are kept under.
  package var group: String { "consumer:" + name }

  package init(name: String, relay: EventRelay, filter: EventFilter = .all, settings: Settings = Settings(), handler: @escaping Handler) {
    self.name = name
    self.relay = relay
    self.filter = filter
    self.settings = settings
    self.handler = handler
  }

  /// Runs until the calling task is cancelled: waits for the lease, then consumes. A lost lease
  /// or database failure is retried from the checkpoint.
  package func run() async throws {
    let holder = "\(name)/\(UInt64.random(in: 0...UInt64.max))"
    while !Task.isCancelled {
      do {
        let lease = try await store.waitForLease(
          group: group, holder: holder, ttl: settings.leaseTTL, retry: min(settings.leaseRenewal, .milliseconds(500)), initialCheckpoint: 0)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
          tasks.addTask { try await self.consume(after: lease.checkpoint) }
          tasks.addTask { try await self.retryParked() }
          tasks.addTask { try await self.store.holdLease(lease, ttl: self.settings.leaseTTL, renewal: self.settings.leaseRenewal) }
          try await tasks.next()
          tasks.cancelAll()
        }
      } catch is CancellationError {
        break
      } catch {
        if Task.isCancelled { break }
        try? await Task.sleep(for: settings.initialBackoff)
      }
    }
    await Task { try? await store.releaseLease(group: group, holder: holder) }.value
  }

  private func consume(after start: Int64) async throws {
    var seen = start
    while true {
      try Task.checkCancellation()
      let (events, through) = try await relay.next(after: seen, filter: filter)
      if events.isEmpty && through == seen {
        await relay.waitForEvents(after: seen)
        continue
      }
      // At-least-once: the checkpoint moves past events once they were handled (or parked),
      // every ``Settings/checkpointEvery`` events and at the end of a page; a crash in between
      // hands those events over again.
      for (i, event) in events.enumerated() {
        try await handle(event)
        if (i + 1) % settings.checkpointEvery == 0 { _ = try await store.commitCheckpoint(group: group, position: event.position) }
      }
      _ = try await store.commitCheckpoint(group: group, position: through)
      seen = through
    }
  }

  /// Tries `event` up to the maximum, then parks it.
  private func handle(_ event: StoredEvent) async throws {
    var pause = settings.initialBackoff
    for attempt in 1...max(1, settings.maximumAttempts) {
      do {
        try await handler(event)
        return
      } catch is CancellationError {
        throw CancellationError()
      } catch {
        if attempt == settings.maximumAttempts {
          try await store.park(consumer: name, position: event.position, attempts: Int32(attempt), error: "\(error)")
          return
        }
        try await Task.sleep(for: pause)
        pause = min(pause * 2, settings.maximumBackoff)
      }
    }
  }

  /// Hands parked events an operator asked to retry back to the handler: once each; handled
  /// ones leave the table, failing ones stay parked with the new error.
  private func retryParked() async throws {
    while true {
      try await Task.sleep(for: settings.retryPoll)
      for parked in try await store.parked(consumer: name, retryRequestedOnly: true) {
        do {
          try await handler(parked.event)
          try await store.unpark(consumer: name, position: parked.event.position)
        } catch is CancellationError {
          throw CancellationError()
        } catch {
          try await store.park(consumer: name, position: parked.event.position, attempts: 1, error: "\(error)")
        }
      }
    }
  }
}
