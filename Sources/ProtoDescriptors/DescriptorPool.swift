package import QuadProtobuf

/// The `.proto` files a server describes, indexed by file name, by symbol and by extension: what
/// server reflection answers from and what `quad describe` and `quad call` read.
///
/// Built from serialized `FileDescriptorProto`s (the ones `protoc-gen-quad` embeds as
/// `QuadFile_….serializedDescriptor`, or the ones a reflection server sends). The well-known
/// types (`google/protobuf/*.proto`) are always present. Every dependency a file names must be
/// in the pool, and no symbol may be defined twice.
package struct DescriptorPool: Sendable {
  /// What a fully-qualified name stands for.
  package enum SymbolKind: Sendable, Hashable {
    case message, enumeration, enumValue, service, method, field, oneof, `extension`
  }

  /// A named definition and the file that declares it.
  package struct Symbol: Sendable, Hashable {
    package let kind: SymbolKind
    package let file: String
  }

  private struct ExtensionKey: Hashable {
    let extendee: String
    let number: Int32
  }

  private var files: [String: Google_Protobuf_FileDescriptorProto] = [:]
  private var serialized: [String: [UInt8]] = [:]
  /// File names in the order they were added.
  package private(set) var fileNames: [String] = []
  private var symbols: [String: Symbol] = [:]
  private var extensions: [ExtensionKey: String] = [:]
  private var messages: [String: MessageType] = [:]
  private var enums: [String: Google_Protobuf_EnumDescriptorProto] = [:]
  private var extensionFields: [String: [Google_Protobuf_FieldDescriptorProto]] = [:]
  private var methods: [String: Google_Protobuf_MethodDescriptorProto] = [:]

  /// A message type and what its file says about field presence.
  package struct MessageType: Sendable {
    /// The full name, without a leading `.`.
    package let name: String
    package let descriptor: Google_Protobuf_DescriptorProto
    /// Declared in a proto3 file: scalar fields without `optional` have no presence.
    package let proto3: Bool
  }
  private var extensionNumbers: [String: [Int32]] = [:]

  /// The well-known types' files, as `QuadProtobuf` embeds them.
  package static let wellKnownFiles: [[UInt8]] = [
    QuadFile_google_protobuf_any_proto.serializedDescriptor,
    QuadFile_google_protobuf_source_context_proto.serializedDescriptor,
    QuadFile_google_protobuf_type_proto.serializedDescriptor,
    QuadFile_google_protobuf_api_proto.serializedDescriptor,
    QuadFile_google_protobuf_descriptor_proto.serializedDescriptor,
    QuadFile_google_protobuf_duration_proto.serializedDescriptor,
    QuadFile_google_protobuf_empty_proto.serializedDescriptor,
    QuadFile_google_protobuf_field_mask_proto.serializedDescriptor,
    QuadFile_google_protobuf_struct_proto.serializedDescriptor,
    QuadFile_google_protobuf_timestamp_proto.serializedDescriptor,
    QuadFile_google_protobuf_wrappers_proto.serializedDescriptor,
  ]

  /// The names of the well-known files the pool always has.
  package static let builtInFileNames: Set<String> = Set(wellKnownFiles.compactMap {
    try? Google_Protobuf_FileDescriptorProto(serializedBytes: $0).name
  })

  /// A pool of `files` (serialized `FileDescriptorProto`s, in any order; a file given twice with
  /// the same bytes counts once) and the well-known types they do not bring themselves.
  ///
  /// - Throws: ``DescriptorPoolError`` when a file does not parse, names a dependency that is not
  ///   given, differs from another file of the same name, or redefines a symbol.
  package init(files: [[UInt8]]) throws(DescriptorPoolError) {
    var byName: [String: (Google_Protobuf_FileDescriptorProto, [UInt8])] = [:]
    var order: [String] = []
    // The given files first: a peer's own copy of a well-known file replaces the built-in one.
    for bytes in files + Self.wellKnownFiles {
      let file: Google_Protobuf_FileDescriptorProto
      do {
        file = try Google_Protobuf_FileDescriptorProto(serializedBytes: bytes)
      } catch {
        throw DescriptorPoolError(.unparsable, "a FileDescriptorProto does not parse: \(error)")
      }
      if let (_, earlier) = byName[file.name] {
        guard earlier == bytes || file.name.hasPrefix("google/protobuf/") else {
          throw DescriptorPoolError(.conflict, "two different descriptors for \(file.name)")
        }
        continue
      }
      byName[file.name] = (file, bytes)
      order.append(file.name)
    }
    // Adds files after their dependencies, so every import is present when its file is indexed.
    var state: [String: Bool] = [:]  // false: in progress, true: added
    func add(_ name: String, from importer: String?) throws(DescriptorPoolError) {
      if state[name] == true { return }
      guard let (file, bytes) = byName[name] else {
        throw DescriptorPoolError(.missingDependency, "\(importer ?? "?") imports \(name), which is not in the pool")
      }
      guard state[name] == nil else {
        throw DescriptorPoolError(.conflict, "\(name) imports itself through a cycle")
      }
      state[name] = false
      for d in file.dependency { try add(d, from: name) }
      try index(file, bytes)
      state[name] = true
    }
    for name in order { try add(name, from: nil) }
  }

  private mutating func index(_ file: Google_Protobuf_FileDescriptorProto, _ bytes: [UInt8]) throws(DescriptorPoolError) {
    let name = file.name
    files[name] = file
    serialized[name] = bytes
    fileNames.append(name)
    let scope = file.package.isEmpty ? "" : file.package + "."
    func define(_ symbol: String, _ kind: SymbolKind) throws(DescriptorPoolError) {
      if let other = symbols[symbol] {
        throw DescriptorPoolError(.conflict, "\(symbol) is defined in both \(other.file) and \(name)")
      }
      symbols[symbol] = Symbol(kind: kind, file: name)
    }
    func defineEnum(_ e: Google_Protobuf_EnumDescriptorProto, in scope: String) throws(DescriptorPoolError) {
      let enumName = scope + e.name
      try define(enumName, .enumeration)
      enums[enumName] = e
      for v in e.value {
        // Enum values live in the enum's enclosing scope (C++ scoping), as protoc resolves them;
        // the enum-qualified spelling is accepted too.
        if symbols[scope + v.name] == nil { try define(scope + v.name, .enumValue) }
        try define(enumName + "." + v.name, .enumValue)
      }
    }
    func defineExtension(_ f: Google_Protobuf_FieldDescriptorProto, in scope: String) throws(DescriptorPoolError) {
      try define(scope + f.name, .extension)
      let extendee = f.extendee.hasPrefix(".") ? String(f.extendee.dropFirst()) : f.extendee
      let key = ExtensionKey(extendee: extendee, number: f.number)
      if let other = extensions[key] {
        throw DescriptorPoolError(.conflict, "extension \(f.number) of \(extendee) is declared in both \(other) and \(name)")
      }
      extensions[key] = name
      extensionNumbers[extendee, default: []].append(f.number)
      extensionFields[extendee, default: []].append(f)
    }
    func defineMessage(_ m: Google_Protobuf_DescriptorProto, in scope: String) throws(DescriptorPoolError) {
      let full = scope + m.name
      try define(full, .message)
      messages[full] = MessageType(name: full, descriptor: m, proto3: file.syntax == "proto3")
      for f in m.field { try define(full + "." + f.name, .field) }
      for o in m.oneofDecl { try define(full + "." + o.name, .oneof) }
      for n in m.nestedType { try defineMessage(n, in: full + ".") }
      for e in m.enumType { try defineEnum(e, in: full + ".") }
      for x in m.extension { try defineExtension(x, in: full + ".") }
    }
    for m in file.messageType { try defineMessage(m, in: scope) }
    for e in file.enumType { try defineEnum(e, in: scope) }
    for x in file.extension { try defineExtension(x, in: scope) }
    for s in file.service {
      let full = scope + s.name
      try define(full, .service)
      for m in s.method {
        try define(full + "." + m.name, .method)
        methods[full + "." + m.name] = m
      }
    }
  }

  // MARK: Look-ups

  /// The file called `name`, as parsed.
  package func file(named name: String) -> Google_Protobuf_FileDescriptorProto? { files[name] }

  /// The file called `name`, byte for byte as given.
  package func serializedFile(named name: String) -> [UInt8]? { serialized[name] }

  /// What a fully-qualified name (without a leading `.`) stands for, and where it is declared.
  package func symbol(_ name: String) -> Symbol? {
    symbols[name.hasPrefix(".") ? String(name.dropFirst()) : name]
  }

  /// The message type called `name` (with or without a leading `.`).
  package func message(_ name: String) -> MessageType? {
    messages[name.hasPrefix(".") ? String(name.dropFirst()) : name]
  }

  /// The enum type called `name` (with or without a leading `.`).
  package func enumType(_ name: String) -> Google_Protobuf_EnumDescriptorProto? {
    enums[name.hasPrefix(".") ? String(name.dropFirst()) : name]
  }

  /// The method called `name` (`pkg.Service.Method`).
  package func method(_ name: String) -> Google_Protobuf_MethodDescriptorProto? { methods[name] }

  /// The methods of service `name`, in declaration order.
  package func methods(ofService name: String) -> [String] {
    guard let s = symbol(name), s.kind == .service, let file = files[s.file] else { return [] }
    let scope = file.package.isEmpty ? "" : file.package + "."
    return file.service.first { scope + $0.name == name }?.method.map { name + "." + $0.name } ?? []
  }

  /// The extension fields declared for message `extendee`.
  package func extensionFields(of extendee: String) -> [Google_Protobuf_FieldDescriptorProto] {
    extensionFields[extendee] ?? []
  }

  /// The file declaring extension `number` of message `extendee`.
  package func fileContainingExtension(of extendee: String, number: Int32) -> String? {
    extensions[ExtensionKey(extendee: extendee, number: number)]
  }

  /// The numbers of every known extension of message `type` (empty when it has none), or `nil`
  /// when `type` is not a message in the pool.
  package func extensionNumbers(of type: String) -> [Int32]? {
    guard symbol(type)?.kind == .message else { return nil }
    return (extensionNumbers[type] ?? []).sorted()
  }

  /// `name` and every file it imports, directly or not: the file first, each file once.
  package func withDependencies(_ name: String) -> [String] {
    var seen: Set<String> = []
    var out: [String] = []
    var pending = [name]
    while let next = pending.popLast() {
      guard seen.insert(next).inserted, let f = files[next] else { continue }
      out.append(next)
      pending.append(contentsOf: f.dependency.reversed())
    }
    return out
  }

  /// Every service's full name, sorted.
  package var serviceNames: [String] {
    symbols.filter { $0.value.kind == .service }.keys.sorted()
  }
}

/// Why a ``DescriptorPool`` could not be built.
package struct DescriptorPoolError: Error, CustomStringConvertible, Sendable {
  /// The kind of failure.
  package struct Code: Hashable, Sendable, CustomStringConvertible {
    private let name: String
    private init(_ name: String) { self.name = name }
    /// A descriptor's bytes are not a `FileDescriptorProto`.
    package static let unparsable = Code("unparsable")
    /// A file imports one the pool does not have.
    package static let missingDependency = Code("missing dependency")
    /// Two files disagree: the same file name, symbol or extension twice, or an import cycle.
    package static let conflict = Code("conflict")
    package var description: String { name }
  }

  package let code: Code
  /// What failed and why.
  package let message: String

  package init(_ code: Code, _ message: String) {
    self.code = code
    self.message = message
  }

  package var description: String { "\(code): \(message)" }
}
