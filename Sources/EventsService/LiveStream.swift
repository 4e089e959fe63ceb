internal import Authorization
internal import EventRelay
internal import EventStore
internal import QuadRPC

/// A `Subscribe` call following the log live: the relay hands it each batch on its connection's
/// event loop, where it writes the matching envelopes at once, with no task woken per event (a
/// hundred subscribers on one loop cost one run of that loop per batch). It leaves when its
/// stream holds more than the client's window takes, when the call is over or cancelled, or
/// when the relay stops; its task then goes on from where it got to, reading and writing with
/// waits as before.
final class LiveStream: LiveSubscriber, @unchecked Sendable {
  private let writer: ResponseWriter
  /// As the relay's events are typed (superseded types read as their successors).
  private let filter: EventFilter
  private let access: Access?
  private let log: String
  private let envelopes: EnvelopeCache
  private let relay: EventRelay
  // Touched on the connection's event loop only.
  private var seen: Int64
  private var task: CheckedContinuation<Int64?, Never>?
  private var over = false
  private var stopped = false

  init(after position: Int64, filter: EventFilter, access: Access?, log: String, writer: ResponseWriter, envelopes: EnvelopeCache, relay: EventRelay) {
    seen = position
    self.filter = relay.store.upcasters.normalized(filter)
    self.access = access
    self.log = log
    self.writer = writer
    self.envelopes = envelopes
    self.relay = relay
  }

  var laneID: ObjectIdentifier { writer.eventLoopID }

  func onLane(_ work: @escaping @Sendable () -> Void) { writer.onEventLoop(work) }

  /// Follows the relay live until the stream leaves it, and returns how far it got; at once
  /// when the relay has published past (or not yet up to) where it starts. `nil` when the relay
  /// has stopped.
  func follow() async -> Int64? {
    await withTaskCancellationHandler {
      await withCheckedContinuation { (c: CheckedContinuation<Int64?, Never>) in
        onLane { [self] in
          guard !over else { return c.resume(returning: seen) }
          task = c
          switch relay.join(self, at: seen) {
          case .joined: break
          case .notAtHead: end()
          case .stopped: relayStopped()
          }
        }
      }
    } onCancel: {
      onLane { [self] in
        end()
        relay.leave(self)
      }
    }
  }

  func deliver(_ events: [StoredEvent], from: Int64, through: Int64) -> Bool {
    guard !over, seen >= from else { return end() }
    for e in events where e.position > seen {
      if filter.matches(e) && access?.permitsEvent(e.type) ?? true {
        switch writer.offer(envelopes.encoded(e, log: log)) {
        case .sent: break
        case .sentAndFull:
          seen = e.position
          return end()
        case .notSent:
          return end()
        }
      }
      seen = e.position
    }
    seen = max(seen, through)
    return true
  }

  func relayStopped() {
    stopped = true
    end()
  }

  /// Lets the task go on from `seen`; false, for ``deliver(_:from:through:)``.
  @discardableResult
  private func end() -> Bool {
    over = true
    task?.resume(returning: stopped ? nil : seen)
    task = nil
    return false
  }
}
