internal import CampusContracts
package import EventConsumers
package import EventRelay
package import EventStore
internal import Postgres

/// The scans context's card -> student lookup, kept from the students context's CardIssued and
/// CardReportedLost events by a durable consumer (`consumer:scans.cards`): the scans context
/// never calls the students service, so scans are recorded while it is down.
package struct CardDirectory: Sendable {
  let store: EventStore

  package init(store: EventStore) {
    self.store = store
  }

  /// The events the directory follows.
  static let filter = EventFilter(eventTypes: [
    Campus_Students_V1_CardIssued.protoMessageName, Campus_Students_V1_CardReportedLost.protoMessageName,
  ])

  /// The consumer that keeps the directory; run it for as long as the context serves.
  package func consumer(relay: EventRelay, settings: EventConsumer.Settings = EventConsumer.Settings()) -> EventConsumer {
    EventConsumer(name: "scans.cards", relay: relay, filter: Self.filter, settings: settings) { event in try await apply(event) }
  }

  /// Applies one event; applying it again, or an older one after a newer, changes nothing.
  func apply(_ event: StoredEvent) async throws {
    guard let e = try StudentEvent(eventType: event.type, payload: event.payload) else { return }
    try await store.pool.withConnection { db in
      switch e {
      case .cardIssued(let m):
        _ = try await db.query("""
          INSERT INTO scans.cards AS c (card_id, student_id, lost, position) VALUES (\(m.cardId), \(m.studentId), false, \(event.position))
          ON CONFLICT (card_id) DO UPDATE SET student_id = EXCLUDED.student_id, lost = false, position = EXCLUDED.position
            WHERE c.position < EXCLUDED.position
          """, named: "scans.cards.issued")
      case .cardReportedLost(let m):
        _ = try await db.query("""
          INSERT INTO scans.cards AS c (card_id, student_id, lost, position) VALUES (\(m.cardId), \(m.studentId), true, \(event.position))
          ON CONFLICT (card_id) DO UPDATE SET lost = true, position = EXCLUDED.position WHERE c.position < EXCLUDED.position
          """, named: "scans.cards.lost")
      default:
        break
      }
    }
  }

  /// Who holds `card` and whether it is lost; nil when no event has named it.
  func lookup(_ card: String, _ db: PostgresConnection) async throws -> (student: String, lost: Bool)? {
    try await db.query("SELECT student_id, lost FROM scans.cards WHERE card_id = \(card)", named: "scans.cards.lookup")
      .first.map { (try $0.decode("student_id", as: String.self), try $0.decode("lost", as: Bool.self)) }
  }
}

/// The students context's events, as its contract declares them.
typealias StudentEvent = QuadEvents_campus_students_v1_students_proto
