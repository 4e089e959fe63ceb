package import EventStore
internal import Synchronization

/// Pages of the log read for subscribers that are behind the tail, shared: subscribers catching
/// up from the same place (many starting from the first event, say) read each page from the
/// table once between them, and a page asked for while its read is in flight waits for that
/// read. Only full pages are kept (a full page is the same whatever the relay has published
/// since); the cache is bounded in bytes and forgets the oldest pages first.
final class CatchUpPages: Sendable {
  struct Key: Hashable {
    let after: Int64
    let limit: Int
    let filter: EventFilter
  }

  typealias Page = (events: [StoredEvent], through: Int64)

  fileprivate struct State {
    var pages: [Key: Page] = [:]
    var order: [Key] = []
    var bytes = 0
    var loading: [Key: [CheckedContinuation<Page?, Never>]] = [:]
  }

  private let state = Mutex(State())
  let byteCapacity: Int

  init(byteCapacity: Int) { self.byteCapacity = byteCapacity }

  /// The page after `key.after` up to `through`: from the cache, from a read in flight, or
  /// read now by `read`.
  func page(_ key: Key, through: Int64, read: () async throws -> Page) async throws -> Page {
    enum Step { case hit(Page), wait, load }
    let step = state.withLock { s -> Step in
      if let p = s.pages[key] { return .hit(p) }
      if s.loading[key] != nil { return .wait }
      s.loading[key] = []
      return .load
    }
    switch step {
    case .hit(let p):
      return p
    case .wait:
      let shared = await withCheckedContinuation { (c: CheckedContinuation<Page?, Never>) in
        let registered = state.withLock { s -> Bool in
          guard s.loading[key] != nil else { return false }
          s.loading[key]!.append(c)
          return true
        }
        if !registered { c.resume(returning: state.withLock { $0.pages[key] }) }
      }
      // The reader failed, or its page was not full: read for ourselves.
      if let shared, shared.through <= through { return shared }
      return try await read()
    case .load:
      do {
        let p = try await read()
        let waiters = state.withLock { s -> [CheckedContinuation<Page?, Never>] in
          if p.events.count == key.limit { s.insert(key, p, capacity: byteCapacity) }
          return s.loading.removeValue(forKey: key) ?? []
        }
        for w in waiters { w.resume(returning: p) }
        return p
      } catch {
        let waiters = state.withLock { $0.loading.removeValue(forKey: key) ?? [] }
        for w in waiters { w.resume(returning: nil) }
        throw error
      }
    }
  }
}

extension CatchUpPages.State {
  fileprivate mutating func insert(_ key: CatchUpPages.Key, _ page: CatchUpPages.Page, capacity: Int) {
    guard pages[key] == nil else { return }
    pages[key] = page
    order.append(key)
    bytes += Self.size(page)
    while bytes > capacity, !order.isEmpty {
      let old = order.removeFirst()
      if let p = pages.removeValue(forKey: old) { bytes -= Self.size(p) }
    }
  }

  private static func size(_ page: CatchUpPages.Page) -> Int {
    page.events.reduce(0) { $0 + $1.payload.count + $1.metadata.count + 128 }
  }
}
