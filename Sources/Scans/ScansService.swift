internal import Authorization
package import CampusContracts
internal import CampusSupport
package import EventStore
internal import EventsService
internal import GRPCWire
internal import Postgres
internal import QuadProtobuf
package import QuadRPC

/// `campus.scans.v1.Scans`: each scan is one stream (`scan/<scan_id>`) whose single event is
/// appended with expected version 0, so a scan id is recorded once however often a device
/// resends it; the scan row commits in the same transaction. The card's holder comes from the
/// context's own ``CardDirectory``.
package struct ScansService: Campus_Scans_V1_Scans.ServiceProtocol {
  package typealias Scan = Campus_Scans_V1_Scan

  package let store: EventStore
  let writes: WriteRPC
  let directory: CardDirectory

  /// The contract reflection serves for this context.
  package static let protoFiles = [QuadFile_campus_scans_v1_scans_proto.serializedDescriptor]

  /// How far ahead of this server's clock a scan's time may be.
  static let clockSkew: Int64 = 5 * 60 * 1_000_000

  package init(store: EventStore) {
    self.store = store
    writes = WriteRPC(store: store)
    directory = CardDirectory(store: store)
  }

  /// Creates or updates the context's tables (under the migration lock).
  package func migrate() async throws {
    try await store.pool.withConnection { db in _ = try await Migrator.migrate(ScansSchema.migrations, on: db) }
  }

  package func recordScan(_ request: Campus_Scans_V1_RecordScanRequest, context: ServerContext) async throws -> Scan {
    try await record(request, context: context).scan
  }

  package func recordScans(_ requests: RequestStream<Campus_Scans_V1_RecordScanRequest>, context: ServerContext) async throws -> Campus_Scans_V1_RecordScansResponse {
    var summary = Campus_Scans_V1_RecordScansResponse()
    var index: Int64 = 0
    for try await request in requests {
      index += 1
      do {
        if try await record(request, context: context).duplicate { summary.duplicates += 1 } else { summary.recorded += 1 }
      } catch let e as RPCError where e.code == .invalidArgument || e.code == .failedPrecondition {
        summary.rejected += 1
        if summary.rejections.count < CampusSupport.maximumListedRejections {
          var r = Campus_Scans_V1_ScanRejection()
          r.index = index
          r.scanId = request.scanId
          r.reason = e.message
          summary.rejections.append(r)
        }
      }
    }
    return summary
  }

  /// Records one scan; a scan id recorded before answers with the scan as first recorded.
  func record(_ request: Campus_Scans_V1_RecordScanRequest, context: ServerContext) async throws -> (scan: Scan, duplicate: Bool) {
    let now = CampusSupport.nowMicroseconds()
    try CampusSupport.check(Self.violations(request, now: now))
    let id = request.scanId.isEmpty ? "q-" + String(UInt64.random(in: 0...UInt64.max), radix: 36) + String(UInt32.random(in: 0...UInt32.max), radix: 36) : request.scanId
    do {
      let scan = try await writes.perform(request, context: context) {
        let card = try await CampusSupport.mapped { try await store.pool.withConnection { db in try await directory.lookup(request.cardId, db) } }
        var e = Campus_Scans_V1_ScanRecorded()
        e.scanId = id
        e.cardId = request.cardId
        e.location = request.location
        e.direction = request.direction
        e.scannedAt = request.scannedAt
        e.deviceId = request.deviceId
        e.studentId = card?.student ?? ""
        e.cardStatus = card.map { $0.lost ? .lost : .valid } ?? .unknown
        let scan = Self.scan(e, recordedAt: now)
        var write = EventWrite()
        write.statements = [("""
          INSERT INTO scans.scans (scan_id, card_id, student_id, location, scanned_at, recorded_at, state)
          VALUES (\(id), \(e.cardId), \(e.studentId), \(e.location),
                  timestamptz 'epoch' + \(request.scannedAt.microseconds ?? 0) * interval '1 microsecond',
                  timestamptz 'epoch' + \(now) * interval '1 microsecond', \(scan.serializedBytes()))
          """, "scans.insert")]
        write.events = [EventWrite.Append(NewEvent(e), to: StreamID(type: "scan", id: id), expectedVersion: 0)]
        return (write, scan)
      }
      return (scan, false)
    } catch let e as RPCError where e.code == .aborted && !request.scanId.isEmpty {
      // The scan's stream exists: this id was recorded before.
      guard let first = try await CampusSupport.mapped({ try await scan(id) }) else { throw e }
      return (first, true)
    }
  }

  static func scan(_ e: Campus_Scans_V1_ScanRecorded, recordedAt: Int64) -> Scan {
    var s = Scan()
    s.scanId = e.scanId
    s.cardId = e.cardId
    s.location = e.location
    s.direction = e.direction
    s.scannedAt = e.scannedAt
    s.deviceId = e.deviceId
    s.studentId = e.studentId
    s.cardStatus = e.cardStatus
    s.recordedAt = Google_Protobuf_Timestamp(microseconds: recordedAt)
    return s
  }

  func scan(_ id: String) async throws -> Scan? {
    try await store.pool.withConnection { db in
      try await db.query("SELECT state FROM scans.scans WHERE scan_id = \(id)", named: "scans.get")
        .first.map { try Scan(serializedBytes: $0.decode("state", as: [UInt8].self)) }
    }
  }

  static func violations(_ r: Campus_Scans_V1_RecordScanRequest, now: Int64) -> [RPCError.FieldViolation] {
    var scannedAt: String?
    if !r.hasScannedAt {
      scannedAt = "is required"
    } else if let t = r.scannedAt.microseconds {
      if t > now + clockSkew { scannedAt = "is more than 5 minutes ahead of the server's clock" }
      if t < 946_684_800_000_000 { scannedAt = "is before 2000" }
    } else {
      scannedAt = "is not a valid timestamp"
    }
    let direction: String? = r.direction == .in || r.direction == .out ? nil : "must be DIRECTION_IN or DIRECTION_OUT"
    return CampusSupport.violations([
      ("scan_id", r.scanId.isEmpty ? nil : CampusSupport.token(r.scanId, 1...64)),
      ("card_id", CampusSupport.code(r.cardId, 4...32, extra: "-")),
      ("location", CampusSupport.code(r.location, 1...64, extra: "-", lowercaseOnly: true)),
      ("direction", direction),
      ("scanned_at", scannedAt),
      ("device_id", CampusSupport.token(r.deviceId, 1...64)),
    ])
  }

  package func listScans(_ request: Campus_Scans_V1_ListScansRequest, context: ServerContext) async throws -> Campus_Scans_V1_ListScansResponse {
    // A person with an own-records grant lists only their own scans (by student_id).
    try Access.requireOwner(request.studentId)
    var violations: [RPCError.FieldViolation] = []
    let filters = [("student_id", request.studentId), ("card_id", request.cardId), ("location", request.location)].filter { !$0.1.isEmpty }
    if filters.count > 1 {
      violations.append(RPCError.FieldViolation(filters[1].0, "at most one of student_id, card_id and location may be set"))
    }
    let size = CampusSupport.pageSize(request.pageSize, &violations)
    var from: Int64?
    var to: Int64?
    if request.hasFrom {
      from = request.from.microseconds
      if from == nil { violations.append(RPCError.FieldViolation("from", "is not a valid timestamp")) }
    }
    if request.hasTo {
      to = request.to.microseconds
      if to == nil { violations.append(RPCError.FieldViolation("to", "is not a valid timestamp")) }
    }
    // The token: the last scan's time and id ("micros/id").
    var after: (Int64, String)?
    if let token = PageToken.decode(request.pageToken, &violations) {
      let parts = token.split(separator: "/", maxSplits: 1)
      if parts.count == 2, let t = Int64(parts[0]) {
        after = (t, String(parts[1]))
      } else {
        violations.append(RPCError.FieldViolation("page_token", "is not a page token this service handed out"))
      }
    }
    try CampusSupport.check(violations)
    let value = filters.first?.1 ?? ""
    let afterTime = after?.0
    let afterID = after?.1 ?? ""
    let rows = try await CampusSupport.mapped {
      try await store.pool.withConnection { db in
        // One statement per filter, so each is planned on its own index.
        let column: StaticString = switch filters.first?.0 {
        case "student_id": "student_id"
        case "card_id": "card_id"
        case "location": "location"
        default: "''"
        }
        let sql = Self.listing(column: column, value, from, to, afterTime, afterID, size)
        return try await db.query(sql, named: "scans.list.\(filters.first?.0 ?? "all")").map {
          (try Scan(serializedBytes: $0.decode("state", as: [UInt8].self)), try $0.decode("at", as: Int64.self))
        }
      }
    }
    var response = Campus_Scans_V1_ListScansResponse()
    response.scans = rows.prefix(size).map(\.0)
    if rows.count > size, let last = rows.prefix(size).last {
      response.nextPageToken = PageToken.encode("\(last.1)/\(last.0.scanId)")
    }
    // Where people were and when: personal data, audited by whose it was.
    AuditLog.personalDataRead(context, subjects: Array(Set(response.scans.map(\.studentId).filter { !$0.isEmpty })).sorted())
    return response
  }

  static func listing(column: StaticString, _ value: String, _ from: Int64?, _ to: Int64?, _ afterTime: Int64?, _ afterID: String, _ size: Int) -> SQL {
    """
    SELECT state, (extract(epoch FROM scanned_at) * 1000000)::int8 AS at FROM scans.scans
    WHERE \(literal: column) = \(value)
      AND (\(from)::int8 IS NULL OR scanned_at >= timestamptz 'epoch' + \(from)::int8 * interval '1 microsecond')
      AND (\(to)::int8 IS NULL OR scanned_at < timestamptz 'epoch' + \(to)::int8 * interval '1 microsecond')
      AND (\(afterTime)::int8 IS NULL OR (scanned_at, scan_id) > (timestamptz 'epoch' + \(afterTime)::int8 * interval '1 microsecond', \(afterID)))
    ORDER BY scanned_at, scan_id LIMIT \(Int64(size + 1))
    """
  }
}
