internal import Authentication
internal import Authorization
internal import GRPCWire
internal import QuadRPC
internal import Testing

/// The policy file: what it grants to whom, and the precise error for a bad file.
@Suite("Authorization policy")
struct PolicyTests {
  static let document = """
    { "grants": [
        { "services": ["scans"], "methods": ["/quad.events.v1.Events/Subscribe"], "events": ["campus.students.v1.*"] },
        { "roles": ["registrar"], "methods": ["/campus.students.v1.Students/*"], "events": ["*"] },
        { "roles": ["student"], "methods": ["/campus.students.v1.Students/GetStudent", "/campus.scans.v1.Scans/ListScans"], "own": true },
        { "roles": ["student", "auditor"], "methods": ["/campus.analytics.v1.Analytics/GetOccupancy"] } ] }
    """

  @Test("Grants by service and role, prefixes, own-records scopes, event types; health and reflection open by default")
  func decisions() throws {
    let policy = try Policy(json: Array(Self.document.utf8))
    let scans = Principal(kind: .service, name: "scans")
    let registrar = Principal(kind: .user, name: "r1", roles: ["registrar"])
    let student = Principal(kind: .user, name: "S1", roles: ["student"])
    #expect(policy.isOpen("/grpc.health.v1.Health/Check") && policy.isOpen("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"))
    #expect(!policy.isOpen("/campus.students.v1.Students/GetStudent"))

    let subscribe = try #require(policy.access(scans, method: "/quad.events.v1.Events/Subscribe"))
    #expect(subscribe.permitsEvent("campus.students.v1.StudentRegistered") && !subscribe.permitsEvent("campus.scans.v1.ScanRecorded"))
    #expect(policy.access(scans, method: "/campus.students.v1.Students/UpdateStudent") == nil, "scans may not update students")
    #expect(policy.access(Principal(kind: .user, name: "scans"), method: "/quad.events.v1.Events/Subscribe") == nil, "a person named like a service is not it")

    #expect(policy.access(registrar, method: "/campus.students.v1.Students/UpdateStudent")?.ownerOnly == nil)
    #expect(policy.access(registrar, method: "/campus.students.v1.StudentsX/Update") == nil, "Students/* ends at its slash")
    #expect(policy.access(registrar, method: "/campus.scans.v1.Scans/ListScans") == nil)

    #expect(policy.access(student, method: "/campus.students.v1.Students/GetStudent")?.ownerOnly == "S1")
    #expect(policy.access(student, method: "/campus.students.v1.Students/ListStudents") == nil)
    #expect(policy.access(student, method: "/campus.analytics.v1.Analytics/GetOccupancy")?.ownerOnly == nil, "an unrestricted grant is not scoped")
    let own = try #require(policy.access(student, method: "/campus.scans.v1.Scans/ListScans"))
    #expect(throws: Never.self) { try own.requireOwner("S1") }
    do {
      try own.requireOwner("S2")
      Issue.record("S1 read S2's scans")
    } catch {
      #expect(error.code == .permissionDenied && error.message == "user:S1 may use this method only on its own records")
    }
    #expect(policy.access(Principal(kind: .user, name: "x"), method: "/campus.analytics.v1.Analytics/GetOccupancy") == nil, "no roles, no grant")

    let closed = try Policy(json: Array(#"{"open": [], "grants": [{"roles": ["ops"], "methods": ["/grpc.health.v1.Health/*"]}]}"#.utf8))
    #expect(!closed.isOpen("/grpc.health.v1.Health/Check"), "health can be restricted")
  }

  @Test("A bad policy file is refused with the entry at fault", arguments: [
    (#"[]"#, "not a JSON object (at most 1 MiB)"),
    (#"{"grants": 1}"#, "grants: not a list of objects"),
    (#"{"grants": [], "allow": []}"#, "unknown key \"allow\""),
    (#"{"grants": [{"methods": ["/a/b"]}]}"#, "grants[0]: names no services and no roles"),
    (#"{"grants": [{"roles": ["x"], "method": ["/a/b"]}]}"#, "grants[0]: unknown key \"method\""),
    (#"{"grants": [{"roles": ["x"], "methods": "/a/b"}]}"#, "grants[0].methods: not a list of names"),
    (#"{"grants": [{"services": ["s"], "methods": ["/a/b"], "own": true}]}"#, "grants[0]: own applies to people, not services"),
    (#"{"grants": [{"roles": ["x"], "own": "yes"}]}"#, "grants[0].own: not true or false"),
  ])
  func badFiles(json: String, reason: String) {
    #expect(throws: PolicyError(reason: reason)) { try Policy(json: Array(json.utf8)) }
  }
}
