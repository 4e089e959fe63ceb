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
    /// The longest a consumer that keeps receiving pages goes between checkpoint commits.
    package var checkpointInterval: Duration = .seconds(1)
    /// How often parked events asked for a retry are looked for.
    package var retryPoll: Duration = .seconds(1)
    /// Lease timing (as ``EventsService``'s groups).
    package var leaseTTL: Duration = .seconds(5)
    package var leaseRenewal: Duration = .seconds(1)

    package init() {}
  }

  /// Hands one event to the consumer's code; a thrown error is a failed attempt.
  package typealias Handler = @Sendable (StoredEvent) async throws -> Void

  /// Hands a page of events, in order, and the position the page covers (at least its last
  /// event's): for a projection that applies a page in one transaction and keeps its own
  /// position, so that applying a page again changes nothing. A thrown error retries the
  /// page with backoff; pages are never parked, since a projection cannot skip one.
  package typealias PageHandler = @Sendable (_ events: [StoredEvent], _ through: Int64) async throws -> Void

  enum Work {
    case each(Handler)
    case page(PageHandler)
  }

  package let name: String
  package let filter: EventFilter
  package let settings: Settings
  private let relay: EventRelay
  private let work: Work
  private var store: EventStore { relay.store }
  /// The consumer group the consumer's checkpoint and lease are kept under.
  package var group: String { "consumer:" + name }

  package init(name: String, relay: EventRelay, filter: EventFilter = .all, settings: Settings = Settings(), handler: @escaping Handler) {
    self.name = name
    self.relay = relay
    self.filter = filter
    self.settings = settings
    work = .each(handler)
  }

  package init(name: String, relay: EventRelay, filter: EventFilter = .all, settings: Settings = Settings(), pageHandler: @escaping PageHandler) {
    self.name = name
    self.relay = relay
    self.filter = filter
    self.settings = settings
    work = .page(pageHandler)
  }

  /// The same consumer, each event or page handled inside `instrumentation` (a span per event,
  /// in the context the event was written in).
  package func instrumented(with instrumentation: any EventInstrumentation) -> EventConsumer {
    let activity = EventActivity.consume(consumer: name)
    switch work {
    case .each(let handler):
      return EventConsumer(name: name, relay: relay, filter: filter, settings: settings) { event in
        try await instrumentation.around([event], activity) { try await handler(event) }
      }
    case .page(let handler):
      return EventConsumer(name: name, relay: relay, filter: filter, settings: settings) { events, through in
        try await instrumentation.around(events, activity) { try await handler(events, through) }
      }
    }
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
          if case .each(let handler) = self.work { tasks.addTask { try await self.retryParked(handler) } }
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
    var committed = start
    var lastCommit = ContinuousClock.now
    while true {
      try Task.checkCancellation()
      let (events, through) = try await relay.next(after: seen, filter: filter)
      if events.isEmpty && through == seen {
        // Idle: whatever was handled is checkpointed before waiting.
        if committed < seen {
          committed = try await store.commitCheckpoint(group: group, position: seen)
          lastCommit = ContinuousClock.now
        }
        await relay.waitForEvents(after: seen)
        continue
      }
      // At-least-once: the checkpoint moves past events once they were handled (or parked),
      // every ``Settings/checkpointEvery`` events, at most every ``Settings/checkpointInterval``
      // otherwise, and whenever the consumer goes idle; a crash in between hands those events
      // over again. (Not a commit per page: under load that was a durable commit per relay
      // batch per consumer, for pages most of which held nothing for it.)
      switch work {
      case .each(let handler):
        for (i, event) in events.enumerated() {
          try await handle(event, handler)
          if (i + 1) % settings.checkpointEvery == 0 {
            committed = try await store.commitCheckpoint(group: group, position: event.position)
            lastCommit = ContinuousClock.now
          }
        }
      case .page(let handler):
        try await handle(events, through: through, handler)
      }
      seen = through
      if events.count >= settings.checkpointEvery || ContinuousClock.now - lastCommit >= settings.checkpointInterval {
        committed = try await store.commitCheckpoint(group: group, position: through)
        lastCommit = ContinuousClock.now
      }
    }
  }

  /// Tries a page until it is applied, backing off between tries.
  private func handle(_ events: [StoredEvent], through: Int64, _ handler: PageHandler) async throws {
    var pause = settings.initialBackoff
    while true {
      do {
        return try await handler(events, through)
      } catch is CancellationError {
        throw CancellationError()
      } catch {
        try await Task.sleep(for: pause)
        pause = min(pause * 2, settings.maximumBackoff)
      }
    }
  }

  /// Tries `event` up to the maximum, then parks it.
  private func handle(_ event: StoredEvent, _ handler: Handler) async throws {
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
  private func retryParked(_ handler: Handler) async throws {
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
