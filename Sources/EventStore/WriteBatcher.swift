internal import Postgres
internal import Synchronization

/// Bounds the writes in flight and sends the ones beyond that together: each write is its own
/// transaction, but writes waiting at the same moment go to PostgreSQL in one pipeline, one
/// round trip and one thread hop for all of them. No write waits for a batch to fill: with a
/// connection free a write goes at once.
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
    private let state = Mutex<(outcome: Outcome?, waiter: CheckedContinuation<Outcome, Never>?)>((nil, nil))

    init(_ transaction: Transaction) { self.transaction = transaction }

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

  /// Commits `transaction` (alone, possibly in one round trip with others) and returns its rows.
  func run(_ transaction: Transaction) async throws -> [PostgresRows] {
    let entry = Entry(transaction)
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
      let transactions = batch.map(\.transaction)
      let outcomes = await Result {
        try await pool.withConnection(cancellable: false) { db in try await db.pipelineTransactions(transactions, cancellable: false) }
      }
      switch outcomes {
      case .success(let each):
        for (entry, outcome) in zip(batch, each) { entry.finish(outcome.mapError { $0 }) }
      case .failure(let error):
        for entry in batch { entry.finish(.failure(error)) }
      }
    }
  }
}

extension Result where Failure == any Error {
  init(catching body: () async throws -> Success) async {
    do { self = .success(try await body()) } catch { self = .failure(error) }
  }
}
