package import EventStore

/// The newest committed events, kept in memory so that every subscriber that is keeping up
/// reads them from one place (one database read serves them all); a subscriber that fell behind
/// what it holds reads from the table instead. Pure: the relay owns it under its lock.
package struct EventTail: Sendable {
  /// Every committed event in `(coveredFrom, through]` is here (positions have gaps where
  /// transactions rolled back, so coverage is a range, not a count).
  package private(set) var coveredFrom: Int64
  package private(set) var through: Int64
  private var events: [StoredEvent] = []
  /// Index of the oldest event still held (the array is trimmed in steps, not per event).
  private var start = 0
  private var bytes = 0
  package let capacity: Int
  package let byteCapacity: Int

  package init(through: Int64, capacity: Int = 16_384, byteCapacity: Int = 64 * 1024 * 1024) {
    coveredFrom = through
    self.through = through
    self.capacity = capacity
    self.byteCapacity = byteCapacity
  }

  package var count: Int { events.count - start }

  /// Adds a batch the relay read: `batch` holds every committed event in `(through, reached]`.
  package mutating func append(_ batch: [StoredEvent], through reached: Int64) {
    precondition(reached >= through, "the tail only moves forward")
    events.append(contentsOf: batch)
    for e in batch { bytes += e.payload.count + e.metadata.count }
    through = reached
    while count > capacity || (bytes > byteCapacity && count > 1) {
      let dropped = events[start]
      bytes -= dropped.payload.count + dropped.metadata.count
      coveredFrom = dropped.position
      start += 1
    }
    if start > 4096 && start * 2 > events.count {
      events.removeFirst(start)
      start = 0
    }
  }

  /// What a subscriber that has seen everything up to `position` reads next.
  package enum Lookup: Sendable, Equatable {
    /// Nothing committed after `position` yet.
    case caughtUp
    /// The tail no longer holds what comes after `position`: read the table up to `through`.
    case behind(through: Int64)
    /// The matching events after `position` (possibly none, when the filter skipped them all)
    /// and the position the subscriber has now seen everything up to.
    case events([StoredEvent], through: Int64)
  }

  package func lookup(after position: Int64, filter: EventFilter, limit: Int, byteBudget: Int = 1024 * 1024) -> Lookup {
    if position >= through { return .caughtUp }
    if position < coveredFrom { return .behind(through: through) }
    // The first event after `position` (binary search over the held positions).
    var lo = start, hi = events.count
    while lo < hi {
      let mid = (lo + hi) / 2
      if events[mid].position <= position { lo = mid + 1 } else { hi = mid }
    }
    var found: [StoredEvent] = []
    var size = 0
    var i = lo
    while i < events.count {
      let e = events[i]
      if filter.matches(e) {
        if found.count == limit || (size >= byteBudget && !found.isEmpty) {
          return .events(found, through: found[found.count - 1].position)
        }
        found.append(e)
        size += e.payload.count + e.metadata.count
      }
      i += 1
    }
    return .events(found, through: through)
  }
}
