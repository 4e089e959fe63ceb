internal import QuadProtobuf

/// Renders a proto enum as a Swift enum; open (proto3) enums get `UNRECOGNIZED(Int32)`.
struct EnumEmitter {
  let table: TypeTable
  let comments: Comments
  let visibility: String

  func emit(_ e: EnumProto, protoName: String, path: [Int32], into p: inout CodePrinter) {
    let info = table[protoName: protoName]
    let swiftName = info.swiftName.split(separator: ".").last.map(String.init)!
    let open = !info.isClosedEnum
    let vis = visibility
    // First value per number is the case; later ones are aliases.
    var seen: Set<Int32> = []
    var cases: [(name: String, value: Google_Protobuf_EnumValueDescriptorProto, index: Int)] = []
    var aliases: [(name: String, target: String)] = []
    var used: Set<String> = []
    for (i, v) in e.value.enumerated() {
      var name = Naming.enumCase(v.name, enumName: e.name)
      if used.contains(name) { name = Naming.enumCase(v.name, enumName: "") }
      used.insert(name)
      if seen.insert(v.number).inserted {
        cases.append((name, v, i))
      } else {
        let target = cases.first { $0.value.number == v.number }!.name
        aliases.append((name, target))
      }
    }
    p.raw(comments.doc(path, indent: p.indentString))
    p.line("\(vis)enum \(swiftName): QuadProtobuf.Enum, Swift.CaseIterable {")
    p.indent {
      for c in cases {
        p.raw(comments.doc(path + [2, Int32(c.index)], indent: p.indentString))
        p.line("case \(c.name) // = \(c.value.number)")
      }
      if open {
        p.line("/// A number this version of the enum does not name.")
        p.line("case UNRECOGNIZED(Swift.Int32)")
      }
      p.line()
      for a in aliases {
        p.line("\(vis)static let \(a.name): Self = .\(a.target)")
      }
      p.line("\(vis)init() { self = .\(cases[0].name) }")
      p.line()
      p.line("\(vis)init?(rawValue: Swift.Int32) {")
      p.indent {
        p.line("switch rawValue {")
        for c in cases { p.line("case \(c.value.number): self = .\(c.name)") }
        p.line(open ? "default: self = .UNRECOGNIZED(rawValue)" : "default: return nil")
        p.line("}")
      }
      p.line("}")
      p.line()
      p.line("\(vis)var rawValue: Swift.Int32 {")
      p.indent {
        p.line("switch self {")
        for c in cases { p.line("case .\(c.name): return \(c.value.number)") }
        if open { p.line("case .UNRECOGNIZED(let n): return n") }
        p.line("}")
      }
      p.line("}")
      p.line()
      p.line("\(vis)var protoName: Swift.String? {")
      p.indent {
        p.line("switch self {")
        for c in cases { p.line("case .\(c.name): return \(Naming.stringLiteral(c.value.name))") }
        if open { p.line("case .UNRECOGNIZED: return nil") }
        p.line("}")
      }
      p.line("}")
      p.line()
      p.line("\(vis)init?(protoName: Swift.String) {")
      p.indent {
        p.line("switch protoName {")
        for v in e.value {
          let c = cases.first { $0.value.number == v.number }!
          p.line("case \(Naming.stringLiteral(v.name)): self = .\(c.name)")
        }
        p.line("default: return nil")
        p.line("}")
      }
      p.line("}")
      p.line()
      p.line("\(vis)static let allCases: [Self] = [\(cases.map { "." + $0.name }.joined(separator: ", "))]")
    }
    p.line("}")
    p.line()
  }
}
