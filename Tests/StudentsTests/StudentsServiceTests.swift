internal import CampusContracts
internal import Foundation
internal import EventStore
internal import GRPCWire
internal import Postgres
internal import QuadProtobuf
internal import QuadRPC
internal import Students
internal import Testing
internal import TestSupport

/// The students context over real gRPC on a real PostgreSQL: commands and their rules, the
/// read model, history and state as of a past instant, and the roster import.
@Suite("Students")
struct StudentsServiceTests {
  typealias Client = Campus_Students_V1_Students.Client

  struct Harness {
    let client: Client
    let store: EventStore
  }

  static func withService(_ body: @Sendable (Harness) async throws -> Void) async throws {
    let pg = try await TestPostgres.start()
    let pool = PostgresPool(conninfo: pg.conninfo, maximumConnections: 4)
    let store = EventStore(pool: pool)
    var outcome: Result<Void, any Error> = .success(())
    do {
      try await store.migrate()
      let students = StudentsService(store: store)
      try await students.migrate()
      var router = Router()
      students.register(in: &router)
      let server = try await GRPCServer.start(router: router, host: "127.0.0.1", port: 0)
      let grpc = try GRPCClient(target: "127.0.0.1:\(server.port)")
      do { try await body(Harness(client: Client(grpc), store: store)) } catch { outcome = .failure(error) }
      await grpc.close()
      try await server.stop()
    } catch {
      outcome = .failure(error)
    }
    pool.shutdown()
    await pg.stop()
    try outcome.get()
  }

  static let options = CallOptions(timeout: .seconds(30))

  static func registration(_ id: String, email: String? = nil) -> Campus_Students_V1_RegisterStudentRequest {
    var r = Campus_Students_V1_RegisterStudentRequest()
    r.studentId = id
    r.givenName = "Ada"
    r.familyName = "Lovelace"
    r.email = email ?? "\(id.lowercased())@uni.example.edu"
    r.program = "CS-BSC"
    r.enrolledOn = "2026-09-01"
    return r
  }

  /// Expects `body` to fail with `code`; returns the error.
  @discardableResult
  static func expectStatus(_ code: GRPCStatus.Code, _ body: () async throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) async -> RPCError? {
    do {
      try await body()
      Issue.record("expected \(code), the call succeeded", sourceLocation: sourceLocation)
    } catch let e as RPCError {
      #expect(e.code == code, "\(e)", sourceLocation: sourceLocation)
      return e
    } catch {
      Issue.record("expected \(code), got \(error)", sourceLocation: sourceLocation)
    }
    return nil
  }

