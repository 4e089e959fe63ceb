package import EventStore

/// How `quad serve` and `quad projections rebuild` read the campus contracts' superseded
/// events: as the types that replaced them.
///
/// No campus event is superseded yet. A breaking change to one adds a new event type, marks the
/// old one `superseded_by` it in its `.proto`, and registers the upcaster here; the contract
/// tests fail until every superseded campus event has one.
package enum CampusUpcasters {
  package static func all() throws -> EventUpcasters {
    try EventUpcasters([])
  }
}
