package import CampusContracts
internal import CampusSupport
internal import QuadProtobuf
package import QuadRPC

/// The student aggregate's events, as the generator declares them.
package typealias StudentEvent = QuadEvents_campus_students_v1_students_proto

/// The rules of the student aggregate, pure: what a valid field is, which status changes are
/// allowed, and how each event changes a student. Writes and `GetStudentAsOf` fold the same
/// events with the same ``Campus_Students_V1_Student/apply(_:version:atMicroseconds:)``.
package enum StudentRules {
  /// Whether a student may move from `from` to `to` (the table in students.proto).
  package static func allows(_ from: Campus_Students_V1_StudentStatus, _ to: Campus_Students_V1_StudentStatus) -> Bool {
    switch (from, to) {
    case (.enrolled, .onLeave), (.enrolled, .graduated), (.enrolled, .withdrawn),
         (.onLeave, .enrolled), (.onLeave, .withdrawn),
         (.withdrawn, .enrolled):
      return true
    default:
      return false
    }
  }

  /// Whether a student in `status` may hold a card.
  package static func mayHoldCard(_ status: Campus_Students_V1_StudentStatus) -> Bool {
    status == .enrolled || status == .onLeave
  }

  /// The name the contract and the roster give a status.
  package static func name(_ status: Campus_Students_V1_StudentStatus) -> String {
    switch status {
    case .enrolled: "enrolled"
    case .onLeave: "on_leave"
    case .graduated: "graduated"
    case .withdrawn: "withdrawn"
    case .unspecified: "unspecified"
    case .UNRECOGNIZED(let n): "status \(n)"
    }
  }

  /// The status a roster's `status` column names; empty means enrolled.
  package static func status(named name: String) -> Campus_Students_V1_StudentStatus? {
    switch name.lowercased() {
    case "", "enrolled": .enrolled
    case "on_leave", "on leave", "on-leave": .onLeave
    case "graduated": .graduated
    case "withdrawn": .withdrawn
    default: nil
    }
  }

  // MARK: Field checks (each returns why the value is bad, or nil)

  package static func studentId(_ v: String) -> String? { CampusSupport.code(v, 1...32) }

  package static func personName(_ v: String) -> String? {
    let trimmed = v.trimmingSpaces
    if trimmed.isEmpty { return "is required" }
    guard v.count <= 100 else { return "is longer than 100 characters" }
    guard trimmed == v else { return "has leading or trailing spaces" }
    return v.unicodeScalars.contains { $0.properties.generalCategory == .control } ? "contains control characters" : nil
  }

  package static func email(_ v: String) -> String? {
    if v.isEmpty { return "is required" }
    guard v.utf8.count <= 254 else { return "is longer than 254 bytes" }
    let parts = v.split(separator: "@", omittingEmptySubsequences: false)
    guard parts.count == 2, let local = parts.first, let domain = parts.last,
          (1...64).contains(local.utf8.count),
          local.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "(") && $0 != UInt8(ascii: ")") && $0 != UInt8(ascii: ",") }),
          !local.hasPrefix("."), !local.hasSuffix("."), !local.contains("..")
    else { return "is not an email address" }
    let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
    let domainOK = labels.count >= 2 && labels.allSatisfy { l in
      (1...63).contains(l.utf8.count) && l.utf8.allSatisfy { CampusSupport.isAlphanumeric($0) || $0 == UInt8(ascii: "-") }
        && !l.hasPrefix("-") && !l.hasSuffix("-")
    }
    return domainOK ? nil : "is not an email address (its domain)"
  }

  package static func program(_ v: String) -> String? { CampusSupport.code(v, 0...32) }

  /// Empty, or a real calendar date YYYY-MM-DD.
  package static func date(_ v: String) -> String? { CampusSupport.date(v) }

  package static func cardId(_ v: String) -> String? { CampusSupport.code(v, 4...32, extra: "-") }

  package static func reason(_ v: String) -> String? {
    v.count <= 500 ? nil : "is longer than 500 characters"
  }

  package static func expectedVersion(_ v: Int64) -> String? {
    v >= 0 ? nil : "is negative"
  }

  /// The violations of a whole profile (registration, import).
  package static func profileViolations(_ p: Campus_Students_V1_RegisterStudentRequest, idField: String = "student_id") -> [RPCError.FieldViolation] {
    CampusSupport.violations([
      (idField, studentId(p.studentId)), ("given_name", personName(p.givenName)), ("family_name", personName(p.familyName)),
      ("email", email(p.email)), ("program", program(p.program)), ("enrolled_on", date(p.enrolledOn)),
    ])
  }
}

extension StringProtocol {
  fileprivate var trimmingSpaces: Substring {
    let s = self[...]
    guard let first = s.firstIndex(where: { !$0.isWhitespace }), let last = s.lastIndex(where: { !$0.isWhitespace }) else { return "" }
    return Substring(s[first...last])
  }
}

extension Campus_Students_V1_Student {
  /// The student after `event`, which made stream version `version` at `atMicroseconds`.
  package mutating func apply(_ event: StudentEvent, version: Int64, atMicroseconds: Int64) {
    let at = Google_Protobuf_Timestamp(microseconds: atMicroseconds)
    switch event {
    case .studentRegistered(let e):
      self = Campus_Students_V1_Student()
      studentId = e.studentId
      givenName = e.givenName
      familyName = e.familyName
      email = e.email
      program = e.program
      enrolledOn = e.enrolledOn
      status = e.status == .unspecified ? .enrolled : e.status
      registeredAt = at
    case .studentUpdated(let e):
      givenName = e.givenName
      familyName = e.familyName
      email = e.email
      program = e.program
      enrolledOn = e.enrolledOn
    case .studentStatusChanged(let e):
      status = e.to
    case .cardIssued(let e):
      if !cardId.isEmpty { retiredCardIds.append(cardId) }
      cardId = e.cardId
    case .cardReportedLost(let e):
      if cardId == e.cardId {
        retiredCardIds.append(cardId)
        cardId = ""
      }
    case .studentErased:
      givenName = ""
      familyName = ""
      email = ""
      erased = true
    }
    self.version = version
    updatedAt = at
  }
}
