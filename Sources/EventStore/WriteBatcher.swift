internal import Postgres
internal import Synchronization

/// Bounds the writes in flight and commits the ones beyond that together (group commit): writes
/// waiting at the same moment go to PostgreSQL in one transaction, one round trip and one commit
/// for all of them. No write waits for a batch to fill: with a connection free a write goes at
/// once.
///
/// Each write's statements stay together and commit or roll back together. When the group's
/// transaction fails on a statement (a version conflict, a known idempotency key, a constraint,
/// a deadlock), nothing of it committed: its writes are sent again on the same connection, each
/// in its own transaction of one pipeline, so each gets its own outcome. A group commits about
/// three times as many writes per second of PostgreSQL's time as one transaction per write
/// (pgbench on the outbox yardstick's two inserts, 32 clients: 40k writes/s in transactions of
/// 8 against 14k for the one-statement transaction). Writes are ordered by stream within a
/// group, so groups on different connections take the rows they share in one order.
///
/// Leader-follower, no task of its own: a write that finds fewer than ``concurrency`` batches
/// in flight leads: it takes everything queued (itself included), sends it, hands each write
/// its outcome, and goes on while writes keep queueing.
final class WriteBatcher: Sendable {
  typealias Transaction = [(sql: SQL, name: String)]
  typealias Outcome = Result<[PostgresRows], any Error>

  /// One queued write and where its outcome goes.
  final class Entry: Sendable {
    let transaction: Transaction
    /// What the group is sorted by: the first stream the write appends to.
    let stream: StreamID?
    private let state = Mutex<(outcome: Outcome?, waiter: CheckedContinuation<Outcome, Never>?)>((nil, nil))

    init(_ transaction: Transaction, stream: StreamID?) {
      self.transaction = transaction
      self.stream = stream
    }

    /// Whether it goes before `other` in a group (by stream type, then id).
    func precedes(_ other: Entry) -> Bool {
      (stream?.type ?? "", stream?.id ?? "") < (other.stream?.type ?? "", other.stream?.id ?? "")
    }

    func finish(_ outcome: Outcome) {
      let waiter = state.withLock { s -> CheckedContinuation<Outcome, Never>? in
        s.outcome = outcome
        defer { s.waiter = nil }
        return s.waiter
      }
      waiter?.resume(returning: outcome)
    }

    func outcome() async -> Outcome {
      await withCheckedContinuation { c in
        let ready = state.withLock { s -> Outcome? in
          if let o = s.outcome { return o }
          s.waiter = c
          return nil
        }
        if let ready { c.resume(returning: ready) }
      }
    }
  }

  private struct State {
    var queue: [Entry] = []
    var leaders = 0
  }

  private let state = Mutex(State())
  private let pool: PostgresPool
  /// Batches in flight at most (each holds one connection).
  let concurrency: Int
  /// Writes per batch at most.
  let maximumBatch: Int

  init(pool: PostgresPool, concurrency: Int, maximumBatch: Int = 64) {
    self.pool = pool
    self.concurrency = max(1, concurrency)
    self.maximumBatch = maximumBatch
  }

  /// Commits `transaction` (possibly in one transaction with others) and returns its rows.
  /// `stream` (the first it appends to) orders it among the writes it is grouped with.
  func run(_ transaction: Transaction, stream: StreamID?) async throws -> [PostgresRows] {
    let entry = Entry(transaction, stream: stream)
    let lead = state.withLock { s -> Bool in
      s.queue.append(entry)
      guard s.leaders < concurrency else { return false }
      s.leaders += 1
      return true
    }
    if lead { await drain() }
    return try await entry.outcome().get()
  }

  /// Sends batches until the queue is empty.
  private func drain() async {
    while true {
      let batch = state.withLock { s -> [Entry] in
        guard !s.queue.isEmpty else {
          s.leaders -= 1
          return []
        }
        let n = min(maximumBatch, s.queue.count)
        defer { s.queue.removeFirst(n) }
        return Array(s.queue.prefix(n))
      }
      guard !batch.isEmpty else { return }
      // Sent on the leading write's own task (no hop to another thread), but not cancelled with
      // it: the batch carries other callers' writes.
      let group = batch.count == 1 ? batch : batch.sorted { $0.precedes($1) }
      let outcomes = await Result { try await pool.withConnection(cancellable: false) { db in try await Self.commit(group, db) } }
      switch outcomes {
      case .success(let each):
        for (entry, outcome) in zip(group, each) { entry.finish(outcome.mapError { $0 }) }
      case .failure(let error):
        for entry in group { entry.finish(.failure(error)) }
      }
    }
  }

  /// Commits `group` as one transaction; when a statement fails it (nothing committed), each
  /// write again in its own. A broken connection's outcome (`.commitOutcomeUnknown`) is every
  /// write's: the group may have committed.
  private static func commit(_ group: [Entry], _ db: PostgresConnection) async throws -> [Result<[PostgresRows], PostgresError>] {
    let alone = group.map(\.transaction)
    guard group.count > 1 else { return try await db.pipelineTransactions(alone, cancellable: false) }
    switch try await db.pipelineTransactions([alone.flatMap { $0 }], cancellable: false)[0] {
    case .success(let rows):
      var rest = rows[...]
      return alone.map { statements in
        defer { rest = rest.dropFirst(statements.count) }
        return .success(Array(rest.prefix(statements.count)))
      }
    case .failure(let error) where error.code == .server:
      return try await db.pipelineTransactions(alone, cancellable: false)
    case .failure(let error):
      return Array(repeating: .failure(error), count: group.count)
    }
  }
}

extension Result where Failure == any Error {
  init(catching body: () async throws -> Success) async {
    do { self = .success(try await body()) } catch { self = .failure(error) }
  }
}
