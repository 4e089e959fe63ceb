package import EventStore
internal import Postgres
internal import Synchronization

/// Streams the log's committed events to every subscriber in this process: one reader follows
/// the log behind its gap-safe fence and keeps the newest events in an ``EventTail``, which all
/// subscribers that keep up read; those that fall behind read the table instead, so a slow one
/// costs no memory here and slows nobody else. Subscribers that have caught up can join the
/// live set (``join(_:at:)``): each batch is then handed to them on their lane, one run per
/// lane, with no task woken per subscriber.
///
/// It wakes at once when a write in this process commits, on `NOTIFY` from other instances (and
/// sends at most one NOTIFY per ``Settings/notifyInterval`` for the writes of this one, never one
/// per transaction), and every ``Settings/pollInterval`` regardless, which alone keeps it
/// correct. A commit wakes it only while a subscriber here waits; otherwise the first subscriber
/// to wait does (``ReadDemand``), so writes with nobody listening cost no reads. Lost connections are retried with backoff. ``run()`` is the relay's life: the task
/// that runs it owns it, and cancelling that task stops it.
package final class EventRelay: Sendable {
  /// How the relay reads and wakes.
  package struct Settings: Sendable {
    /// How often the relay reads the log even when nothing woke it.
    package var pollInterval: Duration = .milliseconds(100)
    /// At most this many events per read of the log.
    package var batchSize = 1000
    /// At least this long between two reads of the log, however often writes commit: under
    /// load one read serves many commits (the cost of latency this adds is at most this).
    package var minimumReadInterval: Duration = .milliseconds(1)
    /// The tail's size, in events and in payload bytes.
    package var tailCapacity = 16_384
    package var tailByteCapacity = 64 * 1024 * 1024
    /// Pages read from the table for subscribers catching up, shared between them.
    package var catchUpCacheBytes = 16 * 1024 * 1024
    /// The channel instances wake each other on (`nil`: no LISTEN/NOTIFY, polling only).
    package var notifyChannel: String? = "quad_events"
    /// At most one NOTIFY per this interval for this instance's writes.
    package var notifyInterval: Duration = .milliseconds(5)
    /// A fence that has not settled for this long counts as a stall (see ``Stats``).
    package var stallThreshold: Duration = .seconds(1)

    package init() {}
  }

  /// What the relay is doing, for metrics and health.
  package struct Stats: Sendable, Hashable {
    /// Everything up to here has been read and published.
    package var through: Int64 = 0
    /// Batches read and events published since start.
    package var batches = 0
    package var events = 0
    /// NOTIFYs sent and received.
    package var notifiesSent = 0
    package var notifiesReceived = 0
    /// When the fence stopped settling (an open transaction holds a position below it), and
    /// how many stalls there were.
    package var stalledSince: ContinuousClock.Instant?
    package var stalls = 0
    /// The last database error the reader or listener met (it retries).
    package var lastError: String?
    /// Subscribers waiting for new events now (live ones among them).
    package var waiting = 0
    /// Of those, the ones in the live set (``EventRelay/join(_:at:)``).
    package var live = 0
  }

  package let store: EventStore
  package let settings: Settings
  private let state: Mutex<State>
  private let readerBell = Doorbell()
  private let demand = ReadDemand()
  private let catchUp: CatchUpPages
  private let notifierBell = Doorbell()
  /// Rung by every commit in this process: a fence waiting to settle tries again at once.
  private let settleBell = Doorbell()

  private struct State {
    var tail: EventTail
    var stats = Stats()
    var waiters: [Int: (after: Int64, continuation: CheckedContinuation<Void, Never>)] = [:]
    var nextWaiter = 0
    /// Live subscribers, by lane, then by identity.
    var live: [ObjectIdentifier: [ObjectIdentifier: any LiveSubscriber]] = [:]
    var liveCount = 0
    var stopped = false

    /// Takes the waiters that wait for something at or below `position`.
    mutating func wake(below position: Int64) -> [CheckedContinuation<Void, Never>] {
      var woken: [CheckedContinuation<Void, Never>] = []
      for (id, w) in waiters where w.after < position {
        woken.append(w.continuation)
        waiters[id] = nil
      }
      return woken
    }
  }

  package init(store: EventStore, settings: Settings = Settings()) {
    self.store = store
    self.settings = settings
    catchUp = CatchUpPages(byteCapacity: settings.catchUpCacheBytes)
    state = Mutex(State(tail: EventTail(through: 0, capacity: settings.tailCapacity, byteCapacity: settings.tailByteCapacity)))
    store.commits.observe { [readerBell, notifierBell, settleBell, demand] in
      if demand.commitArrived() { readerBell.ring() }
      notifierBell.ring()
      settleBell.ring()
    }
  }

  /// Everything up to here has committed and been published.
  package var through: Int64 { state.withLock { $0.tail.through } }

  package var stats: Stats {
    state.withLock { s in
      var stats = s.stats
      stats.through = s.tail.through
      stats.waiting = s.waiters.count + s.liveCount
      stats.live = s.liveCount
      return stats
    }
  }

  /// Forgets the events held in memory (their payloads were rewritten in the table, by the
  /// retention job): subscribers read what comes before the current position from the table.
  package func forgetTail() {
    state.withLock { s in s.tail = EventTail(through: s.tail.through, capacity: settings.tailCapacity, byteCapacity: settings.tailByteCapacity) }
  }

  /// Reads the log until the calling task is cancelled. Starts at the log's current fence:
  /// older events are read from the table by the subscribers that want them.
  package func run() async throws {
    let start = try await store.fence()
    let (early, joinedEarly) = state.withLock { s -> ([CheckedContinuation<Void, Never>], [any LiveSubscriber]) in
      s.tail = EventTail(through: start, capacity: settings.tailCapacity, byteCapacity: settings.tailByteCapacity)
      return (s.wake(below: start), s.live.values.flatMap(\.values))
    }
    for w in early { w.resume() }
    // Subscribers that joined before the relay knew the log's fence have not seen what lies
    // below it: an empty batch from there sends those that are behind back to reading it.
    for subscriber in joinedEarly {
      subscriber.onLane { [self] in
        if !subscriber.deliver([], from: start, through: start) { leave(subscriber) }
      }
    }
    await withTaskGroup(of: Void.self) { group in
      group.addTask { await self.readLoop() }
      if let channel = settings.notifyChannel {
        group.addTask { await self.listenLoop(channel: channel) }
        group.addTask { await self.notifyLoop(channel: channel) }
      }
      await group.waitForAll()
    }
    // Subscribers waiting on a relay that stopped are let go (their tasks are being cancelled).
    let (waiters, live) = state.withLock { s -> ([CheckedContinuation<Void, Never>], [any LiveSubscriber]) in
      defer {
        s.waiters = [:]
        s.live = [:]
        s.liveCount = 0
        s.stopped = true
      }
      return (s.waiters.values.map(\.continuation), s.live.values.flatMap(\.values))
    }
    for w in waiters { w.resume() }
    for subscriber in live {
      demand.waiterLeft()
      subscriber.onLane { subscriber.relayStopped() }
    }
  }

  /// What ``join(_:at:)`` did.
  package enum Join: Sendable, Equatable {
    /// Live: the relay hands it every batch from now on.
    case joined
    /// Not live: the relay has published past `position` (read up to it first) or has not
    /// reached it yet (wait for it).
    case notAtHead
    /// Not live: the relay has stopped.
    case stopped
  }

  /// Makes `subscriber` live when it has seen exactly what the relay has published
  /// (`position == through`): from then on the relay hands it every batch it publishes, on
  /// its lane, in order, until it leaves (``LiveSubscriber/deliver(_:from:through:)`` returns
  /// false, or ``leave(_:)``). The check and the joining happen under the lock every batch is
  /// published under, so nothing falls between the subscriber's last read and its first batch.
  package func join(_ subscriber: any LiveSubscriber, at position: Int64) -> Join {
    let joined = state.withLock { s -> Join in
      if s.stopped { return .stopped }
      guard s.tail.through == position else { return .notAtHead }
      let id = ObjectIdentifier(subscriber)
      if s.live[subscriber.laneID, default: [:]].updateValue(subscriber, forKey: id) == nil { s.liveCount += 1 }
      return .joined
    }
    if joined == .joined, demand.waiterArrived() { readerBell.ring() }
    return joined
  }

  /// Takes `subscriber` out of the live set (nothing if it is not in it).
  package func leave(_ subscriber: any LiveSubscriber) {
    let left = state.withLock { s -> Bool in
      guard s.live[subscriber.laneID]?.removeValue(forKey: ObjectIdentifier(subscriber)) != nil else { return false }
      if s.live[subscriber.laneID]?.isEmpty == true { s.live[subscriber.laneID] = nil }
      s.liveCount -= 1
      return true
    }
    if left { demand.waiterLeft() }
  }

  /// Returns once something after `position` has been published (or at once if it has), or
  /// when the task is cancelled.
  package func waitForEvents(after position: Int64) async {
    let id = state.withLock { s -> Int in
      s.nextWaiter += 1
      return s.nextWaiter
    }
    if demand.waiterArrived() { readerBell.ring() }
    defer { demand.waiterLeft() }
    await withTaskCancellationHandler {
      await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
        let now = state.withLock { s -> Bool in
          if s.tail.through > position || Task.isCancelled { return true }
          s.waiters[id] = (position, c)
          return false
        }
        if now { c.resume() }
      }
    } onCancel: {
      state.withLock { $0.waiters.removeValue(forKey: id) }?.continuation.resume()
    }
  }

  /// The next events after `position` that match `filter`: from the tail when it still holds
  /// them, otherwise from the table (up to what the relay has published, which is committed).
  /// Empty with `through > position` when everything in between was filtered out; empty with
  /// `through == position` when caught up.
  package func next(after position: Int64, filter: EventFilter, limit: Int = 256) async throws -> (events: [StoredEvent], through: Int64) {
    // Held events are already upcast: a superseded type in the filter stands for its successor
    // (the store's own reads normalize the filter themselves).
    let held = store.upcasters.normalized(filter)
    let lookup = state.withLock { $0.tail.lookup(after: position, filter: held, limit: limit) }
    switch lookup {
    case .caughtUp:
      return ([], position)
    case .events(let events, let through):
      return (events, through)
    case .behind(let through):
      let key = CatchUpPages.Key(after: position, limit: 1000, filter: filter)
      return try await catchUp.page(key, through: through) {
        try await store.read(after: position, through: through, limit: key.limit, filter: filter)
      }
    }
  }

  // MARK: Loops

  private func readLoop() async {
    var backoff = Duration.milliseconds(50)
    while !Task.isCancelled {
      do {
        let started = ContinuousClock.now
        demand.readStarted()
        try await readAvailable()
        backoff = .milliseconds(50)
        await readerBell.wait(timeout: settings.pollInterval)
        let next = started + settings.minimumReadInterval
        if next > .now { try? await Task.sleep(until: next, clock: .continuous) }
      } catch {
        if Task.isCancelled { return }
        record(error: error)
        try? await Task.sleep(for: backoff)
        backoff = min(backoff * 2, .seconds(2))
      }
    }
  }

  /// Reads and publishes batches until the log has nothing more behind the fence.
  private func readAvailable() async throws {
    while !Task.isCancelled {
      let after = through
      let result: (events: [StoredEvent], through: Int64)
      do {
        result = try await store.readCommitted(after: after, limit: settings.batchSize, deadline: .now + settings.stallThreshold) {
          [settleBell] pause in await settleBell.wait(timeout: pause)
        }
      } catch let e as PostgresError where e.code == .deadlineExceeded {
        // An open transaction holds a position below the fence: report it, keep waiting.
        state.withLock { s in
          if s.stats.stalledSince == nil {
            s.stats.stalledSince = .now - settings.stallThreshold
            s.stats.stalls += 1
          }
        }
        continue
      }
      publish(result.events, through: result.through)
      if result.events.count < settings.batchSize { return }
    }
  }

  /// Publishes a batch: in the tail for readers, to each lane of live subscribers in one run,
  /// and wakes the subscribers waiting for it.
  private func publish(_ events: [StoredEvent], through reached: Int64) {
    let (woken, lanes, from) = state.withLock { s -> ([CheckedContinuation<Void, Never>], [[any LiveSubscriber]], Int64) in
      s.stats.stalledSince = nil
      guard reached > s.tail.through else { return ([], [], reached) }
      let from = s.tail.through
      s.tail.append(events, through: reached)
      s.stats.batches += 1
      s.stats.events += events.count
      return (s.wake(below: reached), s.live.values.map { Array($0.values) }, from)
    }
    for subscribers in lanes {
      subscribers[0].onLane { [self] in
        for subscriber in subscribers where !subscriber.deliver(events, from: from, through: reached) { leave(subscriber) }
      }
    }
    for w in woken { w.resume() }
  }

  private func record(error: any Error) {
    state.withLock { $0.stats.lastError = "\(error)" }
  }

  /// Wakes the reader on NOTIFYs from other instances, over a connection of its own.
  private func listenLoop(channel: String) async {
    var backoff = Duration.milliseconds(50)
    while !Task.isCancelled {
      do {
        let connection = try await PostgresConnection.connect(store.pool.conninfo)
        do {
          _ = try await connection.query("SELECT set_config('application_name', 'quad relay listener', false)", named: "relay.name")
          try await connection.execute(script: "LISTEN \(Self.quoted(channel))", named: "relay.listen")
          backoff = .milliseconds(50)
          // Anything committed while the listener was away is read now.
          readerBell.ring()
          while !Task.isCancelled {
            let received = try await connection.notifications(waitingUpTo: .milliseconds(250))
            if !received.isEmpty {
              state.withLock { $0.stats.notifiesReceived += received.count }
              if demand.commitArrived() { readerBell.ring() }
            }
          }
        } catch {
          await connection.close()
          throw error
        }
        await connection.close()
      } catch {
        if Task.isCancelled { return }
        record(error: error)
        try? await Task.sleep(for: backoff)
        backoff = min(backoff * 2, .seconds(2))
      }
    }
  }

  /// Sends one NOTIFY for however many of this instance's writes committed since the last.
  private func notifyLoop(channel: String) async {
    while !Task.isCancelled {
      await notifierBell.wait(timeout: nil)
      if Task.isCancelled { return }
      do {
        try await store.pool.withConnection { db in
          _ = try await db.query("SELECT pg_notify(\(channel), '')", named: "relay.notify")
        }
        state.withLock { $0.stats.notifiesSent += 1 }
      } catch {
        record(error: error)
      }
      try? await Task.sleep(for: settings.notifyInterval)
    }
  }

  /// `name` as a quoted SQL identifier (LISTEN takes no bind parameters).
  static func quoted(_ name: String) -> String {
    var quoted = "\""
    for c in name where c != "\u{0}" {
      quoted.append(c)
      if c == "\"" { quoted.append(c) }
    }
    return quoted + "\""
  }
}
