package import CampusContracts
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

  package static func studentId(_ v: String) -> String? {
    if v.isEmpty { return "is required" }
    guard v.utf8.count <= 32 else { return "is longer than 32 characters" }
    let ok = v.utf8.enumerated().allSatisfy { i, c in isAlphanumeric(c) || (i > 0 && (c == UInt8(ascii: "-") || c == UInt8(ascii: "_"))) }
    return ok ? nil : "must be letters, digits, '-' or '_', starting with a letter or digit"
  }

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
      (1...63).contains(l.utf8.count) && l.utf8.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: "-") }
        && !l.hasPrefix("-") && !l.hasSuffix("-")
    }
    return domainOK ? nil : "is not an email address (its domain)"
  }

  package static func program(_ v: String) -> String? {
    guard v.utf8.count <= 32 else { return "is longer than 32 characters" }
    return v.utf8.allSatisfy({ isAlphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") })
      ? nil : "must be letters, digits, '-' or '_'"
  }

  /// Empty, or a real calendar date YYYY-MM-DD between 1900 and 2199.
  package static func date(_ v: String) -> String? {
    if v.isEmpty { return nil }
    let b = Array(v.utf8)
    func number(_ r: Range<Int>) -> Int? {
      var n = 0
      for i in r {
        guard b[i] >= 0x30, b[i] <= 0x39 else { return nil }
        n = n * 10 + Int(b[i] - 0x30)
      }
      return n
    }
    guard b.count == 10, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-"),
          let y = number(0..<4), let m = number(5..<7), let d = number(8..<10),
          (1900...2199).contains(y), (1...12).contains(m)
    else { return "must be a date YYYY-MM-DD" }
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
    let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]
    return (1...days).contains(d) ? nil : "is not a day of that month"
  }

  package static func cardId(_ v: String) -> String? {
    if v.isEmpty { return "is required" }
    guard (4...32).contains(v.utf8.count) else { return "must be 4 to 32 characters" }
    return v.utf8.allSatisfy({ isAlphanumeric($0) || $0 == UInt8(ascii: "-") }) ? nil : "must be letters, digits or '-'"
  }

  package static func reason(_ v: String) -> String? {
    v.count <= 500 ? nil : "is longer than 500 characters"
  }

  package static func expectedVersion(_ v: Int64) -> String? {
    v >= 0 ? nil : "is negative"
  }

  /// The violations of a whole profile (registration, import).
  package static func profileViolations(_ p: Campus_Students_V1_RegisterStudentRequest, idField: String = "student_id") -> [RPCError.FieldViolation] {
    [(idField, studentId(p.studentId)), ("given_name", personName(p.givenName)), ("family_name", personName(p.familyName)),
     ("email", email(p.email)), ("program", program(p.program)), ("enrolled_on", date(p.enrolledOn))]
      .compactMap { field, why in why.map { RPCError.FieldViolation(field, $0) } }
  }

  private static func isAlphanumeric(_ c: UInt8) -> Bool {
    (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
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
    }
    self.version = version
    updatedAt = at
  }
}
