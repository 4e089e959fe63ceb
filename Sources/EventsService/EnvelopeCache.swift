internal import EventStore
internal import QuadProtobuf
internal import Synchronization

/// Encoded envelopes of recent events, shared by every subscription of the service: a hundred
/// subscribers following the log live encode each event once between them, not a hundred times.
/// Bounded in entries and bytes; the oldest go first.
final class EnvelopeCache: Sendable {
  private struct State {
    var bytes: [Int64: [UInt8]] = [:]
    var order: [Int64] = []
    var head = 0
    var total = 0
  }

  private let state = Mutex(State())
  let capacity: Int
  let byteCapacity: Int

  init(capacity: Int = 8192, byteCapacity: Int = 16 << 20) {
    self.capacity = capacity
    self.byteCapacity = byteCapacity
  }

  /// The serialized envelope of `event`, encoded now if no subscriber has needed it yet.
  func encoded(_ event: StoredEvent, log: String) -> [UInt8] {
    if let hit = state.withLock({ $0.bytes[event.position] }) { return hit }
    let bytes = EventsService.envelope(event, log: log).serializedBytes()
    state.withLock { s in
      guard s.bytes[event.position] == nil, bytes.count <= byteCapacity else { return }
      s.bytes[event.position] = bytes
      s.order.append(event.position)
      s.total += bytes.count
      while s.order.count - s.head > capacity || s.total > byteCapacity {
        if let old = s.bytes.removeValue(forKey: s.order[s.head]) { s.total -= old.count }
        s.head += 1
      }
      if s.head > 4096 && s.head * 2 > s.order.count {
        s.order.removeFirst(s.head)
        s.head = 0
      }
    }
    return bytes
  }

  /// Drops the envelopes of `positions` (their payloads were rewritten).
  func forget(_ positions: some Sequence<Int64>) {
    state.withLock { s in
      for p in positions { if let old = s.bytes.removeValue(forKey: p) { s.total -= old.count } }
    }
  }
}