  @Test("Commands: versions, status transitions and cards, each refusal with its status; events and the read model agree")
  func commands() async throws {
    try await Self.withService { h in
      let c = h.client
      let s1 = try await c.registerStudent(Self.registration("S1001"), options: Self.options)
      #expect(s1.version == 1 && s1.status == .enrolled && s1.email == "s1001@uni.example.edu")
      await Self.expectStatus(.alreadyExists) { _ = try await c.registerStudent(Self.registration("S1001"), options: Self.options) }

      // UpdateStudent: by mask, with the version it was decided on; a stale version is ABORTED.
      var update = Campus_Students_V1_UpdateStudentRequest()
      update.studentId = "S1001"
      update.expectedVersion = 1
      update.email = "ada@uni.example.edu"
      update.program = "ignored"
      update.updateMask.paths = ["email"]
      let s2 = try await c.updateStudent(update, options: Self.options)
      #expect(s2.version == 2 && s2.email == "ada@uni.example.edu" && s2.program == "CS-BSC")
      let stale = await Self.expectStatus(.aborted) { _ = try await c.updateStudent(update, options: Self.options) }
      #expect(stale?.message.contains("version 2") == true)
      // Without a mask, the non-empty fields; the same values again change nothing.
      var noMask = Campus_Students_V1_UpdateStudentRequest()
      noMask.studentId = "S1001"
      noMask.givenName = "Augusta Ada"
      let s3 = try await c.updateStudent(noMask, options: Self.options)
      #expect(s3.version == 3 && s3.givenName == "Augusta Ada" && s3.email == "ada@uni.example.edu")
      #expect(try await c.updateStudent(noMask, options: Self.options).version == 3)
      var unknown = noMask
      unknown.studentId = "S404"
      await Self.expectStatus(.notFound) { _ = try await c.updateStudent(unknown, options: Self.options) }

      // Status: allowed moves, and the ones the rules forbid.
      func status(_ s: Campus_Students_V1_StudentStatus) -> Campus_Students_V1_ChangeStudentStatusRequest {
        var r = Campus_Students_V1_ChangeStudentStatusRequest()
        r.studentId = "S1001"
        r.status = s
        r.reason = "test"
        return r
      }
      #expect(try await c.changeStudentStatus(status(.onLeave), options: Self.options).status == .onLeave)
      await Self.expectStatus(.failedPrecondition) { _ = try await c.changeStudentStatus(status(.graduated), options: Self.options) }
      await Self.expectStatus(.failedPrecondition) { _ = try await c.changeStudentStatus(status(.onLeave), options: Self.options) }
      #expect(try await c.changeStudentStatus(status(.enrolled), options: Self.options).status == .enrolled)

      // Cards: issue, replace, lost; another student's card; a retired card.
      func card(_ student: String, _ card: String) -> Campus_Students_V1_IssueCardRequest {
        var r = Campus_Students_V1_IssueCardRequest()
        r.studentId = student
        r.cardId = card
        return r
      }
      #expect(try await c.issueCard(card("S1001", "CARD-0001"), options: Self.options).cardId == "CARD-0001")
      let replaced = try await c.issueCard(card("S1001", "CARD-0002"), options: Self.options)
      #expect(replaced.cardId == "CARD-0002" && replaced.retiredCardIds == ["CARD-0001"])
      await Self.expectStatus(.failedPrecondition) { _ = try await c.issueCard(card("S1001", "CARD-0001"), options: Self.options) }
      _ = try await c.registerStudent(Self.registration("S1002"), options: Self.options)
      await Self.expectStatus(.alreadyExists) { _ = try await c.issueCard(card("S1002", "CARD-0002"), options: Self.options) }
      var lost = Campus_Students_V1_ReportCardLostRequest()
      lost.studentId = "S1001"
      lost.cardId = "CARD-0001"
      await Self.expectStatus(.failedPrecondition) { _ = try await c.reportCardLost(lost, options: Self.options) }
      lost.cardId = "CARD-0002"
      let afterLoss = try await c.reportCardLost(lost, options: Self.options)
      #expect(afterLoss.cardId.isEmpty && afterLoss.retiredCardIds == ["CARD-0001", "CARD-0002"])
      // Graduated students hold no card and stay graduated.
      _ = try await c.changeStudentStatus(status(.graduated), options: Self.options)
      await Self.expectStatus(.failedPrecondition) { _ = try await c.issueCard(card("S1001", "CARD-0003"), options: Self.options) }
      await Self.expectStatus(.failedPrecondition) { _ = try await c.changeStudentStatus(status(.enrolled), options: Self.options) }

      // The read model is what the events fold to.
      var get = Campus_Students_V1_GetStudentRequest()
      get.studentId = "S1001"
      var live = try await c.getStudent(get, options: Self.options)
      var folded = try #require(try await StudentsService(store: h.store).rebuild("S1001", asOfMicroseconds: nil))
      #expect(live.version == 9)
      for s in [\Campus_Students_V1_Student.registeredAt, \.updatedAt] {
        live[keyPath: s] = Google_Protobuf_Timestamp()
        folded[keyPath: s] = Google_Protobuf_Timestamp()
      }
      #expect(live == folded)
      get.studentId = "S404"
      await Self.expectStatus(.notFound) { _ = try await c.getStudent(get, options: Self.options) }
    }
  }

