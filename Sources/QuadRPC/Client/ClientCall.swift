internal import GRPCWire
internal import Synchronization

/// One client call as both sides see it: the event loop records the response headers, messages
/// (through ``InboundMessages``, which returns flow-control credit as they are read) and the
/// final status; the caller's task waits for them.
final class ClientCall: Sendable {
  private struct State {
    var headers: Metadata?
    var realHeaders = false
    var headersWaiters: [CheckedContinuation<Metadata, any Error>] = []
    var end: Result<Metadata, RPCError>?
    var endWaiters: [CheckedContinuation<Metadata, any Error>] = []
  }

  private let state = Mutex(State())
  let messages: InboundMessages

  init(returnCredit: @escaping @Sendable () -> Void) {
    messages = InboundMessages(returnCredit: returnCredit)
  }

  // MARK: Event-loop side

  /// The response headers arrived (or, with a Trailers-Only response, the call ended first).
  func received(headers: Metadata) {
    let waiters = state.withLock { s -> [CheckedContinuation<Metadata, any Error>] in
      guard s.headers == nil else { return [] }
      s.headers = headers
      s.realHeaders = true
      defer { s.headersWaiters = [] }
      return s.headersWaiters
    }
    for w in waiters { w.resume(returning: headers) }
  }

  /// The call is over: OK with its trailing metadata, or an error status. Messages already
  /// received stay readable before the error.
  func finish(_ result: Result<Metadata, RPCError>) {
    let (headerWaiters, endWaiters) = state.withLock { s -> ([CheckedContinuation<Metadata, any Error>], [CheckedContinuation<Metadata, any Error>]) in
      guard s.end == nil else { return ([], []) }
      s.end = result
      var hw: [CheckedContinuation<Metadata, any Error>] = []
      if s.headers == nil {
        s.headers = []
        hw = s.headersWaiters
        s.headersWaiters = []
      }
      defer { s.endWaiters = [] }
      return (hw, s.endWaiters)
    }
    switch result {
    case .success: messages.finish()
    case .failure(let e): messages.finish(e, discarding: false)
    }
    for w in headerWaiters {
      switch result {
      case .success: w.resume(returning: [])
      case .failure(let e): w.resume(throwing: e)
      }
    }
    for w in endWaiters { w.resume(with: result.mapError { $0 as any Error }) }
  }

  var isFinished: Bool { state.withLock { $0.end != nil } }

  /// The error status the call ended with, if it did.
  var finalError: RPCError? {
    state.withLock { s in
      if case .failure(let e) = s.end { return e }
      return nil
    }
  }

  /// Whether the server sent response headers (not a Trailers-Only answer): a retry is then no
  /// longer allowed.
  var receivedResponseHeaders: Bool { state.withLock { $0.realHeaders } }

  // MARK: Caller side

  /// The next response message, `nil` after an OK status; throws the call's ``RPCError``
  /// (CANCELLED when the caller's task is cancelled).
  func nextMessage() async throws -> [UInt8]? {
    do {
      return try await messages.next()
    } catch is CancellationError {
      throw RPCError(code: .cancelled, message: "call cancelled by the client")
    }
  }

  /// The response headers' custom metadata (empty for a Trailers-Only response).
  func initialMetadata() async throws -> Metadata {
    try await withCheckedThrowingContinuation { c in
      let now = state.withLock { s -> Result<Metadata, any Error>? in
        if let h = s.headers { return .success(h) }
        if case .failure(let e) = s.end { return .failure(e) }
        s.headersWaiters.append(c)
        return nil
      }
      if let now { c.resume(with: now) }
    }
  }

  /// Waits for the status: the trailing metadata when OK, otherwise throws the ``RPCError``.
  func status() async throws -> Metadata {
    try await withCheckedThrowingContinuation { c in
      let now = state.withLock { s -> Result<Metadata, RPCError>? in
        if let e = s.end { return e }
        s.endWaiters.append(c)
        return nil
      }
      if let now { c.resume(with: now.mapError { $0 as any Error }) }
    }
  }
}
