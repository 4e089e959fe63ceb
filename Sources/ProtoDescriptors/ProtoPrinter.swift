internal import QuadProtobuf

/// Writes a symbol of a ``DescriptorPool`` back as `.proto` source, with the comments its file
/// carries: what `quad describe` prints.
package struct ProtoPrinter: Sendable {
  package let pool: DescriptorPool

  package init(pool: DescriptorPool) { self.pool = pool }

  private typealias File = Google_Protobuf_FileDescriptorProto
  private typealias MessageProto = Google_Protobuf_DescriptorProto
  private typealias EnumProto = Google_Protobuf_EnumDescriptorProto
  private typealias FieldProto = Google_Protobuf_FieldDescriptorProto

  private enum Definition {
    case message(MessageProto, [Int32], proto3: Bool)
    case enumeration(EnumProto, [Int32])
    case enumValue(Google_Protobuf_EnumValueDescriptorProto, [Int32])
    case service(Google_Protobuf_ServiceDescriptorProto, [Int32])
    case method(Google_Protobuf_MethodDescriptorProto, [Int32])
    case field(FieldProto, [Int32], proto3: Bool)
    case oneof(String)
  }

  /// `symbol` as `.proto` text, headed by a line saying what it is; `nil` when the pool does not
  /// know it.
  package func describe(_ symbol: String) -> String? {
    let name = symbol.hasPrefix(".") ? String(symbol.dropFirst()) : symbol
    guard let s = pool.symbol(name), let file = pool.file(named: s.file), let found = find(name, in: file) else {
      return nil
    }
    let comments = Comments(file)
    var out = ""
    func heading(_ what: String) { out += "\(name) is \(what):\n" }
    switch found {
    case .message(let m, let path, let proto3):
      heading("a message")
      out += message(m, path: path, proto3: proto3, comments: comments, indent: "")
    case .enumeration(let e, let path):
      heading("an enum")
      out += enumeration(e, path: path, comments: comments, indent: "")
    case .enumValue(let v, let path):
      heading("an enum value")
      out += comments.leading(path, indent: "") + "\(v.name) = \(v.number);\n"
    case .service(let svc, let path):
      heading("a service")
      out += comments.leading(path, indent: "") + "service \(svc.name) {\n"
      for (i, m) in svc.method.enumerated() {
        out += comments.leading(path + [2, Int32(i)], indent: "  ") + "  " + rpc(m) + "\n"
      }
      out += "}\n"
    case .method(let m, let path):
      heading("a method")
      out += comments.leading(path, indent: "") + rpc(m) + "\n"
    case .field(let f, let path, let proto3):
      heading(s.kind == .extension ? "an extension" : "a field")
      out += comments.leading(path, indent: "") + field(f, proto3: proto3) + "\n"
    case .oneof(let o):
      heading("a oneof")
      out += "oneof \(o) { … }\n"
    }
    return out
  }

  // MARK: Finding

  private func find(_ name: String, in file: File) -> Definition? {
    let proto3 = file.syntax == "proto3"
    let scope = file.package.isEmpty ? "" : file.package + "."
    func inEnum(_ e: EnumProto, _ enumName: String, _ path: [Int32], _ parentScope: String) -> Definition? {
      if enumName == name { return .enumeration(e, path) }
      for (i, v) in e.value.enumerated() where parentScope + v.name == name || enumName + "." + v.name == name {
        return .enumValue(v, path + [2, Int32(i)])
      }
      return nil
    }
    func inMessage(_ m: MessageProto, _ full: String, _ path: [Int32]) -> Definition? {
      if full == name { return .message(m, path, proto3: proto3) }
      guard name.hasPrefix(full + ".") else { return nil }
      for (i, f) in m.field.enumerated() where full + "." + f.name == name { return .field(f, path + [2, Int32(i)], proto3: proto3) }
      for (i, f) in m.extension.enumerated() where full + "." + f.name == name { return .field(f, path + [6, Int32(i)], proto3: proto3) }
      for o in m.oneofDecl where full + "." + o.name == name { return .oneof(o.name) }
      for (i, n) in m.nestedType.enumerated() {
        if let d = inMessage(n, full + "." + n.name, path + [3, Int32(i)]) { return d }
      }
      for (i, e) in m.enumType.enumerated() {
        if let d = inEnum(e, full + "." + e.name, path + [4, Int32(i)], full + ".") { return d }
      }
      return nil
    }
    for (i, m) in file.messageType.enumerated() {
      if let d = inMessage(m, scope + m.name, [4, Int32(i)]) { return d }
    }
    for (i, e) in file.enumType.enumerated() {
      if let d = inEnum(e, scope + e.name, [5, Int32(i)], scope) { return d }
    }
    for (i, svc) in file.service.enumerated() {
      let full = scope + svc.name
      if full == name { return .service(svc, [6, Int32(i)]) }
      for (j, m) in svc.method.enumerated() where full + "." + m.name == name { return .method(m, [6, Int32(i), 2, Int32(j)]) }
    }
    for (i, f) in file.extension.enumerated() where scope + f.name == name { return .field(f, [7, Int32(i)], proto3: proto3) }
    return nil
  }

  // MARK: Printing

  private func rpc(_ m: Google_Protobuf_MethodDescriptorProto) -> String {
    "rpc \(m.name) ( \(m.clientStreaming ? "stream " : "")\(m.inputType) ) returns ( \(m.serverStreaming ? "stream " : "")\(m.outputType) );"
  }

  private func typeName(_ f: FieldProto) -> String {
    switch f.type {
    case .message, .enum, .group: return f.typeName
    default: return "\(f.type)"
    }
  }

  private func field(_ f: FieldProto, proto3: Bool) -> String {
    if f.type == .message, f.label == .repeated, let entry = pool.message(f.typeName), entry.descriptor.options.mapEntry,
      let k = entry.descriptor.field.first(where: { $0.number == 1 }), let v = entry.descriptor.field.first(where: { $0.number == 2 })
    {
      return "map<\(typeName(k)), \(typeName(v))> \(f.name) = \(f.number);"
    }
    var label = ""
    switch f.label {
    case .repeated: label = "repeated "
    case .required: label = "required "
    case .optional: label = (!proto3 || f.proto3Optional) && !(f.hasOneofIndex && !f.proto3Optional) ? "optional " : ""
    }
    var options: [String] = []
    if f.hasDefaultValue { options.append("default = \(f.type == .string ? "\"\(f.defaultValue)\"" : f.defaultValue)") }
    if f.options.hasPacked { options.append("packed = \(f.options.packed)") }
    if f.hasJsonName, f.jsonName != DynamicCodec.jsonName(withoutDeclared: f) { options.append("json_name = \"\(f.jsonName)\"") }
    let extendee = f.hasExtendee ? " /* extends \(f.extendee) */" : ""
    return "\(label)\(typeName(f)) \(f.name) = \(f.number)\(options.isEmpty ? "" : " [\(options.joined(separator: ", "))]");\(extendee)"
  }

  private func message(_ m: MessageProto, path: [Int32], proto3: Bool, comments: Comments, indent: String) -> String {
    var out = comments.leading(path, indent: indent) + "\(indent)message \(m.name) {\n"
    let inner = indent + "  "
    var printedOneofs: Set<Int32> = []
    for (i, f) in m.field.enumerated() {
      if f.hasOneofIndex && !f.proto3Optional {
        let o = f.oneofIndex
        guard printedOneofs.insert(o).inserted else { continue }
        out += comments.leading(path + [8, o], indent: inner) + "\(inner)oneof \(m.oneofDecl[Int(o)].name) {\n"
        for (j, g) in m.field.enumerated() where g.hasOneofIndex && g.oneofIndex == o {
          out += comments.leading(path + [2, Int32(j)], indent: inner + "  ") + "\(inner)  \(field(g, proto3: proto3))\n"
        }
        out += "\(inner)}\n"
        continue
      }
      out += comments.leading(path + [2, Int32(i)], indent: inner) + "\(inner)\(field(f, proto3: proto3))\n"
    }
    for (i, n) in m.nestedType.enumerated() where !n.options.mapEntry {
      out += message(n, path: path + [3, Int32(i)], proto3: proto3, comments: comments, indent: inner)
    }
    for (i, e) in m.enumType.enumerated() {
      out += enumeration(e, path: path + [4, Int32(i)], comments: comments, indent: inner)
    }
    for r in m.extensionRange { out += "\(inner)extensions \(r.start) to \(r.end - 1);\n" }
    out += "\(indent)}\n"
    return out
  }

  private func enumeration(_ e: EnumProto, path: [Int32], comments: Comments, indent: String) -> String {
    var out = comments.leading(path, indent: indent) + "\(indent)enum \(e.name) {\n"
    for (i, v) in e.value.enumerated() {
      out += comments.leading(path + [2, Int32(i)], indent: indent + "  ") + "\(indent)  \(v.name) = \(v.number);\n"
    }
    out += "\(indent)}\n"
    return out
  }

  /// A file's comments by location path.
  private struct Comments {
    let byPath: [[Int32]: Google_Protobuf_SourceCodeInfo.Location]

    init(_ file: File) {
      var d: [[Int32]: Google_Protobuf_SourceCodeInfo.Location] = [:]
      for l in file.sourceCodeInfo.location where d[l.path] == nil { d[l.path] = l }
      byPath = d
    }

    /// The leading (and trailing) comment of a definition as `//` lines.
    func leading(_ path: [Int32], indent: String) -> String {
      guard let l = byPath[path] else { return "" }
      var text = l.leadingComments
      if !l.trailingComments.isEmpty { text += (text.isEmpty ? "" : "\n") + l.trailingComments }
      guard !text.isEmpty else { return "" }
      var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
      while lines.last?.isEmpty == true { lines.removeLast() }
      return lines.map { "\(indent)//\($0)\n" }.joined()
    }
  }
}

extension DynamicCodec {
  /// The JSON name protoc would derive from the field's proto name.
  static func jsonName(withoutDeclared f: Google_Protobuf_FieldDescriptorProto) -> String {
    var g = f
    g.clearJsonName()
    return jsonName(g)
  }
}