  @Test("Invalid requests are INVALID_ARGUMENT with a google.rpc.BadRequest naming every bad field")
  func validation() async throws {
    try await Self.withService { h in
      let c = h.client
      var bad = Self.registration("-bad id")
      bad.givenName = ""
      bad.email = "not-an-email"
      bad.enrolledOn = "2026-02-30"
      bad.program = "CS BSC"
      let e = await Self.expectStatus(.invalidArgument) { _ = try await c.registerStudent(bad, options: Self.options) }
      let fields = Set(e?.fieldViolations.map(\.field) ?? [])
      #expect(fields == ["student_id", "given_name", "email", "enrolled_on", "program"], "\(String(describing: e))")
      for email in ["a@b", "a@@b.edu", "a b@uni.edu", "@uni.edu", "a@-uni.edu", "a@uni..edu"] {
        let e = await Self.expectStatus(.invalidArgument) { _ = try await c.registerStudent(Self.registration("S2", email: email), options: Self.options) }
        #expect(e?.fieldViolations.map(\.field) == ["email"], "\(email)")
      }
      _ = try await c.registerStudent(Self.registration("S3"), options: Self.options)
      var update = Campus_Students_V1_UpdateStudentRequest()
      update.studentId = "S3"
      update.expectedVersion = -1
      update.updateMask.paths = ["status", "email"]
      let u = await Self.expectStatus(.invalidArgument) { _ = try await c.updateStudent(update, options: Self.options) }
      #expect(Set(u?.fieldViolations.map(\.field) ?? []) == ["expected_version", "update_mask"])
      // A masked field set to an invalid value (here: emptied).
      update.expectedVersion = 0
      update.updateMask.paths = ["email"]
      let emptied = await Self.expectStatus(.invalidArgument) { _ = try await c.updateStudent(update, options: Self.options) }
      #expect(emptied?.fieldViolations.map(\.field) == ["email"])
      var status = Campus_Students_V1_ChangeStudentStatusRequest()
      status.studentId = "S3"
      let st = await Self.expectStatus(.invalidArgument) { _ = try await c.changeStudentStatus(status, options: Self.options) }
      #expect(st?.fieldViolations.map(\.field) == ["status"])
      var card = Campus_Students_V1_IssueCardRequest()
      card.studentId = "S3"
      card.cardId = "x"
      let cd = await Self.expectStatus(.invalidArgument) { _ = try await c.issueCard(card, options: Self.options) }
      #expect(cd?.fieldViolations.map(\.field) == ["card_id"])
      var list = Campus_Students_V1_ListStudentsRequest()
      list.pageSize = 5000
      list.pageToken = "zz"
      let l = await Self.expectStatus(.invalidArgument) { _ = try await c.listStudents(list, options: Self.options) }
      #expect(Set(l?.fieldViolations.map(\.field) ?? []) == ["page_size", "page_token"])
      var asOf = Campus_Students_V1_GetStudentAsOfRequest()
      asOf.studentId = "S3"
      let a = await Self.expectStatus(.invalidArgument) { _ = try await c.getStudentAsOf(asOf, options: Self.options) }
      #expect(a?.fieldViolations.map(\.field) == ["as_of"])
      // Nothing of the refused requests was written: S3's one registration is the whole log.
      #expect(try await h.store.readCommitted(after: 0).events.count == 1)
    }
  }

  @Test("GetStudentAsOf returns the student at each past instant of a scripted history; GetStudentHistory pages through its events")
  func temporal() async throws {
    try await Self.withService { h in
      let c = h.client
      var states = [try await c.registerStudent(Self.registration("S77"), options: Self.options)]
      var update = Campus_Students_V1_UpdateStudentRequest()
      update.studentId = "S77"
      update.familyName = "Byron"
      states.append(try await c.updateStudent(update, options: Self.options))
      var status = Campus_Students_V1_ChangeStudentStatusRequest()
      status.studentId = "S77"
      status.status = .onLeave
      states.append(try await c.changeStudentStatus(status, options: Self.options))
      var card = Campus_Students_V1_IssueCardRequest()
      card.studentId = "S77"
      card.cardId = "CARD-77"
      states.append(try await c.issueCard(card, options: Self.options))
      status.status = .withdrawn
      states.append(try await c.changeStudentStatus(status, options: Self.options))

      // The history, two entries a page.
      var history: [Campus_Students_V1_StudentHistoryEntry] = []
      var request = Campus_Students_V1_GetStudentHistoryRequest()
      request.studentId = "S77"
      request.pageSize = 2
      repeat {
        let page = try await c.getStudentHistory(request, options: Self.options)
        history += page.entries
        request.pageToken = page.nextPageToken
      } while !request.pageToken.isEmpty
      #expect(history.map(\.version) == [1, 2, 3, 4, 5])
      #expect(history.map { $0.event.typeUrl.split(separator: "/").last.map(String.init) ?? "" } == [
        "campus.students.v1.StudentRegistered", "campus.students.v1.StudentUpdated", "campus.students.v1.StudentStatusChanged",
        "campus.students.v1.CardIssued", "campus.students.v1.StudentStatusChanged",
      ])

