internal import Authorization
internal import Crypto
package import CampusContracts
internal import CampusSupport
package import EventStore
internal import EventsService
internal import GRPCWire
internal import Postgres
internal import QuadProtobuf
package import QuadRPC

/// `campus.students.v1.Students`: the student aggregate. Every change is decided on the
/// student's current state, appended as events with the version it was decided on, and written
/// to the read model (`students.students`) in the same transaction.
package struct StudentsService: Campus_Students_V1_Students.ServiceProtocol {
  package let store: EventStore
  let writes: WriteRPC

  package typealias Student = Campus_Students_V1_Student

  /// The contract reflection serves for this context (beside the event log's).
  package static let protoFiles = [QuadFile_campus_students_v1_students_proto.serializedDescriptor]

  package init(store: EventStore) {
    self.store = store
    writes = WriteRPC(store: store)
  }

  /// Creates or updates the context's tables (under the migration lock).
  package func migrate() async throws {
    try await store.pool.withConnection { db in _ = try await Migrator.migrate(StudentsSchema.migrations, on: db) }
  }

  // MARK: Commands

  package func registerStudent(_ request: Campus_Students_V1_RegisterStudentRequest, context: ServerContext) async throws -> Student {
    let violations = StudentRules.profileViolations(request)
    guard violations.isEmpty else { throw RPCError.invalidArgument(violations) }
    return try await writes.perform(request, context: context) {
      guard try await current(request.studentId) == nil else {
        throw RPCError(code: .alreadyExists, message: "student \(request.studentId) is already registered")
      }
      return try await change(nil, [.studentRegistered(Self.registered(request, status: .enrolled))])
    }
  }

  /// The profile fields UpdateStudent's mask may name.
  static let profileFields: Set<String> = ["given_name", "family_name", "email", "program", "enrolled_on"]

  package func updateStudent(_ request: Campus_Students_V1_UpdateStudentRequest, context: ServerContext) async throws -> Student {
    var violations = Self.idViolations(request.studentId, expectedVersion: request.expectedVersion)
    let mask = Set(request.updateMask.paths)
    for path in mask.subtracting(Self.profileFields).sorted() {
      violations.append(RPCError.FieldViolation("update_mask", "\(path) is not a field UpdateStudent changes"))
    }
    guard violations.isEmpty else { throw RPCError.invalidArgument(violations) }
    return try await writes.perform(request, context: context) {
      let student = try await existing(request.studentId, expectedVersion: request.expectedVersion)
      func pick(_ field: String, _ new: String, _ old: String) -> String {
        (mask.isEmpty ? !new.isEmpty : mask.contains(field)) ? new : old
      }
      var profile = Campus_Students_V1_RegisterStudentRequest()
      profile.studentId = student.studentId
      profile.givenName = pick("given_name", request.givenName, student.givenName)
      profile.familyName = pick("family_name", request.familyName, student.familyName)
      profile.email = pick("email", request.email, student.email)
      profile.program = pick("program", request.program, student.program)
      profile.enrolledOn = pick("enrolled_on", request.enrolledOn, student.enrolledOn)
      let changed = StudentRules.profileViolations(profile)
      guard changed.isEmpty else { throw RPCError.invalidArgument(changed) }
      let e = Self.updated(student, to: profile)
      // Nothing to change: the answer is the student as they are, and no event is written.
      return e.changedFields.isEmpty ? (EventWrite(), student) : try await change(student, [.studentUpdated(e)])
    }
  }

  package func changeStudentStatus(_ request: Campus_Students_V1_ChangeStudentStatusRequest, context: ServerContext) async throws -> Student {
    var violations = Self.idViolations(request.studentId, expectedVersion: request.expectedVersion)
    switch request.status {
    case .unspecified, .UNRECOGNIZED: violations.append(RPCError.FieldViolation("status", "must be ENROLLED, ON_LEAVE, GRADUATED or WITHDRAWN"))
    default: break
    }
    if let why = StudentRules.reason(request.reason) { violations.append(RPCError.FieldViolation("reason", why)) }
    guard violations.isEmpty else { throw RPCError.invalidArgument(violations) }
    return try await writes.perform(request, context: context) {
      let student = try await existing(request.studentId, expectedVersion: request.expectedVersion)
      let e = try Self.statusChange(student, to: request.status, reason: request.reason)
      return try await change(student, [.studentStatusChanged(e)])
    }
  }

  package func issueCard(_ request: Campus_Students_V1_IssueCardRequest, context: ServerContext) async throws -> Student {
    var violations = Self.idViolations(request.studentId, expectedVersion: request.expectedVersion)
    if let why = StudentRules.cardId(request.cardId) { violations.append(RPCError.FieldViolation("card_id", why)) }
    guard violations.isEmpty else { throw RPCError.invalidArgument(violations) }
    return try await writes.perform(request, context: context) {
      let student = try await existing(request.studentId, expectedVersion: request.expectedVersion)
      guard StudentRules.mayHoldCard(student.status) else {
        throw RPCError(code: .failedPrecondition, message: "student \(student.studentId) is \(StudentRules.name(student.status)) and cannot hold a card")
      }
      if let holder = try await cardHolder(request.cardId) {
        guard holder == student.studentId else {
          throw RPCError(code: .alreadyExists, message: "card \(request.cardId) belongs to another student")
        }
        throw RPCError(code: .failedPrecondition, message: student.cardId == request.cardId
          ? "student \(student.studentId) already holds card \(request.cardId)"
          : "card \(request.cardId) was retired and cannot be issued again")
      }
      var e = Campus_Students_V1_CardIssued()
      e.studentId = student.studentId
      e.cardId = request.cardId
      e.replacedCardId = student.cardId
      return try await change(student, [.cardIssued(e)], then: [(
        "INSERT INTO students.cards (card_id, student_id) VALUES (\(request.cardId), \(student.studentId))", "students.card.insert")])
    }
  }

  package func reportCardLost(_ request: Campus_Students_V1_ReportCardLostRequest, context: ServerContext) async throws -> Student {
    var violations = Self.idViolations(request.studentId, expectedVersion: request.expectedVersion)
    if let why = StudentRules.cardId(request.cardId) { violations.append(RPCError.FieldViolation("card_id", why)) }
    guard violations.isEmpty else { throw RPCError.invalidArgument(violations) }
    return try await writes.perform(request, context: context) {
      let student = try await existing(request.studentId, expectedVersion: request.expectedVersion)
      guard student.cardId == request.cardId else {
        throw RPCError(code: .failedPrecondition, message: "card \(request.cardId) is not student \(student.studentId)'s current card")
      }
      var e = Campus_Students_V1_CardReportedLost()
      e.studentId = student.studentId
      e.cardId = request.cardId
      return try await change(student, [.cardReportedLost(e)])
    }
  }

  package func eraseStudent(_ request: Campus_Students_V1_EraseStudentRequest, context: ServerContext) async throws -> Student {
    var violations = Self.idViolations(request.studentId, expectedVersion: 0)
    if let why = StudentRules.reason(request.reason) { violations.append(RPCError.FieldViolation("reason", why)) }
    guard violations.isEmpty else { throw RPCError.invalidArgument(violations) }
    return try await writes.perform(request, context: context) {
      let student = try await existing(request.studentId, expectedVersion: 0)
      if student.erased { return (EventWrite(), student) }
      var e = Campus_Students_V1_StudentErased()
      e.studentId = student.studentId
      e.reason = request.reason
      // The key goes, and with it every sealed copy; so do the answers kept for retried writes
      // (they hold the student as they were).
      let answers = try await mapped { try await keptAnswers(of: student.studentId) }
      return try await change(student, [.studentErased(e)], then: [
        ("DELETE FROM students.keys WHERE student_id = \(student.studentId)", "students.key.delete")
      ] + answers.map { a in
        ("DELETE FROM quad_idempotency WHERE caller = \(a.caller) AND method = \(a.method) AND key = \(a.key)", "students.erase.answer")
      })
    }
  }

  /// The answers kept for retried writes of this context that hold the student's record.
  func keptAnswers(of id: String) async throws -> [(caller: String, method: String, key: String)] {
    try await store.pool.withConnection { db in
      try await db.query("""
        SELECT caller, method, key, response FROM quad_idempotency
        WHERE method LIKE '/campus.students.v1.Students/%' AND position(convert_to(\(id), 'UTF8') IN response) > 0
        """, named: "students.erase.answers").compactMap { row in
        guard (try? Student(serializedBytes: row.decode("response", as: [UInt8].self)))?.studentId == id else { return nil }
        return (try row.decode("caller"), try row.decode("method"), try row.decode("key"))
      }
    }
  }

  // MARK: Queries

  package func getStudent(_ request: Campus_Students_V1_GetStudentRequest, context: ServerContext) async throws -> Student {
    try Access.requireOwner(request.studentId)
    let violations = Self.idViolations(request.studentId, expectedVersion: 0)
    guard violations.isEmpty else { throw RPCError.invalidArgument(violations) }
    guard let student = try await mapped({ try await current(request.studentId) }) else { throw Self.notFound(request.studentId) }
    AuditLog.personalDataRead(context, subjects: [student.studentId])
    return student
  }

  package func listStudents(_ request: Campus_Students_V1_ListStudentsRequest, context: ServerContext) async throws -> Campus_Students_V1_ListStudentsResponse {
    var violations: [RPCError.FieldViolation] = []
    let size = CampusSupport.pageSize(request.pageSize, &violations)
    let after = PageToken.decode(request.pageToken, &violations) ?? ""
    if case .UNRECOGNIZED = request.status { violations.append(RPCError.FieldViolation("status", "is not a status")) }
    if let why = StudentRules.program(request.program) { violations.append(RPCError.FieldViolation("program", why)) }
    guard violations.isEmpty else { throw RPCError.invalidArgument(violations) }
    let status: Int32? = request.status == .unspecified ? nil : request.status.rawValue
    let program: String? = request.program.isEmpty ? nil : request.program
    let rows = try await mapped {
      try await store.pool.withConnection { db in
        try await db.query("""
          SELECT state FROM students.students
          WHERE student_id > \(after) AND (\(status)::int IS NULL OR status = \(status)::int)
            AND (\(program)::text IS NULL OR program = \(program)::text)
          ORDER BY student_id LIMIT \(Int64(size + 1))
          """, named: "students.list").map { try Student(serializedBytes: $0.decode("state", as: [UInt8].self)) }
      }
    }
    var response = Campus_Students_V1_ListStudentsResponse()
    response.students = Array(rows.prefix(size))
    if rows.count > size, let last = response.students.last { response.nextPageToken = PageToken.encode(last.studentId) }
    AuditLog.personalDataRead(context, subjects: response.students.map(\.studentId))
    return response
  }

  package func getStudentHistory(_ request: Campus_Students_V1_GetStudentHistoryRequest, context: ServerContext) async throws -> Campus_Students_V1_GetStudentHistoryResponse {
    try Access.requireOwner(request.studentId)
    var violations = Self.idViolations(request.studentId, expectedVersion: 0)
    let size = CampusSupport.pageSize(request.pageSize, &violations)
    let from = PageToken.decode(request.pageToken, &violations).map { Int64($0) ?? -1 } ?? 1
    if from < 1 { violations.append(RPCError.FieldViolation("page_token", "is not a page token of this history")) }
    guard violations.isEmpty else { throw RPCError.invalidArgument(violations) }
    let events = try await mapped {
      try await store.readStream(Self.stream(request.studentId), fromVersion: from, limit: size + 1)
    }
    guard !events.isEmpty || from > 1 else { throw Self.notFound(request.studentId) }
    let key = try await mapped { try await self.key(request.studentId) }
    var response = Campus_Students_V1_GetStudentHistoryResponse()
    response.entries = try events.prefix(size).map { e in
      var entry = Campus_Students_V1_StudentHistoryEntry()
      entry.version = e.version
      entry.position = e.position
      entry.recordedAt = Google_Protobuf_Timestamp(microseconds: e.recordedAtMicroseconds)
      entry.event.typeUrl = "type.googleapis.com/" + e.type
      entry.event.value = try Self.open(e, subject: request.studentId, key: key)
      return entry
    }
    if events.count > size { response.nextPageToken = PageToken.encode(String(events[size].version)) }
    AuditLog.personalDataRead(context, subjects: [request.studentId])
    return response
  }

  package func getStudentAsOf(_ request: Campus_Students_V1_GetStudentAsOfRequest, context: ServerContext) async throws -> Student {
    try Access.requireOwner(request.studentId)
    var violations = Self.idViolations(request.studentId, expectedVersion: 0)
    let asOf = request.asOf.microseconds
    if !request.hasAsOf {
      violations.append(RPCError.FieldViolation("as_of", "is required"))
    } else if asOf == nil {
      violations.append(RPCError.FieldViolation("as_of", "is not a valid timestamp"))
    }
    guard violations.isEmpty, let asOf else { throw RPCError.invalidArgument(violations) }
    guard let student = try await mapped({ try await rebuild(request.studentId, asOfMicroseconds: asOf) }) else {
      throw RPCError(code: .notFound, message: "student \(request.studentId) was not registered by then")
    }
    AuditLog.personalDataRead(context, subjects: [student.studentId])
    return student
  }

  /// The student folded from the events recorded up to `asOfMicroseconds` (all of them when
  /// nil); nil when there were none.
  package func rebuild(_ id: String, asOfMicroseconds: Int64?) async throws -> Student? {
    var student: Student?
    var from: Int64 = 1
    let key = try await self.key(id)
    while true {
      let page = try await store.readStream(Self.stream(id), fromVersion: from, limit: 1000, recordedUpToMicroseconds: asOfMicroseconds)
      for e in page {
        guard let event = try StudentEvent(eventType: e.type, payload: Self.open(e, subject: id, key: key)) else { continue }
        var s = student ?? Student()
        s.apply(event, version: e.version, atMicroseconds: e.recordedAtMicroseconds)
        student = s
      }
      guard page.count == 1000, let last = page.last else { return student }
      from = last.version + 1
    }
  }

  // MARK: The aggregate's write path

  static func stream(_ id: String) -> StreamID { StreamID(type: "student", id: id) }

  /// The key the student's personal fields are sealed with; nil once they were erased (or
  /// for a student registered before keys existed).
  func key(_ id: String) async throws -> SymmetricKey? {
    try await store.pool.withConnection { db in
      try await db.query("SELECT key FROM students.keys WHERE student_id = \(id)", named: "students.key.get")
        .first.map { SymmetricKey(data: try $0.decode("key", as: [UInt8].self)) }
    }
  }

  /// A logged event's payload with its personal fields opened (emptied once erased).
  static func open(_ e: StoredEvent, subject: String, key: SymmetricKey?) throws -> [UInt8] {
    guard let fields = StudentEvent.personalFieldNumbers[e.type] else { return e.payload }
    return try PersonalData.open(e.payload, type: e.type, fields: fields, subject: subject, key: key)
  }

  /// The student as the read model has them, or nil.
  func current(_ id: String) async throws -> Student? {
    try await store.pool.withConnection { db in
      try await db.query("SELECT state FROM students.students WHERE student_id = \(id)", named: "students.get")
        .first.map { try Student(serializedBytes: $0.decode("state", as: [UInt8].self)) }
    }
  }

  /// The student a command changes: NOT_FOUND when unknown, ABORTED when the caller decided on
  /// another version.
  func existing(_ id: String, expectedVersion: Int64) async throws -> Student {
    guard let student = try await mapped({ try await current(id) }) else { throw Self.notFound(id) }
    guard expectedVersion == 0 || expectedVersion == student.version else {
      throw RPCError(code: .aborted, message: "student \(id) is at version \(student.version), not \(expectedVersion): read it again and retry")
    }
    return student
  }

  func cardHolder(_ card: String) async throws -> String? {
    try await mapped {
      try await store.pool.withConnection { db in
        try await db.query("SELECT student_id FROM students.cards WHERE card_id = \(card)", named: "students.card.holder")
          .first.map { try $0.decode("student_id", as: String.self) }
      }
    }
  }

  /// The write that appends `events` to the student's stream (expecting the version they were
  /// decided on) and stores the state they lead to, with `then` after it; and that state.
  func change(_ student: Student?, _ events: [StudentEvent], then statements: [(sql: SQL, name: String)] = []) async throws -> (EventWrite, Student) {
    var state = student ?? Student()
    let base = student?.version ?? 0
    let now = CampusSupport.nowMicroseconds()
    for (i, e) in events.enumerated() { state.apply(e, version: base + Int64(i) + 1, atMicroseconds: now) }
    var write = EventWrite()
    write.statements = [("""
      INSERT INTO students.students (student_id, version, status, program, state)
      VALUES (\(state.studentId), \(state.version), \(state.status.rawValue), \(state.program), \(state.serializedBytes()))
      ON CONFLICT (student_id) DO UPDATE
        SET version = EXCLUDED.version, status = EXCLUDED.status, program = EXCLUDED.program, state = EXCLUDED.state
      """, "students.store")] + statements
    // Personal fields are sealed with the student's key: a new one at registration.
    let id = state.studentId
    let plain = events.map(Self.newEvent)
    var key: SymmetricKey?
    if plain.contains(where: { StudentEvent.personalFieldNumbers[$0.type] != nil }) {
      if let student {
        guard !student.erased else { throw RPCError(code: .failedPrecondition, message: "student \(id) was erased: their personal data cannot be written") }
        key = try await mapped { try await self.key(id) }
      }
      if key == nil {
        // A new student, or one an older version registered before keys existed (a rolling
        // upgrade): a new key, stored in the same transaction as the version-checked events,
        // so of two writers racing to create it only the one whose events commit keeps its key.
        let k = PersonalData.newKey()
        key = k
        write.statements.insert((
          "INSERT INTO students.keys (student_id, key) VALUES (\(id), \(k.withUnsafeBytes { Array($0) })) ON CONFLICT (student_id) DO NOTHING",
          "students.key.insert"), at: 1)
      }
    }
    write.events = try plain.enumerated().map { i, e in
      var sealed = e
      if let fields = StudentEvent.personalFieldNumbers[e.type], let key {
        sealed = NewEvent(type: e.type, payload: try PersonalData.seal(e.payload, type: e.type, fields: fields, subject: id, key: key), metadata: e.metadata)
      }
      return EventWrite.Append(sealed, to: Self.stream(id), expectedVersion: base + Int64(i))
    }
    return (write, state)
  }

  static func newEvent(_ e: StudentEvent) -> NewEvent {
    switch e {
    case .studentRegistered(let m): NewEvent(m)
    case .studentUpdated(let m): NewEvent(m)
    case .studentStatusChanged(let m): NewEvent(m)
    case .cardIssued(let m): NewEvent(m)
    case .cardReportedLost(let m): NewEvent(m)
    case .studentErased(let m): NewEvent(m)
    }
  }

  static func statusChange(_ student: Student, to status: Campus_Students_V1_StudentStatus, reason: String) throws -> Campus_Students_V1_StudentStatusChanged {
    guard StudentRules.allows(student.status, status) else {
      throw RPCError(
        code: .failedPrecondition,
        message: "student \(student.studentId) cannot go from \(StudentRules.name(student.status)) to \(StudentRules.name(status))")
    }
    var e = Campus_Students_V1_StudentStatusChanged()
    e.studentId = student.studentId
    e.from = student.status
    e.to = status
    e.reason = reason
    return e
  }

  /// The registration of the profile `p` (a request, or an imported row's).
  static func registered(_ p: Campus_Students_V1_RegisterStudentRequest, status: Campus_Students_V1_StudentStatus) -> Campus_Students_V1_StudentRegistered {
    var e = Campus_Students_V1_StudentRegistered()
    e.studentId = p.studentId
    e.givenName = p.givenName
    e.familyName = p.familyName
    e.email = p.email
    e.program = p.program
    e.enrolledOn = p.enrolledOn
    e.status = status
    return e
  }

  /// The update taking `s` to the profile `p`, naming the fields that differ (none: no change).
  static func updated(_ s: Student, to p: Campus_Students_V1_RegisterStudentRequest) -> Campus_Students_V1_StudentUpdated {
    var e = Campus_Students_V1_StudentUpdated()
    e.studentId = s.studentId
    e.givenName = p.givenName
    e.familyName = p.familyName
    e.email = p.email
    e.program = p.program
    e.enrolledOn = p.enrolledOn
    e.changedFields = [("given_name", s.givenName == p.givenName), ("family_name", s.familyName == p.familyName), ("email", s.email == p.email),
                       ("program", s.program == p.program), ("enrolled_on", s.enrolledOn == p.enrolledOn)].filter { !$0.1 }.map(\.0)
    return e
  }

  // MARK: Request checks and errors

  static func idViolations(_ id: String, expectedVersion: Int64) -> [RPCError.FieldViolation] {
    CampusSupport.violations([("student_id", StudentRules.studentId(id)), ("expected_version", StudentRules.expectedVersion(expectedVersion))])
  }

  static func notFound(_ id: String) -> RPCError {
    RPCError(code: .notFound, message: "no student \(id)")
  }

  func mapped<R>(_ body: () async throws -> R) async throws -> R { try await CampusSupport.mapped(body) }
}
