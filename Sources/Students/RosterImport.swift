package import CampusContracts
internal import CampusSupport
internal import Crypto
internal import EventStore
internal import EventsService
internal import GRPCWire
internal import QuadProtobuf
package import QuadRPC

extension StudentsService {
  /// Each row is checked, then registers or updates its student through the outbox under an
  /// idempotency key made of the registrar id and a hash of the row: a row imported before is
  /// answered from the key and writes nothing, so an import run again changes nothing. Rows
  /// are applied one at a time in the order sent; a database failure ends the call (rows
  /// before it stay imported, and running the import again picks up where it stopped).
  package func importRoster(_ requests: RequestStream<Campus_Students_V1_RosterRow>, context: ServerContext) async throws -> Campus_Students_V1_ImportRosterResponse {
    var summary = Campus_Students_V1_ImportRosterResponse()
    var index: Int64 = 0
    for try await row in requests {
      index += 1
      let number = row.rowNumber == 0 ? index : row.rowNumber
      do {
        switch try await importRow(row, context: context) {
        case .created: summary.created += 1
        case .updated: summary.updated += 1
        case .unchanged: summary.unchanged += 1
        }
      } catch let e as RPCError where [.invalidArgument, .failedPrecondition, .alreadyExists, .aborted].contains(e.code) {
        summary.rejected += 1
        if summary.rejections.count < CampusSupport.maximumListedRejections {
          var r = Campus_Students_V1_RowRejection()
          r.rowNumber = number
          r.registrarId = row.registrarId
          r.reason = e.message
          summary.rejections.append(r)
        }
      }
    }
    return summary
  }

  enum RowOutcome { case created, updated, unchanged }

  func importRow(_ row: Campus_Students_V1_RosterRow, context: ServerContext) async throws -> RowOutcome {
    var violations = StudentRules.profileViolations(row.profile, idField: "registrar_id")
    let status = StudentRules.status(named: row.status)
    if status == nil { violations.append(RPCError.FieldViolation("status", "must be enrolled, on_leave, graduated or withdrawn")) }
    guard violations.isEmpty, let status else { throw RPCError.invalidArgument(violations) }
    // The row without its number: the same record on another line is the same record.
    var record = row
    record.rowNumber = 0
    let hash = Array(SHA256.hash(data: record.serializedBytes()))
    let key = IdempotencyKey(
      caller: WriteRPC.caller(context), method: context.path,
      key: "roster/\(row.registrarId)/" + PageToken.encode(hash.prefix(16)),
      requestHash: hash)
    // One retry when another write moved the student on between reading and writing.
    for attempt in 0..<2 {
      var outcome = RowOutcome.unchanged
      do {
        let (_, replayed) = try await writes.perform(key: key, context: context) {
          guard let student = try await mapped({ try await current(row.registrarId) }) else {
            outcome = .created
            return try await change(nil, [.studentRegistered(Self.registered(row.profile, status: status))])
          }
          var events: [StudentEvent] = []
          let e = Self.updated(student, to: row.profile)
          if !e.changedFields.isEmpty { events.append(.studentUpdated(e)) }
          if student.status != status {
            events.append(.studentStatusChanged(try Self.statusChange(student, to: status, reason: "registrar roster")))
          }
          // Nothing differs: only the key is stored, so the next run answers from it.
          guard !events.isEmpty else { return (EventWrite(), student) }
          outcome = .updated
          return try await change(student, events)
        }
        return replayed ? .unchanged : outcome
      } catch let e as RPCError where e.code == .aborted && attempt == 0 {
        continue
      }
    }
    throw RPCError(code: .aborted, message: "student \(row.registrarId) kept changing during the import")
  }
}

extension Campus_Students_V1_RosterRow {
  /// The student profile the row describes.
  var profile: Campus_Students_V1_RegisterStudentRequest {
    var p = Campus_Students_V1_RegisterStudentRequest()
    p.studentId = registrarId
    p.givenName = givenName
    p.familyName = familyName
    p.email = email
    p.program = program
    p.enrolledOn = enrolledOn
    return p
  }
}