      // At each event's instant, the student as that command left them.
      for (entry, state) in zip(history, states) {
        var q = Campus_Students_V1_GetStudentAsOfRequest()
        q.studentId = "S77"
        q.asOf = entry.recordedAt
        let then = try await c.getStudentAsOf(q, options: Self.options)
        #expect(then.version == state.version && then.familyName == state.familyName && then.status == state.status && then.cardId == state.cardId)
        #expect(then.updatedAt == entry.recordedAt)
      }
      // Before the first event it did not exist.
      var before = Campus_Students_V1_GetStudentAsOfRequest()
      before.studentId = "S77"
      before.asOf = Google_Protobuf_Timestamp(microseconds: (history[0].recordedAt.microseconds ?? 0) - 1)
      await Self.expectStatus(.notFound) { _ = try await c.getStudentAsOf(before, options: Self.options) }
      var unknown = Campus_Students_V1_GetStudentHistoryRequest()
      unknown.studentId = "S78"
      await Self.expectStatus(.notFound) { _ = try await c.getStudentHistory(unknown, options: Self.options) }
    }
  }

  @Test("ListStudents pages in id order and filters by status and programme")
  func listing() async throws {
    try await Self.withService { h in
      let c = h.client
      for i in 0..<25 {
        var r = Self.registration(String(format: "L%03d", i))
        r.program = i.isMultiple(of: 2) ? "MATH-BSC" : "CS-BSC"
        _ = try await c.registerStudent(r, options: Self.options)
        if i.isMultiple(of: 5) {
          var s = Campus_Students_V1_ChangeStudentStatusRequest()
          s.studentId = r.studentId
          s.status = .onLeave
          _ = try await c.changeStudentStatus(s, options: Self.options)
        }
      }
      func all(_ base: Campus_Students_V1_ListStudentsRequest) async throws -> [String] {
        var request = base
        request.pageSize = 4
        var ids: [String] = []
        repeat {
          let page = try await c.listStudents(request, options: Self.options)
          #expect(page.students.count <= 4)
          ids += page.students.map(\.studentId)
          request.pageToken = page.nextPageToken
        } while !request.pageToken.isEmpty
        return ids
      }
      #expect(try await all(Campus_Students_V1_ListStudentsRequest()) == (0..<25).map { String(format: "L%03d", $0) })
      var onLeave = Campus_Students_V1_ListStudentsRequest()
      onLeave.status = .onLeave
      #expect(try await all(onLeave) == ["L000", "L005", "L010", "L015", "L020"])
      var math = onLeave
      math.program = "MATH-BSC"
      #expect(try await all(math) == ["L000", "L010", "L020"])
    }
  }

  static func row(_ n: Int64, _ id: String, email: String? = nil, status: String = "") -> Campus_Students_V1_RosterRow {
    var r = Campus_Students_V1_RosterRow()
    r.rowNumber = n
    r.registrarId = id
    r.givenName = "Grace"
    r.familyName = "Hopper"
    r.email = email ?? "\(id.lowercased())@uni.example.edu"
    r.program = "CS-MSC"
    r.status = status
    r.enrolledOn = "2025-09-01"
    return r
  }

  static func importing(_ c: Client, _ rows: [Campus_Students_V1_RosterRow]) async throws -> Campus_Students_V1_ImportRosterResponse {
    try await c.importRoster(options: options) { writer in
      for r in rows { try await writer.write(r) }
    }
  }

  @Test("ImportRoster registers and updates per row, rejects bad rows with their number and reason, and a second run changes nothing")
  func rosterImport() async throws {
    try await Self.withService { h in
      let c = h.client
      _ = try await c.registerStudent(Self.registration("R2"), options: Self.options)
      let roster = [
        Self.row(2, "R1"), Self.row(3, "R2"), Self.row(4, "R3", email: "broken"), Self.row(5, "R4", status: "graduated"),
        Self.row(6, "R5", status: "asleep"), Self.row(7, "R6", status: "on_leave"),
      ]
      let first = try await Self.importing(c, roster)
      #expect(first.created == 3 && first.updated == 1 && first.unchanged == 0 && first.rejected == 2, "\(first)")
      #expect(first.rejections.map(\.rowNumber) == [4, 6] && first.rejections.map(\.registrarId) == ["R3", "R5"])
      #expect(first.rejections[0].reason.contains("email") && first.rejections[1].reason.contains("status"))
      let logged = try await h.store.readCommitted(after: 0).events.count
      let again = try await Self.importing(c, roster)
      #expect(again.created == 0 && again.updated == 0 && again.unchanged == 4 && again.rejected == 2, "\(again)")
      #expect(try await h.store.readCommitted(after: 0).events.count == logged)
      // An edited record updates; a forbidden status change is a rejected row, not a failed import.
      let edited = [Self.row(2, "R1", email: "grace@uni.example.edu"), Self.row(3, "R4", status: "enrolled")]
      let third = try await Self.importing(c, edited)
      #expect(third.updated == 1 && third.rejected == 1 && third.rejections.first?.rowNumber == 3, "\(third)")
      var get = Campus_Students_V1_GetStudentRequest()
      get.studentId = "R1"
      #expect(try await c.getStudent(get, options: Self.options).email == "grace@uni.example.edu")
      get.studentId = "R6"
      #expect(try await c.getStudent(get, options: Self.options).status == .onLeave)
    }
  }
}
