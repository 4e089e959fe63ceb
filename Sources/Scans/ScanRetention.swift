internal import CampusContracts
internal import CampusSupport
package import EventStore
package import Foundation
package import Logging
internal import Postgres
internal import QuadProtobuf

/// Keeps who-was-where no longer than the retention period: scans from before its cutoff
/// (the start of a UTC day) lose their card and student, in the log (the ScanRecorded payload,
/// rewritten in place at its position), in `scans.scans`, in the kept answers of RecordScan, and
/// through a ScansAnonymised event, in the projections of those days (the analytics projection
/// drops its per-card and per-student rows; counts and occupancy stay), so a projection rebuilt
/// from the anonymised log equals the live one.
/// Positions, order, scan ids, locations, times and directions stay.
package struct ScanRetention: Sendable {
  /// The fields of ScanRecorded and Scan that say whose card it was (`card_id`, `student_id`).
  static let identifyingFields: [Int32] = [2, 7]

  package let store: EventStore
  package let days: Int
  let logger: Logger

  package init(store: EventStore, days: Int, logger: Logger) {
    self.store = store
    self.days = days
    self.logger = logger
  }

  /// The first instant kept: the start of the UTC day `days` days before `now`.
  package func cutoff(now: Date = Date()) -> Int64 {
    let day: Int64 = 86_400_000_000
    let micros = Int64(now.timeIntervalSince1970 * 1_000_000) - Int64(days) * day
    return micros - ((micros % day) + day) % day
  }

  /// Anonymises everything older than the cutoff, a batch of scans per transaction; returns the
  /// positions of the events it rewrote (in the order done).
  @discardableResult
  package func run(now: Date = Date(), batch: Int = 500) async throws -> [Int64] {
    let cutoff = cutoff(now: now)
    let cutoffTime = Double(cutoff) / 1_000_000
    var rewritten: [Int64] = []
    while true {
      let done: [Int64] = try await store.pool.withConnection { db in
        try await db.transaction { tx in
          let scans = try await tx.query("""
            SELECT scan_id, state FROM scans.scans
            WHERE scanned_at < to_timestamp(\(cutoffTime)) AND (card_id <> '' OR student_id <> '')
            ORDER BY scanned_at, scan_id LIMIT \(Int64(batch)) FOR UPDATE
            """, named: "scans.retention.due").map { (try $0.decode("scan_id", as: String.self), try $0.decode("state", as: [UInt8].self)) }
          guard !scans.isEmpty else { return [] }
          for (id, state) in scans {
            _ = try await tx.query("""
              UPDATE scans.scans SET card_id = '', student_id = '', state = \(try PersonalData.strip(state, fields: Self.identifyingFields))
              WHERE scan_id = \(id)
              """, named: "scans.retention.row")
          }
          let events = try await tx.query("""
            SELECT position, payload FROM quad_events
            WHERE stream_type = 'scan' AND stream_id = ANY(\(PostgresTextArray(scans.map(\.0)))::text[]) AND event_type = \(Campus_Scans_V1_ScanRecorded.protoMessageName)
            """, named: "scans.retention.events").map { (try $0.decode("position", as: Int64.self), try $0.decode("payload", as: [UInt8].self)) }
          for (position, payload) in events {
            _ = try await tx.query(
              "UPDATE quad_events SET payload = \(try PersonalData.strip(payload, fields: Self.identifyingFields)) WHERE position = \(position)",
              named: "scans.retention.event")
          }
          return events.map(\.0)
        }
      }
      if done.isEmpty { break }
      rewritten += done
    }
    // The projections learn of it from the log (a rebuild then agrees with the live one); the
    // kept RecordScan answers from before the cutoff go.
    var write = EventWrite()
    write.statements = [(
      "DELETE FROM quad_idempotency WHERE method LIKE '/campus.scans.v1.Scans/%' AND created_at < to_timestamp(\(cutoffTime))",
      "scans.retention.answers")]
    if !rewritten.isEmpty {
      var e = Campus_Scans_V1_ScansAnonymised()
      e.before = Google_Protobuf_Timestamp(microseconds: cutoff)
      e.scans = Int64(rewritten.count)
      write.events = [EventWrite.Append(NewEvent(e), to: StreamID(type: "scan-retention", id: "scans"), expectedVersion: nil)]
    }
    _ = try await store.write(write)
    if !rewritten.isEmpty { logger.notice("scan retention: anonymised \(rewritten.count) scans recorded before the cutoff", metadata: ["cutoff_us": "\(cutoff)"]) }
    return rewritten
  }
}
