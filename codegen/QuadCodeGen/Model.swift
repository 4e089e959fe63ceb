internal import QuadProtobuf

typealias FileProto = Google_Protobuf_FileDescriptorProto
typealias MessageProto = Google_Protobuf_DescriptorProto
typealias FieldProto = Google_Protobuf_FieldDescriptorProto
typealias EnumProto = Google_Protobuf_EnumDescriptorProto

/// What the generator knows about every type in the request (all files, imports included).
struct TypeInfo {
  /// `.pkg.Outer.Inner`
  var protoName: String
  /// `Pkg_Outer.Inner`
  var swiftName: String
  var file: String
  var message: MessageProto?
  var enumType: EnumProto?
  /// Whether unknown numbers of this enum are kept in the field (proto3) or moved to unknown fields.
  var isClosedEnum: Bool
  var isMapEntry: Bool { message?.options.mapEntry ?? false }
}

/// The symbol table plus the recursion analysis that decides which fields need heap storage.
struct TypeTable {
  private(set) var types: [String: TypeInfo] = [:]
  /// Strongly connected component of each message over inline (singular and oneof) message edges.
  private var component: [String: Int] = [:]

  init(files: [FileProto]) {
    for file in files {
      let prefix = Naming.packagePrefix(
        file.package,
        swiftPrefix: file.options.hasSwiftPrefix ? file.options.swiftPrefix : nil
      )
      let protoPrefix = file.package.isEmpty ? "." : ".\(file.package)."
      let closed = file.syntax != "proto3"
      for m in file.messageType {
        addMessage(m, protoName: protoPrefix + m.name, swiftName: Naming.topLevelType(m.name, prefix: prefix, isEnum: false), file: file, closed: closed)
      }
      for e in file.enumType {
        types[protoPrefix + e.name] = TypeInfo(
          protoName: protoPrefix + e.name,
          swiftName: Naming.topLevelType(e.name, prefix: prefix, isEnum: true),
          file: file.name, message: nil, enumType: e, isClosedEnum: closed)
      }
    }
    computeComponents()
  }

  private mutating func addMessage(_ m: MessageProto, protoName: String, swiftName: String, file: FileProto, closed: Bool) {
    types[protoName] = TypeInfo(protoName: protoName, swiftName: swiftName, file: file.name, message: m, enumType: nil, isClosedEnum: false)
    for n in m.nestedType {
      addMessage(n, protoName: protoName + "." + n.name, swiftName: swiftName + "." + Naming.nestedType(n.name, isEnum: false), file: file, closed: closed)
    }
    for e in m.enumType {
      types[protoName + "." + e.name] = TypeInfo(
        protoName: protoName + "." + e.name,
        swiftName: swiftName + "." + Naming.nestedType(e.name, isEnum: true),
        file: file.name, message: nil, enumType: e, isClosedEnum: closed)
    }
  }

  subscript(protoName protoName: String) -> TypeInfo {
    guard let t = types[protoName] else { fatalError("protoc sent an unresolved type \(protoName)") }
    return t
  }

  /// Whether a field of `owner` of message type `target` must be stored on the heap.
  func needsIndirection(owner: String, target: String) -> Bool {
    guard let a = component[owner], let b = component[target] else { return false }
    return a == b
  }

  // Tarjan's algorithm over inline message edges.
  private mutating func computeComponents() {
    var edges: [String: [String]] = [:]
    for (name, info) in types {
      guard let m = info.message else { continue }
      edges[name] = m.field.compactMap { f in
        guard f.type == .message || f.type == .group, f.label != .repeated else { return nil }
        return f.typeName
      }
    }
    var index = 0
    var indices: [String: Int] = [:]
    var lowlink: [String: Int] = [:]
    var onStack: Set<String> = []
    var stack: [String] = []
    var nextComponent = 0
    func strongConnect(_ v: String) {
      indices[v] = index
      lowlink[v] = index
      index += 1
      stack.append(v)
      onStack.insert(v)
      for w in edges[v] ?? [] {
        if indices[w] == nil {
          strongConnect(w)
          lowlink[v] = min(lowlink[v]!, lowlink[w]!)
        } else if onStack.contains(w) {
          lowlink[v] = min(lowlink[v]!, indices[w]!)
        }
      }
      if lowlink[v] == indices[v] {
        var members: [String] = []
        while true {
          let w = stack.removeLast()
          onStack.remove(w)
          members.append(w)
          if w == v { break }
        }
        // A single message is recursive only if it refers to itself.
        if members.count > 1 || (edges[v] ?? []).contains(v) {
          for m in members { component[m] = nextComponent }
          nextComponent += 1
        }
      }
    }
    for v in edges.keys.sorted() where indices[v] == nil { strongConnect(v) }
  }
}

/// Comments from `source_code_info`, by path.
struct Comments {
  private var byPath: [[Int32]: Google_Protobuf_SourceCodeInfo.Location] = [:]

  init(_ file: FileProto) {
    for loc in file.sourceCodeInfo.location where !loc.leadingComments.isEmpty || !loc.trailingComments.isEmpty {
      byPath[loc.path] = loc
    }
  }

  /// `///` lines for the element at `path`.
  func doc(_ path: [Int32], indent: String) -> String {
    guard let loc = byPath[path] else { return "" }
    var text = loc.leadingComments
    if text.isEmpty { text = loc.trailingComments }
    var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    while lines.last?.trimmingSpaces.isEmpty == true { lines.removeLast() }
    while lines.first?.trimmingSpaces.isEmpty == true { lines.removeFirst() }
    if lines.isEmpty { return "" }
    return lines.map { l in
      let t = l.hasPrefix(" ") ? String(l.dropFirst()) : l
      return t.isEmpty ? "\(indent)///\n" : "\(indent)/// \(t)\n"
    }.joined()
  }
}

extension String {
  var trimmingSpaces: String {
    var s = Substring(self)
    while s.first == " " || s.first == "\t" { s = s.dropFirst() }
    while s.last == " " || s.last == "\t" { s = s.dropLast() }
    return String(s)
  }
}
