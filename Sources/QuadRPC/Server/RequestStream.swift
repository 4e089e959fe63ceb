internal import Synchronization

/// The request messages of a client-streaming or bidirectional call, in order, as they arrive.
///
/// The buffer behind it is bounded: while more than ``InboundMessages/highWatermark`` bytes wait
/// for the handler, the server stops returning HTTP/2 flow-control credit, so a client that sends
/// faster than the handler reads is held back by its window.
///
/// - Throws: from iteration, `CancellationError` when the call ends early (reset, deadline,
///   connection loss), or an ``RPCError`` for a message that cannot be decoded.
package struct RequestStream<Element: Sendable>: AsyncSequence, Sendable {
  let inbound: InboundMessages
  let decode: @Sendable ([UInt8]) throws -> Element

  init(_ inbound: InboundMessages, decode: @escaping @Sendable ([UInt8]) throws -> Element) {
    self.inbound = inbound
    self.decode = decode
  }

  /// The same messages decoded by `transform`.
  package func map<T: Sendable>(_ transform: @escaping @Sendable (Element) throws -> T) -> RequestStream<T> {
    let decode = self.decode
    return RequestStream<T>(inbound) { try transform(decode($0)) }
  }

  package struct AsyncIterator: AsyncIteratorProtocol {
    let inbound: InboundMessages
    let decode: @Sendable ([UInt8]) throws -> Element

    package mutating func next() async throws -> Element? {
      guard let bytes = try await inbound.next() else { return nil }
      return try decode(bytes)
    }
  }

  package func makeAsyncIterator() -> AsyncIterator { AsyncIterator(inbound: inbound, decode: decode) }
}

extension RequestStream where Element == [UInt8] {
  init(_ inbound: InboundMessages) { self.init(inbound) { $0 } }
}

/// The queue between a connection's event loop (which pushes decoded-from-the-wire messages) and
/// one handler (which takes them). It asks the loop for flow-control credit once the handler has
/// drained it below ``lowWatermark``.
final class InboundMessages: Sendable {
  static let highWatermark = 256 * 1024
  static let lowWatermark = 64 * 1024

  private struct State {
    var queue: [[UInt8]] = []
    var head = 0
    var queuedBytes = 0
    var end: Result<Void, any Error>?
    var waiter: CheckedContinuation<[UInt8]?, any Error>?
    var wantsCredit = false
  }

  private let state = Mutex(State())
  private let returnCredit: @Sendable () -> Void

  /// - Parameter returnCredit: called (on the handler's thread) when the loop may give the
  ///   client the flow-control credit it held back.
  init(returnCredit: @escaping @Sendable () -> Void) {
    self.returnCredit = returnCredit
  }

  // MARK: Event-loop side

  /// Queues a message; returns whether the buffer is now above the high watermark (then the loop
  /// holds back credit and calls ``holdingCredit()``).
  func push(_ message: [UInt8]) -> Bool {
    let waiter: CheckedContinuation<[UInt8]?, any Error>?
    let full: Bool
    (waiter, full) = state.withLock { s in
      guard s.end == nil else { return (nil, false) }
      if let w = s.waiter {
        s.waiter = nil
        return (w, false)
      }
      s.queue.append(message)
      s.queuedBytes += message.count
      return (nil, s.queuedBytes > Self.highWatermark)
    }
    waiter?.resume(returning: message)
    return full
  }

  /// The loop is holding back credit until the handler drains the buffer.
  func holdingCredit() {
    state.withLock { $0.wantsCredit = true }
  }

  /// Ends the sequence: normally (`nil`) after the last message, or with an error, at once
  /// (`discarding` what is queued) or after the queued messages.
  func finish(_ error: (any Error)? = nil, discarding: Bool = true) {
    let waiter = state.withLock { s -> CheckedContinuation<[UInt8]?, any Error>? in
      guard s.end == nil else { return nil }
      if let error, !discarding {
        s.end = .failure(error)
      } else if let error {
        s.end = .failure(error)
        s.queue = []
        s.head = 0
        s.queuedBytes = 0
      } else {
        s.end = .success(())
      }
      defer { s.waiter = nil }
      return s.waiter
    }
    if let waiter {
      if let error { waiter.resume(throwing: error) } else { waiter.resume(returning: nil) }
    }
  }

  // MARK: Handler side

  private enum Take {
    case message([UInt8], credit: Bool)
    case end(Result<Void, any Error>)
    case wait
  }

  private func take() -> Take {
    state.withLock { s in
      if s.head < s.queue.count {
        let m = s.queue[s.head]
        s.queue[s.head] = []
        s.head += 1
        if s.head == s.queue.count {
          s.queue.removeAll(keepingCapacity: true)
          s.head = 0
        } else if s.head >= 64 && s.head * 2 >= s.queue.count {
          s.queue.removeFirst(s.head)
          s.head = 0
        }
        s.queuedBytes -= m.count
        var credit = false
        if s.wantsCredit && s.queuedBytes < Self.lowWatermark {
          s.wantsCredit = false
          credit = true
        }
        return .message(m, credit: credit)
      }
      if let end = s.end { return .end(end) }
      return .wait
    }
  }

  func next() async throws -> [UInt8]? {
    switch take() {
    case .message(let m, let credit):
      if credit { returnCredit() }
      return m
    case .end(let r):
      try r.get()
      return nil
    case .wait:
      break
    }
    return try await withTaskCancellationHandler {
      try await withCheckedThrowingContinuation { (c: CheckedContinuation<[UInt8]?, any Error>) in
        enum Now { case wait, cancelled, take }
        let now = state.withLock { s -> Now in
          if Task.isCancelled { return .cancelled }
          if s.head < s.queue.count || s.end != nil { return .take }
          s.waiter = c
          return .wait
        }
        switch now {
        case .wait: break
        case .cancelled: c.resume(throwing: CancellationError())
        case .take:
          switch take() {
          case .message(let m, let credit):
            if credit { returnCredit() }
            c.resume(returning: m)
          case .end(let r):
            c.resume(with: r.map { nil })
          case .wait:
            c.resume(throwing: CancellationError())  // unreachable: checked under the lock above
          }
        }
      }
    } onCancel: {
      let w = state.withLock { s -> CheckedContinuation<[UInt8]?, any Error>? in
        defer { s.waiter = nil }
        return s.waiter
      }
      w?.resume(throwing: CancellationError())
    }
  }
}
