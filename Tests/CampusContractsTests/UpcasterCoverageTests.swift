internal import CampusContracts
internal import CampusSupport
internal import EventStore
internal import QuadProtobuf
internal import Testing

/// Every campus event a contract marks `superseded_by` is read through an upcaster registered
/// in `CampusUpcasters`, and every registered upcaster reads a type the contracts supersede.
@Suite("Campus upcasters")
struct UpcasterCoverageTests {
  static let eventSets: [any DomainEventSet.Type] = [
    QuadEvents_campus_students_v1_students_proto.self, QuadEvents_campus_scans_v1_scans_proto.self,
    QuadEvents_campus_accounts_v1_accounts_proto.self, QuadEvents_campus_cards_v1_cards_proto.self,
  ]

  @Test("The registered upcasters are exactly the superseded campus events")
  func coverage() throws {
    var superseded: [String: String] = [:]
    for set in Self.eventSets { superseded.merge(set.supersededBy) { a, _ in a } }
    let upcasters = try CampusUpcasters.all()
    #expect(upcasters.supersededTypes == Set(superseded.keys), "superseded in the contracts: \(superseded)")
    let allEvents = Set(Self.eventSets.flatMap { $0.eventTypes })
    for (old, new) in superseded {
      #expect(allEvents.contains(new), "\(old) is superseded by \(new), which is not a campus event")
    }
  }
}
