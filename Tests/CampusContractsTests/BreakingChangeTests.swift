internal import Foundation
internal import Testing
internal import TestSupport

/// The contract check CI runs (scripts/check-contracts.sh): the contracts as committed pass
/// against the released ones, and each kind of breaking change to a copy of them is caught
/// and named.
@Suite("Contract evolution")
struct BreakingChangeTests {
  static let script = repositoryRoot.appendingPathComponent("scripts/check-contracts.sh").path
  static let students = "campus/students/v1/students.proto"

  /// Runs the check on a copy of Protos/ with `edit` applied to students.proto.
  /// With `released`, against that descriptor set instead of the committed one (or, with
  /// `release`, recording the copy as it).
  static func check(released: String? = nil, release: Bool = false, _ edit: (String) -> String) async throws -> (status: Int32, output: String) {
    let copy = FileManager.default.temporaryDirectory.appendingPathComponent("contracts-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: copy) }
    try FileManager.default.copyItem(at: repositoryRoot.appendingPathComponent("Protos"), to: copy)
    let file = copy.appendingPathComponent(students)
    let text = try String(contentsOf: file, encoding: .utf8)
    let edited = edit(text)
    #expect(edited != text, "the edit changed nothing")
    try edited.write(to: file, atomically: true, encoding: .utf8)
    let env = released.map { ["RELEASED=\($0)"] } ?? []
    return try await run(env + [script] + (release ? ["--release"] : []) + [copy.path])
  }

  /// Runs a command with its standard error in the output.
  static func run(_ arguments: [String]) async throws -> (status: Int32, output: String) {
    try await runProcess(["sh", "-c", "exec env \"$@\" 2>&1", "sh"] + arguments)
  }

  @Test("The committed contracts do not break the released ones")
  func committed() async throws {
    let r = try await Self.run([Self.script])
    #expect(r.status == 0, "\(r.output)")
  }

  @Test("Additions pass: a new field, a new message, a new method, a new enum value")
  func additions() async throws {
    let r = try await Self.check { s in
      s.replacingOccurrences(of: "  bool erased = 13;\n}", with: "  bool erased = 13;\n  string pronouns = 14;\n}")
        .replacingOccurrences(of: "  STUDENT_STATUS_WITHDRAWN = 4;\n", with: "  STUDENT_STATUS_WITHDRAWN = 4;\n  STUDENT_STATUS_SUSPENDED = 5;\n")
        .replacingOccurrences(of: "service Students {\n", with: "service Students {\n  rpc Ping(GetStudentRequest) returns (Student);\n")
        + "\nmessage StudentNoteAdded {\n  option (quad.v1.event) = { stream_type: \"student\" };\n  string text = 1;\n}\n"
    }
    #expect(r.status == 0, "\(r.output)")
  }

  @Test("A removed field passes only when its number and name are reserved")
  func removal() async throws {
    let removed = try await Self.check { $0.replacingOccurrences(of: "  string program = 5;\n  // Enrolment date", with: "  // Enrolment date") }
    #expect(removed.status != 0 && removed.output.contains("field program = 5 was removed"), "\(removed.output)")
    let reserved = try await Self.check {
      $0.replacingOccurrences(of: "  string program = 5;\n  // Enrolment date", with: "  reserved 5;\n  reserved \"program\";\n  // Enrolment date")
    }
    #expect(reserved.status == 0, "\(reserved.output)")
  }

  @Test("Each breaking change is refused and named", arguments: [
    ("renumbered", "  string email = 4;\n  // Study", "  string email = 14;\n  // Study", "email was renumbered from 4 to 14"),
    ("renamed", "  string email = 4;\n  // Study", "  string mail = 4;\n  // Study", "renamed from email to mail"),
    ("retyped", "  int64 version = 10;", "  int32 version = 10;", "changed type from TYPE_INT64 to TYPE_INT32"),
    ("repeated", "  string card_id = 8;", "  repeated string card_id = 8;", "changed between repeated and singular"),
    ("event field retyped", "  string replaced_card_id = 3;", "  int64 replaced_card_id = 3;", "CardIssued: field replaced_card_id = 3 changed type"),
    ("enum value removed", "  STUDENT_STATUS_WITHDRAWN = 4;\n", "", "value STUDENT_STATUS_WITHDRAWN = 4 was removed"),
    ("enum value renamed", "STUDENT_STATUS_WITHDRAWN = 4", "STUDENT_STATUS_LEFT = 4", "renamed from STUDENT_STATUS_WITHDRAWN to STUDENT_STATUS_LEFT"),
    ("method removed", "  rpc ReportCardLost(ReportCardLostRequest) returns (Student);\n", "", "method ReportCardLost was removed"),
    ("method retyped", "rpc GetStudent(GetStudentRequest) returns (Student)", "rpc GetStudent(GetStudentRequest) returns (ListStudentsResponse)", "GetStudent: changed types"),
    ("streaming changed", "rpc ImportRoster(stream RosterRow)", "rpc ImportRoster(RosterRow)", "ImportRoster: changed streaming"),
    ("event removed", "message CardReportedLost {", "message CardWasLost {", "message campus.students.v1.CardReportedLost was removed"),
  ])
  func breaking(_ name: String, _ from: String, _ to: String, _ expected: String) async throws {
    let r = try await Self.check { $0.replacingOccurrences(of: from, with: to) }
    #expect(r.status != 0, "\(name): \(r.output)")
    #expect(r.output.contains(expected), "\(name): \(r.output)")
  }

  @Test("A breaking change to an event as a new type: superseded_by must name an event of the same stream type")
  func superseded() async throws {
    let old = "message StudentUpdated {\n  option (quad.v1.event) = { stream_type: \"student\" };"
    func supersede(_ successor: String, streamType: String = "student") -> (String) -> String {
      { s in
        s.replacingOccurrences(of: old, with: "message StudentUpdated {\n  option (quad.v1.event) = { stream_type: \"student\", superseded_by: \"\(successor)\" };")
          + "\nmessage StudentUpdatedV2 {\n  option (quad.v1.event) = { stream_type: \"\(streamType)\" };\n  string student_id = 1;\n}\n"
      }
    }
    let good = try await Self.check(supersede("campus.students.v1.StudentUpdatedV2"))
    #expect(good.status == 0, "\(good.output)")
    let missing = try await Self.check(supersede("campus.students.v1.StudentChanged"))
    #expect(missing.status != 0 && missing.output.contains("superseded_by campus.students.v1.StudentChanged, which is not an event"), "\(missing.output)")
    let moved = try await Self.check(supersede("campus.students.v1.StudentUpdatedV2", streamType: "person"))
    #expect(moved.status != 0 && moved.output.contains("of stream type person"), "\(moved.output)")
  }

  @Test("A reserved number or name used again is refused")
  func reuse() async throws {
    // Released: Student with number 20 and the name "nickname" reserved.
    let released = FileManager.default.temporaryDirectory.appendingPathComponent("released-\(UUID().uuidString).binpb").path
    defer { try? FileManager.default.removeItem(atPath: released) }
    let end = "  bool erased = 13;\n}"
    let r = try await Self.check(released: released, release: true) { s in
      s.replacingOccurrences(of: end, with: "  bool erased = 13;\n  reserved 20;\n  reserved \"nickname\";\n}")
    }
    #expect(r.status == 0, "\(r.output)")
    let reused = try await Self.check(released: released) { s in
      s.replacingOccurrences(of: end, with: "  bool erased = 13;\n  string alias = 20;\n  string nickname = 21;\n}")
    }
    #expect(reused.status != 0, "\(reused.output)")
    #expect(reused.output.contains("field alias reuses reserved number 20"), "\(reused.output)")
    #expect(reused.output.contains("field nickname = 21 reuses a reserved name"), "\(reused.output)")
  }
}
