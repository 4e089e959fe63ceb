internal import CLibPQ
internal import Dispatch
internal import NIOConcurrencyHelpers
internal import NIOPosix
internal import Synchronization

/// One connection to PostgreSQL through libpq: the only owner of a `PGconn`.
///
/// A libpq call that can block runs on a thread the connection owns, never on a NIO event loop
/// or Swift's cooperative pool; one thread per connection, so a statement that waits (on a lock,
/// say) never starves another connection. Statements already prepared on the connection (all
/// but a statement's first use), alone or in pipelines, are sent without blocking from the
/// caller's thread and read there too once the process's ``SocketPoller`` says the answer is in,
/// so a query or a write wakes no thread of its own. Statements carry their values as bind
/// parameters (``SQL``); results come back in text form and decode into Swift types
/// (``PostgresRows``). Cancelling the calling task cancels the statement on the server
/// (`PQcancel`, sent from a thread of its own: it connects to the server and waits for it).
///
/// ```swift
/// let db = try await PostgresConnection.connect("postgresql://quad@/campus?host=/run/quad")
/// let rows = try await db.query("SELECT name FROM students WHERE id = \(id)", named: "students.byID")
/// let name = try rows.first?.decode("name", as: String.self)
/// ```
///
/// - Important: one task at a time uses a connection (statements are serialized by a lock);
///   share connections through a pool.
package final class PostgresConnection: @unchecked Sendable {
  // Touched only under `lock`: on the connection's thread, or on a caller's for the calls that
  // do not block; `cancelHandle` also on ``cancelThreads`` (PQcancel is libpq's thread-safe call).
  private let connection: OpaquePointer
  private let cancelHandle: OpaquePointer?
  private let lock = NIOLock()
  private let threadPool: NIOThreadPool
  private var closed = false
  /// Statements prepared on this connection, by SQL text (touched only under `lock`).
  private var prepared: [String: String] = [:]
  /// Beyond this many distinct statements, further ones run unprepared.
  static let preparedLimit = 512
  /// Cancel requests on their way to the server, and the statements waiting for them to
  /// arrive (see ``cancel()``).
  private let cancels = Mutex<(pending: Int, waiters: [CheckedContinuation<Void, Never>])>((0, []))
  /// The threads that send cancel requests for every connection of the process: `PQcancel`
  /// blocks (it connects to the server and waits until the server has the request), so it runs
  /// neither on the caller's thread, often an event loop, nor on the connection's own thread,
  /// which may be blocked in the very statement to cancel.
  private static let cancelThreads: NIOThreadPool = {
    let pool = NIOThreadPool(numberOfThreads: 2)
    pool.start()
    return pool
  }()

  private init(connection: OpaquePointer, threadPool: NIOThreadPool) {
    self.connection = connection
    self.cancelHandle = PQgetCancel(connection)
    self.threadPool = threadPool
  }

  deinit {
    if let cancelHandle { PQfreeCancel(cancelHandle) }
    if !closed { PQfinish(connection) }
    threadPool.shutdownGracefully(queue: .global()) { _ in }
  }

  /// Connects with a `postgresql://` URL or a `key=value` string (libpq's own syntax, so
  /// `sslmode=verify-full`, `sslrootcert=…` and the `PG*` environment variables apply).
  ///
  /// - Throws: ``PostgresError`` `.connection` with libpq's reason.
  package static func connect(_ conninfo: String) async throws -> PostgresConnection {
    let thread = NIOThreadPool(numberOfThreads: 1)
    thread.start()
    do {
      return try await thread.runIfActive { try connectBlocking(conninfo, threadPool: thread) }
    } catch {
      try? await thread.shutdownGracefully()
      throw error
    }
  }

  /// Connects on the calling thread, `threadPool`'s own (it blocks), which the connection then
  /// owns; on failure the caller shuts the thread down.
  static func connectBlocking(_ conninfo: String, threadPool: NIOThreadPool) throws(PostgresError) -> PostgresConnection {
    guard let conn = PQconnectdb(conninfo) else {
      throw PostgresError(.connection, "libpq could not allocate a connection")
    }
    guard PQstatus(conn) == CONNECTION_OK else {
      let why = Self.message(conn)
      PQfinish(conn)
      throw PostgresError(.connection, why)
    }
    // Text results in UTF-8, whatever the server's default.
    PQsetClientEncoding(conn, "UTF8")
    // NOTICEs ("relation already exists, skipping") are not errors: keep them off stderr.
    _ = PQsetNoticeProcessor(conn, { _, _ in }, nil)
    return PostgresConnection(connection: conn, threadPool: threadPool)
  }

  /// Sets session parameters (`set_config(name, value, false)`) on the calling thread, the
  /// connection's own.
  func configureBlocking(_ settings: [(String, String)]) throws(PostgresError) {
    for (name, value) in settings {
      _ = try lock.withLock { () -> Result<PostgresRows, PostgresError> in
        Result { () throws(PostgresError) in try run("SELECT set_config(\(name), \(value), false)", "pool.configure") }
      }.get()
    }
  }

  /// Closes the connection on its own thread, without waiting.
  func closeSoon() {
    threadPool.submit { [self] _ in closeBlocking() }
  }

  /// Closes the connection on the calling thread (a thread-pool thread).
  func closeBlocking() {
    lock.withLock {
      if !closed {
        closed = true
        PQfinish(connection)
      }
    }
  }

  private static func message(_ conn: OpaquePointer?) -> String {
    guard let conn, let m = PQerrorMessage(conn) else { return "unknown libpq error" }
    return String(cString: m).trimmingTrailingNewlines()
  }

  /// Runs one statement and returns its rows (none for a statement that returns none).
  ///
  /// - Parameter name: what logs and errors call the statement (`"students.insert"`).
  /// - Throws: ``PostgresError``: `.server` with the SQLSTATE, `.connectionLost`, `.cancelled`.
  package func query(_ sql: SQL, named name: String) async throws -> PostgresRows {
    await cancelsDelivered()
    return try await withTaskCancellationHandler {
      // A prepared statement goes as a pipeline of one (Bind, Execute, Sync: what
      // PQexecPrepared sends), without blocking; the first use of one prepares it on the thread.
      if let outcomes = try await runPipelineWithoutBlocking([[(sql, name)]]) {
        switch outcomes[0] {
        case .success(let rows):
          return rows.first ?? PostgresRows(columns: [], types: [], values: [], affectedRows: 0)
        case .failure(let e) where e.code == .commitOutcomeUnknown:
          throw PostgresError(.connectionLost, e.message, sqlState: e.sqlState, queryName: name)
        case .failure(let e):
          throw e
        }
      }
      return try await threadPool.runIfActive { [self] in
        try lock.withLock { try run(sql, name) }
      }
    } onCancel: {
      cancel()
    }
  }

  /// Runs one statement that must finish by `deadline` (an RPC's deadline, passed down): past
  /// it, the statement is cancelled on the server and the error is `.deadlineExceeded`.
  package func query(_ sql: SQL, named name: String, deadline: ContinuousClock.Instant?) async throws -> PostgresRows {
    guard let deadline else { return try await query(sql, named: name) }
    guard deadline > .now else {
      throw PostgresError(.deadlineExceeded, "the deadline passed before the statement was sent", queryName: name)
    }
    return try await withThrowingTaskGroup(of: PostgresRows?.self) { group in
      group.addTask { try await self.query(sql, named: name) }
      group.addTask {
        try await Task.sleep(until: deadline, clock: .continuous)
        self.cancel()
        return nil
      }
      do {
        while let next = try await group.next() {
          if let rows = next {
            group.cancelAll()
            return rows
          }
        }
      } catch let e as PostgresError where e.code == .cancelled && ContinuousClock.now >= deadline {
        group.cancelAll()
        throw PostgresError(.deadlineExceeded, e.message, sqlState: e.sqlState, queryName: name)
      } catch is CancellationError {
        // The watchdog was cancelled because the task was: the statement reports its own end.
      }
      group.cancelAll()
      throw PostgresError(.cancelled, "the statement was cancelled", queryName: name)
    }
  }

  /// Runs a trusted script of several statements with no parameters (a migration file): the
  /// simple-query protocol, which prepared statements and binds cannot carry.
  ///
  /// - Important: only for SQL shipped with Quad, never for text built from input.
  package func execute(script: String, named name: String) async throws {
    await cancelsDelivered()
    try await withTaskCancellationHandler {
      try await threadPool.runIfActive { [self] in
        try lock.withLock {
          guard !closed else { throw PostgresError(.connectionLost, "the connection is closed", queryName: name) }
          guard let result = PQexec(connection, script) else {
            throw PostgresError(.connectionLost, Self.message(connection), queryName: name)
          }
          defer { PQclear(result) }
          try check(result, name)
        }
      }
    } onCancel: {
      cancel()
    }
  }

  /// Runs `body` with the libpq connection on the connection's own thread, under its lock (for
  /// the calls this module makes outside `PQexecParams`).
  func withConnectionBlocking<R: Sendable>(_ body: @escaping @Sendable (OpaquePointer) throws(PostgresError) -> R) async throws -> R {
    await cancelsDelivered()
    return try await threadPool.runIfActive { [self] in
      try lock.withLock { () throws -> R in
        guard !closed else { throw PostgresError(.connectionLost, "the connection is closed") }
        return try body(connection)
      }
    }
  }

  /// Runs `statements` as one transaction in one round trip: all commit, or none does (the
  /// first failure's error is thrown). For writes whose statements do not depend on each
  /// other's results; interactive work uses ``transaction(_:)``.
  ///
  /// - Throws: ``PostgresError``; `.commitOutcomeUnknown` when the connection broke after
  ///   sending (the transaction may have committed: never report it as rolled back).
  package func pipelineTransaction(_ statements: [(sql: SQL, name: String)]) async throws -> [PostgresRows] {
    try await pipelineTransactions([statements])[0].get()
  }

  /// Runs each element of `transactions` as a transaction of its own, all in one round trip:
  /// what many concurrent writes share (each commits or fails alone).
  ///
  /// - Parameter cancellable: whether cancelling the task cancels the statements on the server;
  ///   `false` when they are other tasks' writes too.
  /// - Returns: each transaction's rows or error (`.commitOutcomeUnknown` for those whose end
  ///   was not read before the connection broke).
  package func pipelineTransactions(_ transactions: [[(sql: SQL, name: String)]], cancellable: Bool = true) async throws -> [Result<[PostgresRows], PostgresError>] {
    @Sendable func run() async throws -> [Result<[PostgresRows], PostgresError>] {
      await cancelsDelivered()
      if let outcomes = try await runPipelineWithoutBlocking(transactions) { return outcomes }
      return try await threadPool.runIfActive { [self] in
        try lock.withLock { () throws -> [Result<[PostgresRows], PostgresError>] in try runPipeline(transactions) }
      }
    }
    guard cancellable else { return try await run() }
    return try await withTaskCancellationHandler(operation: run, onCancel: { cancel() })
  }

  /// A pipeline in flight without blocking: its reader, and whether output is still unsent.
  private final class PipelineCall: @unchecked Sendable {
    // Touched by the one task that runs the pipeline, under the connection's lock.
    var reader: PipelineReader
    var writable: Bool

    init(_ reader: PipelineReader, writable: Bool) {
      self.reader = reader
      self.writable = writable
    }
  }

  /// Sends `transactions` from the calling thread without blocking it, waits on the
  /// ``SocketPoller`` for the answers and reads them on the caller's own executor as they
  /// arrive: no thread of this connection wakes. `nil` when the pipeline must run on the
  /// connection's own thread instead: a statement not yet prepared on this connection (preparing
  /// is a blocking round trip), or no poller.
  private func runPipelineWithoutBlocking(_ transactions: [[(sql: SQL, name: String)]]) async throws -> [Result<[PostgresRows], PostgresError>]? {
    guard let poller = SocketPoller.shared else { return nil }
    enum Start {
      case onThread
      case failed(PostgresError)
      case sent(PipelineCall, socket: Int32)
      case ended([Result<[PostgresRows], PostgresError>])
    }
    let start = lock.withLock { () -> Start in
      guard !closed else {
        return .failed(PostgresError(.connectionLost, "the connection is closed", queryName: transactions.first?.first?.name))
      }
      var names: [[String?]] = []
      for statements in transactions {
        var known: [String?] = []
        for statement in statements {
          guard let name = prepared[statement.sql.text] else { return .onThread }
          known.append(name)
        }
        names.append(known)
      }
      guard PQsetnonblocking(connection, 1) == 0 else { return .onThread }
      do throws(PostgresError) {
        try sendPipeline(transactions, prepared: names)
      } catch {
        _ = PQsetnonblocking(connection, 0)
        return .failed(error)
      }
      var reader = PipelineReader(transactions)
      let flushed = PQflush(connection)
      let socket = PQsocket(connection)
      guard flushed >= 0, socket >= 0 else {
        _ = reader.connectionBroke(self)
        leavePipeline()
        return .ended(reader.outcomes)
      }
      return .sent(PipelineCall(reader, writable: flushed == 1), socket: socket)
    }
    switch start {
    case .onThread: return nil
    case .failed(let error): throw error
    case .ended(let outcomes): return outcomes
    case .sent(let call, let socket):
      // Even when the task is cancelled meanwhile (`runIfActive` would then not start): the
      // pipeline is on the wire and must be read to its end, or the connection is left mid-way.
      @Sendable func finishOnThread() async throws -> [Result<[PostgresRows], PostgresError>] {
        try await withCheckedThrowingContinuation { continuation in
          threadPool.submit { [self] state in
            guard case .active = state else {
              continuation.resume(throwing: PostgresError(.connectionLost, "the connection's thread has stopped"))
              return
            }
            continuation.resume(returning: lock.withLock { readToEnd(&call.reader) })
          }
        }
      }
      while true {
        // Not watchable: finish on the connection's own thread, waiting there.
        guard await poller.ready(socket, readable: true, writable: call.writable) else { return try await finishOnThread() }
        if let outcomes = advance(call) { return outcomes }
        // One transaction's answer comes in one piece unless it is large (a page of rows): the
        // rest streams in, and is read on the connection's thread rather than a wake per piece.
        // A batch of transactions answers one commit at a time: each is waited for here.
        if transactions.count == 1, !call.writable { return try await finishOnThread() }
      }
    }
  }

  /// One step of a pipeline in flight, once its socket is ready: sends what is unsent, reads
  /// what arrived; every outcome once the last transaction has ended, `nil` until then.
  private func advance(_ call: PipelineCall) -> [Result<[PostgresRows], PostgresError>]? {
    lock.withLock {
      if call.writable {
        let flushed = PQflush(connection)
        call.writable = flushed == 1
        if flushed < 0 { _ = call.reader.connectionBroke(self) }
      }
      if !call.reader.finished, PQconsumeInput(connection) == 0 { _ = call.reader.connectionBroke(self) }
      guard call.reader.consume(self, blocking: false) else { return nil }
      leavePipeline()
      return call.reader.outcomes
    }
  }

  /// Asks the server to stop the statement running now (safe from any thread, and it does not
  /// block it). The request is sent from ``cancelThreads``; the next statement on this
  /// connection starts only once the server has it, so it cannot be the one cancelled (a
  /// request that finds the connection idle is ignored by the server).
  package func cancel() {
    guard cancelHandle != nil else { return }
    cancels.withLock { $0.pending += 1 }
    Self.cancelThreads.submit { [self] _ in  // `self` keeps the handle alive until it is sent
      var buffer = [CChar](repeating: 0, count: 256)
      _ = PQcancel(cancelHandle, &buffer, Int32(buffer.count))
      let waiters = cancels.withLock { c -> [CheckedContinuation<Void, Never>] in
        c.pending -= 1
        guard c.pending == 0 else { return [] }
        defer { c.waiters = [] }
        return c.waiters
      }
      for w in waiters { w.resume() }
    }
  }

  /// Returns once no cancel request for this connection is on its way to the server.
  private func cancelsDelivered() async {
    if cancels.withLock({ $0.pending == 0 }) { return }
    await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
      let now = cancels.withLock { s -> Bool in
        if s.pending == 0 { return true }
        s.waiters.append(c)
        return false
      }
      if now { c.resume() }
    }
  }

  /// Closes the connection (statements after it fail).
  package func close() async {
    try? await threadPool.runIfActive { [self] in closeBlocking() }
  }

  /// Whether libpq still considers the connection usable.
  package var isHealthy: Bool {
    lock.withLock { !closed && PQstatus(connection) == CONNECTION_OK }
  }

  // MARK: Blocking core (thread pool, under the lock)

  private func run(_ sql: SQL, _ name: String) throws(PostgresError) -> PostgresRows {
    guard !closed else { throw PostgresError(.connectionLost, "the connection is closed", queryName: name) }
    let statement = try prepare(sql, name)
    let result = try withParameters(sql, name) { count, types, values, lengths, formats in
      if let statement { return PQexecPrepared(connection, statement, count, values, lengths, formats, 0) }
      return PQexecParams(connection, sql.text, count, types, values, lengths, formats, 0)
    }
    guard let result else {
      throw PostgresError(.connectionLost, Self.message(connection), queryName: name)
    }
    defer { PQclear(result) }
    try check(result, name)
    return Self.rows(result)
  }

  /// Runs each element of `transactions` as one transaction, all of them in one round trip
  /// (libpq pipeline mode: each transaction's statements, then a Sync; the server runs the
  /// statements before a Sync in one implicit transaction, committed at the Sync unless one
  /// fails, which rolls that transaction back and leaves the others alone).
  ///
  /// Each transaction's outcome: its statements' rows, or the first failing statement's
  /// ``PostgresError``; `.commitOutcomeUnknown` for those whose end was not read before the
  /// connection broke (they may have committed).
  func runPipeline(_ transactions: [[(sql: SQL, name: String)]]) throws(PostgresError) -> [Result<[PostgresRows], PostgresError>] {
    let name = transactions.first?.first?.name ?? "pipeline"
    guard !closed else { throw PostgresError(.connectionLost, "the connection is closed", queryName: name) }
    // Statements are prepared before the pipeline (once per connection), so the pipeline itself
    // only binds and executes.
    let names = try transactions.map { statements throws(PostgresError) in
      try statements.map { statement throws(PostgresError) in try prepare(statement.sql, statement.name) }
    }
    try sendPipeline(transactions, prepared: names)
    var reader = PipelineReader(transactions)
    return readToEnd(&reader)
  }

  /// Reads the rest of a pipeline's answers, waiting for them (on the connection's thread), and
  /// leaves pipeline mode.
  private func readToEnd(_ reader: inout PipelineReader) -> [Result<[PostgresRows], PostgresError>] {
    _ = PQsetnonblocking(connection, 0)
    _ = reader.consume(self, blocking: true)
    _ = PQexitPipelineMode(connection)
    return reader.outcomes
  }

  /// Leaves pipeline mode and non-blocking mode, once a pipeline's every answer has been read.
  private func leavePipeline() {
    _ = PQexitPipelineMode(connection)
    _ = PQsetnonblocking(connection, 0)
  }

  /// Enters pipeline mode and sends each transaction's statements, each followed by a Sync.
  private func sendPipeline(_ transactions: [[(sql: SQL, name: String)]], prepared names: [[String?]]) throws(PostgresError) {
    let name = transactions.first?.first?.name ?? "pipeline"
    guard PQenterPipelineMode(connection) == 1 else {
      throw PostgresError(.connectionLost, Self.message(connection), queryName: name)
    }
    do throws(PostgresError) {
      for (statements, prepared) in zip(transactions, names) {
        for ((sql, statementName), prepared) in zip(statements, prepared) {
          let sent = try withParameters(sql, statementName) { count, types, values, lengths, formats in
            if let prepared { return PQsendQueryPrepared(connection, prepared, count, values, lengths, formats, 0) }
            return PQsendQueryParams(connection, sql.text, count, types, values, lengths, formats, 0)
          }
          guard sent == 1 else { throw PostgresError(.connectionLost, Self.message(connection), queryName: statementName) }
        }
        guard PQpipelineSync(connection) == 1 else {
          throw PostgresError(.connectionLost, Self.message(connection), queryName: name)
        }
      }
    } catch {
      _ = PQexitPipelineMode(connection)
      throw error
    }
  }

  /// A pipeline's results, read as they arrive: each transaction's statements' rows or its first
  /// failing statement's error, up to its Sync (the server runs the statements before a Sync in
  /// one implicit transaction, committed at the Sync unless one fails, which rolls that
  /// transaction back and leaves the others alone); `.commitOutcomeUnknown` for those whose end
  /// was not read before the connection broke (they may have committed).
  struct PipelineReader {
    private let transactions: [[(sql: SQL, name: String)]]
    private(set) var outcomes: [Result<[PostgresRows], PostgresError>] = []
    private var statement = 0
    private var rows: [PostgresRows] = []
    private var failure: PostgresError?

    init(_ transactions: [[(sql: SQL, name: String)]]) { self.transactions = transactions }

    var finished: Bool { outcomes.count == transactions.count }

    /// Takes the results libpq holds (`blocking`: waits for all of them); true once every
    /// transaction has ended.
    mutating func consume(_ db: PostgresConnection, blocking: Bool) -> Bool {
      let connection = db.connection
      while !finished {
        if !blocking, PQisBusy(connection) == 1 {
          guard PQstatus(connection) == CONNECTION_OK else { return connectionBroke(db) }
          return false
        }
        let current = transactions[outcomes.count]
        let result = PQgetResult(connection)
        if statement < current.count {
          guard let result else {
            // The end of one statement's results.
            statement += 1
            guard PQstatus(connection) == CONNECTION_OK else { return connectionBroke(db) }
            continue
          }
          defer { PQclear(result) }
          switch PQresultStatus(result) {
          case PGRES_PIPELINE_ABORTED:
            break
          case PGRES_TUPLES_OK, PGRES_COMMAND_OK:
            rows.append(PostgresConnection.rows(result))
          default:
            do { try db.check(result, current[statement].name) } catch { failure = failure ?? error }
          }
        } else {
          // The Sync's own result: the transaction's end.
          guard let result else { return connectionBroke(db) }
          let status = PQresultStatus(result)
          PQclear(result)
          if status == PGRES_PIPELINE_SYNC { end(synced: true, db) }
        }
      }
      return true
    }

    /// The connection broke: the transactions not yet ended end now, as far as can be known.
    mutating func connectionBroke(_ db: PostgresConnection) -> Bool {
      while !finished { end(synced: false, db) }
      return true
    }

    private mutating func end(synced: Bool, _ db: PostgresConnection) {
      if let failure, failure.code != .connectionLost {
        outcomes.append(.failure(failure))
      } else if !synced || PQstatus(db.connection) != CONNECTION_OK {
        outcomes.append(.failure(PostgresError(
          .commitOutcomeUnknown, "the connection broke after the transaction was sent: \(PostgresConnection.message(db.connection))",
          queryName: transactions[outcomes.count].first?.name)))
      } else {
        outcomes.append(.success(rows))
      }
      statement = 0
      rows = []
      failure = nil
    }
  }

  /// The name of `sql`'s prepared statement on this connection, preparing it the first time
  /// (parse and plan once, not per call); `nil` past ``preparedLimit`` distinct statements.
  private func prepare(_ sql: SQL, _ name: String) throws(PostgresError) -> String? {
    if let known = prepared[sql.text] { return known }
    guard prepared.count < Self.preparedLimit else { return nil }
    let statement = "quad_\(prepared.count + 1)"
    var types = [UInt32](repeating: 0, count: sql.binds.count)
    for (i, bind) in sql.binds.enumerated() {
      switch bind {
      case .null: types[i] = 0
      case .text(_, let oid), .binary(_, let oid): types[i] = oid
      }
    }
    guard let result = PQprepare(connection, statement, sql.text, Int32(types.count), types) else {
      throw PostgresError(.connectionLost, Self.message(connection), queryName: name)
    }
    defer { PQclear(result) }
    try check(result, name)
    prepared[sql.text] = statement
    return statement
  }

  /// Calls `body` with libpq's parameter arrays for `sql`'s binds, valid only inside it.
  private func withParameters<R>(
    _ sql: SQL, _ name: String,
    _ body: (Int32, [UInt32], [UnsafePointer<CChar>?], [Int32], [Int32]) -> R
  ) throws(PostgresError) -> R {
    let count = sql.binds.count
    var types = [UInt32](repeating: 0, count: count)
    var formats = [Int32](repeating: 0, count: count)
    var lengths = [Int32](repeating: 0, count: count)
    // Each value's bytes, NUL-terminated for text (libpq reads text parameters as C strings).
    var storage: [[UInt8]?] = []
    storage.reserveCapacity(count)
    for (i, bind) in sql.binds.enumerated() {
      switch bind {
      case .null:
        storage.append(nil)
      case .text(let s, let oid):
        if s.utf8.contains(0) {
          throw PostgresError(.server, "a text parameter contains U+0000, which PostgreSQL text cannot hold", sqlState: "22021", queryName: name)
        }
        types[i] = oid
        storage.append(Array(s.utf8) + [0])
        lengths[i] = Int32(s.utf8.count)
      case .binary(let b, let oid):
        types[i] = oid
        formats[i] = 1
        storage.append(b)
        lengths[i] = Int32(b.count)
      }
    }
    return Self.withPointers(storage) { values in body(Int32(count), types, values, lengths, formats) }
  }

  /// Throws the error a result reports, if any.
  private func check(_ result: OpaquePointer, _ name: String) throws(PostgresError) {
    switch PQresultStatus(result) {
    case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
      return
    default:
      let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
      let message = PQresultErrorMessage(result).map { String(cString: $0).trimmingTrailingNewlines() } ?? "statement failed"
      let detail = PQresultErrorField(result, Int32(UInt8(ascii: "D"))).map { String(cString: $0) }
      if PQstatus(connection) != CONNECTION_OK {
        throw PostgresError(.connectionLost, message, sqlState: state, queryName: name)
      }
      if state == "57014" {
        throw PostgresError(.cancelled, message, sqlState: state, queryName: name)
      }
      throw PostgresError(.server, message, sqlState: state, queryName: name, detail: detail)
    }
  }

  /// Calls `body` with C pointers to each value (`nil` for NULL), valid only inside it.
  private static func withPointers<R>(_ values: [[UInt8]?], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    var pointers: [UnsafePointer<CChar>?] = []
    pointers.reserveCapacity(values.count)
    func next(_ i: Int) -> R {
      guard i < values.count else { return body(pointers) }
      guard let v = values[i] else {
        pointers.append(nil)
        return next(i + 1)
      }
      return v.withUnsafeBufferPointer { buf in
        buf.withMemoryRebound(to: CChar.self) { c in
          // An empty binary value still needs a non-null pointer (NULL means SQL NULL).
          pointers.append(c.baseAddress ?? UnsafePointer(bitPattern: 1))
          return next(i + 1)
        }
      }
    }
    return next(0)
  }

  private static func rows(_ result: OpaquePointer) -> PostgresRows {
    let columns = Int(PQnfields(result))
    let count = Int(PQntuples(result))
    var names: [String] = []
    var oids: [UInt32] = []
    for c in 0..<columns {
      names.append(String(cString: PQfname(result, Int32(c))))
      oids.append(PQftype(result, Int32(c)))
    }
    var values: [String?] = []
    values.reserveCapacity(columns * count)
    for r in 0..<count {
      for c in 0..<columns {
        if PQgetisnull(result, Int32(r), Int32(c)) == 1 {
          values.append(nil)
        } else {
          let length = Int(PQgetlength(result, Int32(r), Int32(c)))
          let p = PQgetvalue(result, Int32(r), Int32(c))!
          values.append(p.withMemoryRebound(to: UInt8.self, capacity: length) {
            String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
          })
        }
      }
    }
    let affected = PQcmdTuples(result).map { Int(String(cString: $0)) ?? 0 } ?? 0
    return PostgresRows(columns: names, types: oids, values: values, affectedRows: affected)
  }
}

extension String {
  func trimmingTrailingNewlines() -> String {
    var s = self
    while s.last == "\n" || s.last == "\r" { s.removeLast() }
    return s
  }
}
