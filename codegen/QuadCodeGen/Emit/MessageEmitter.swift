internal import Foundation
internal import QuadProtobuf

/// Messages whose JSON form is not an object of their fields (proto3 JSON mapping, well-known types).
let wellKnownJSONTypes: Set<String> = [
  ".google.protobuf.Any", ".google.protobuf.Timestamp", ".google.protobuf.Duration",
  ".google.protobuf.FieldMask", ".google.protobuf.Struct", ".google.protobuf.Value",
  ".google.protobuf.ListValue", ".google.protobuf.DoubleValue", ".google.protobuf.FloatValue",
  ".google.protobuf.Int64Value", ".google.protobuf.UInt64Value", ".google.protobuf.Int32Value",
  ".google.protobuf.UInt32Value", ".google.protobuf.BoolValue", ".google.protobuf.StringValue",
  ".google.protobuf.BytesValue",
]

/// Renders one message (and, recursively, its nested types) as a Swift struct.
struct MessageEmitter {
  let file: FileProto
  let table: TypeTable
  let comments: Comments
  let visibility: String

  func emit(_ m: MessageProto, protoName: String, path: [Int32], into p: inout CodePrinter) {
    let info = table[protoName: protoName]
    let swiftName = info.swiftName.split(separator: ".").last.map(String.init)!
    let fields = m.field.map { FieldModel($0, in: file, owner: protoName, table: table) }
    let byNumber = fields.sorted { $0.number < $1.number }
    let oneofs = m.oneofDecl.enumerated().filter { (i, _) in
      fields.contains { f in if case .oneof(let idx, _) = f.presence { return idx == i } else { return false } }
    }
    let vis = visibility

    p.raw(comments.doc(path, indent: p.indentString))
    p.line("\(vis)struct \(swiftName): QuadProtobuf.Message {")
    p.indent {
      p.line("\(vis)static let protoMessageName = \(Naming.stringLiteral(String(protoName.dropFirst())))")
      p.line()
      // Fields.
      for (i, f) in fields.enumerated() {
        let doc = comments.doc(path + [2, Int32(i)], indent: p.indentString)
        emitAccessors(f, doc: doc, oneofs: m.oneofDecl, into: &p)
      }
      for (i, o) in oneofs {
        let name = oneofPropertyName(o.name)
        p.raw(comments.doc(path + [8, Int32(i)], indent: p.indentString))
        p.line("\(vis)var \(name): \(oneofTypeName(o.name))? = nil")
        p.line()
      }
      p.line("/// Fields read from the wire that this version of the message does not know.")
      p.line("\(vis)var unknownFields = QuadProtobuf.UnknownFields()")
      p.line()
      // Oneof enums.
      for (i, o) in oneofs {
        p.line("\(vis)enum \(oneofTypeName(o.name)): Swift.Hashable, Swift.Sendable {")
        p.indent {
          for f in fields {
            guard case .oneof(let idx, let indirect) = f.presence, idx == i else { continue }
            p.line("\(indirect ? "indirect " : "")case \(f.property)(\(f.swiftType))")
          }
        }
        p.line("}")
        p.line()
      }
      // Nested types.
      for (i, e) in m.enumType.enumerated() {
        EnumEmitter(table: table, comments: comments, visibility: vis)
          .emit(e, protoName: protoName + "." + e.name, path: path + [4, Int32(i)], into: &p)
      }
      for (i, n) in m.nestedType.enumerated() where !(n.options.mapEntry) {
        emit(n, protoName: protoName + "." + n.name, path: path + [3, Int32(i)], into: &p)
      }
      // Storage for fields with presence.
      for f in fields {
        switch f.presence {
        case .explicit, .message(indirect: false):
          p.line("fileprivate var \(f.storage): \(f.swiftType)? = nil")
        case .message(indirect: true):
          p.line("fileprivate var \(f.storage): QuadProtobuf.Indirect<\(f.swiftType)>? = nil")
        default: break
        }
      }
      p.line()
      p.line("\(vis)init() {}")
      p.line()
      emitDecode(fields, oneofs: m.oneofDecl, into: &p)
      emitSize(byNumber, oneofs: m.oneofDecl, into: &p)
      emitEncode(byNumber, oneofs: m.oneofDecl, into: &p)
      if wellKnownJSONTypes.contains(protoName) {
        p.line("\(vis)func encodeJSON(to writer: inout QuadProtobuf.JSONWriter) throws {")
        p.indent { p.line("try encodeWellKnownJSON(to: &writer)") }
        p.line("}")
        p.line()
        p.line("\(vis)mutating func decodeJSON(from reader: inout QuadProtobuf.JSONReader) throws {")
        p.indent { p.line("try decodeWellKnownJSON(from: &reader)") }
        p.line("}")
      } else {
        emitJSONEncode(byNumber, oneofs: m.oneofDecl, into: &p)
        emitJSONDecode(fields, oneofs: m.oneofDecl, into: &p)
      }
    }
    p.line("}")
    p.line()
  }

  func oneofTypeName(_ name: String) -> String { "OneOf_" + Naming.upperCamel(Substring(name)) }
  func oneofPropertyName(_ name: String) -> String { Naming.property(name) }

  // MARK: Accessors

  private func emitAccessors(_ f: FieldModel, doc: String, oneofs: [Google_Protobuf_OneofDescriptorProto], into p: inout CodePrinter) {
    let vis = visibility
    p.raw(doc)
    switch f.presence {
    case .implicit:
      p.line("\(vis)var \(f.property): \(f.swiftType) = \(f.defaultExpr)")
    case .repeated:
      p.line("\(vis)var \(f.property): [\(f.swiftType)] = []")
    case .map(let k, let v):
      p.line("\(vis)var \(f.property): [\(k.swiftType): \(v.swiftType)] = [:]")
    case .explicit:
      p.line("\(vis)var \(f.property): \(f.swiftType) {")
      p.indent {
        p.line("get { \(f.storage) ?? \(f.declaredDefault(table: table)) }")
        p.line("set { \(f.storage) = newValue }")
      }
      p.line("}")
      emitHasClear(f, into: &p)
    case .message(let indirect):
      p.line("\(vis)var \(f.property): \(f.swiftType) {")
      p.indent {
        if indirect {
          p.line("get { \(f.storage)?.value ?? \(f.defaultExpr) }")
          p.line("set { \(f.storage) = QuadProtobuf.Indirect(newValue) }")
        } else {
          p.line("get { \(f.storage) ?? \(f.defaultExpr) }")
          p.line("set { \(f.storage) = newValue }")
        }
      }
      p.line("}")
      emitHasClear(f, into: &p)
    case .oneof(let idx, _):
      let o = oneofPropertyName(oneofs[idx].name)
      p.line("\(vis)var \(f.property): \(f.swiftType) {")
      p.indent {
        p.line("get {")
        p.indent {
          p.line("if case .\(f.property)(let v)? = \(o) { return v }")
          p.line("return \(f.declaredDefault(table: table))")
        }
        p.line("}")
        p.line("set { \(o) = .\(f.property)(newValue) }")
      }
      p.line("}")
    }
    p.line()
  }

  private func emitHasClear(_ f: FieldModel, into p: inout CodePrinter) {
    let cap = Naming.capitalized(f.property)
    p.line("/// Whether `\(f.property.replacingOccurrences(of: "`", with: ""))` was set.")
    p.line("\(visibility)var has\(cap): Swift.Bool { \(f.storage) != nil }")
    p.line("/// Returns `\(f.property.replacingOccurrences(of: "`", with: ""))` to its unset state.")
    p.line("\(visibility)mutating func clear\(cap)() { \(f.storage) = nil }")
  }

  // MARK: Binary decoding

  private func emitDecode(_ fields: [FieldModel], oneofs: [Google_Protobuf_OneofDescriptorProto], into p: inout CodePrinter) {
    p.line("\(visibility)mutating func decodeMessage(from decoder: inout QuadProtobuf.BinaryDecoder) throws {")
    p.indent {
      p.line("while let tag = try decoder.nextTag() {")
      p.indent {
        p.line("switch tag {")
        for f in fields { emitDecodeCase(f, oneofs: oneofs, into: &p) }
        p.line("default:")
        p.indent { p.line("try decoder.skipField(tag: tag, into: &unknownFields)") }
        p.line("}")
      }
      p.line("}")
    }
    p.line("}")
    p.line()
  }

  private func closedEnumRead(_ f: FieldModel, assign: (String) -> String, into p: inout CodePrinter) {
    p.line("let raw = try decoder.readVarint()")
    p.line("if let v = \(f.swiftType)(rawValue: Swift.Int32(truncatingIfNeeded: raw)) {")
    p.indent { p.line(assign("v")) }
    p.line("} else {")
    p.indent { p.line("unknownFields.appendVarint(fieldNumber: \(f.number), value: raw)") }
    p.line("}")
  }

  private func emitDecodeCase(_ f: FieldModel, oneofs: [Google_Protobuf_OneofDescriptorProto], into p: inout CodePrinter) {
    let lenTag = UInt32(f.number) << 3 | 2
    switch f.presence {
    case .implicit, .explicit:
      let target: String
      if case .explicit = f.presence { target = f.storage } else { target = "self.\(f.property)" }
      p.line("case \(f.tag):")
      p.indent {
        if f.isClosedEnum {
          closedEnumRead(f, assign: { "\(target) = \($0)" }, into: &p)
        } else {
          p.line("\(target) = try \(f.qualifiedCodec).read(from: &decoder)")
        }
      }
    case .message(let indirect):
      p.line("case \(f.tag):")
      p.indent {
        if indirect {
          p.line("var v = \(f.storage)?.value ?? \(f.defaultExpr)")
          if f.isGroup {
            p.line("try decoder.readGroup(into: &v, fieldNumber: \(f.number))")
          } else {
            p.line("try decoder.readMessage(into: &v)")
          }
          p.line("\(f.storage) = QuadProtobuf.Indirect(v)")
        } else {
          p.line("if \(f.storage) == nil { \(f.storage) = \(f.defaultExpr) }")
          if f.isGroup {
            p.line("try decoder.readGroup(into: &\(f.storage)!, fieldNumber: \(f.number))")
          } else {
            p.line("try decoder.readMessage(into: &\(f.storage)!)")
          }
        }
      }
    case .repeated:
      if f.isGroup {
        p.line("case \(f.tag):")
        p.indent {
          p.line("var v = \(f.defaultExpr)")
          p.line("try decoder.readGroup(into: &v, fieldNumber: \(f.number))")
          p.line("\(f.property).append(v)")
        }
      } else if f.isPackable {
        p.line("case \(f.tag):")
        p.indent {
          if f.isClosedEnum {
            closedEnumRead(f, assign: { "\(f.property).append(\($0))" }, into: &p)
          } else {
            p.line("try decoder.readRepeated(\(f.qualifiedCodec).self, into: &\(f.property))")
          }
        }
        p.line("case \(lenTag):")
        p.indent {
          if f.isClosedEnum {
            p.line("try decoder.readPackedClosedEnum(\(f.swiftType).self, fieldNumber: \(f.number), into: &\(f.property), unknownFields: &unknownFields)")
          } else {
            p.line("try decoder.readPacked(\(f.qualifiedCodec).self, into: &\(f.property))")
          }
        }
      } else {
        p.line("case \(f.tag):")
        p.indent { p.line("try decoder.readRepeated(\(f.qualifiedCodec).self, into: &\(f.property))") }
      }
    case .map(let k, let v):
      p.line("case \(lenTag):")
      p.indent { p.line("try decoder.readMapEntry(\(k.qualifiedCodec).self, \(v.qualifiedCodec).self, into: &\(f.property))") }
    case .oneof(let idx, _):
      let o = oneofPropertyName(oneofs[idx].name)
      p.line("case \(f.tag):")
      p.indent {
        if f.isMessage || f.isGroup {
          p.line("var v = \(f.defaultExpr)")
          p.line("if case .\(f.property)(let existing)? = \(o) { v = existing }")
          if f.isGroup {
            p.line("try decoder.readGroup(into: &v, fieldNumber: \(f.number))")
          } else {
            p.line("try decoder.readMessage(into: &v)")
          }
          p.line("\(o) = .\(f.property)(v)")
        } else if f.isClosedEnum {
          closedEnumRead(f, assign: { "\(o) = .\(f.property)(\($0))" }, into: &p)
        } else {
          p.line("\(o) = .\(f.property)(try \(f.qualifiedCodec).read(from: &decoder))")
        }
      }
    }
  }

  // MARK: Binary encoding

  /// The expression that yields the field's value when set, and the condition, for size and write.
  private func withValue(_ f: FieldModel, oneofs: [Google_Protobuf_OneofDescriptorProto], into p: inout CodePrinter, body: (String, inout CodePrinter) -> Void) {
    switch f.presence {
    case .implicit:
      p.line("if \(f.nonDefault("self.\(f.property)")) {")
      p.indent { body("self.\(f.property)", &p) }
      p.line("}")
    case .explicit, .message(indirect: false):
      p.line("if let v = \(f.storage) {")
      p.indent { body("v", &p) }
      p.line("}")
    case .message(indirect: true):
      p.line("if let v = \(f.storage)?.value {")
      p.indent { body("v", &p) }
      p.line("}")
    case .oneof(let idx, _):
      p.line("if case .\(f.property)(let v)? = \(oneofPropertyName(oneofs[idx].name)) {")
      p.indent { body("v", &p) }
      p.line("}")
    case .repeated, .map:
      fatalError("not singular")
    }
  }

  private func emitSize(_ fields: [FieldModel], oneofs: [Google_Protobuf_OneofDescriptorProto], into p: inout CodePrinter) {
    p.line("\(visibility)func encodedSize(cache: inout QuadProtobuf.SizeCache) -> Swift.Int {")
    if fields.isEmpty {
      p.indent { p.line("unknownFields.count") }
      p.line("}")
      p.line()
      return
    }
    p.indent {
      p.line("var n = unknownFields.count")
      for f in fields {
        switch f.presence {
        case .repeated(let packed):
          if f.isGroup {
            p.line("for v in \(f.property) { n += \(2 * f.tagSize) + v.encodedSize(cache: &cache) }")
          } else if packed {
            p.line("n += cache.packedSize(\(f.qualifiedCodec).self, \(f.property), tagSize: \(f.tagSize))")
          } else {
            p.line("n += cache.repeatedSize(\(f.qualifiedCodec).self, \(f.property), tagSize: \(f.tagSize))")
          }
        case .map(let k, let v):
          p.line("n += cache.mapSize(\(k.qualifiedCodec).self, \(v.qualifiedCodec).self, \(f.property), tagSize: \(f.tagSize))")
        default:
          withValue(f, oneofs: oneofs, into: &p) { v, p in
            if f.isGroup {
              p.line("n += \(2 * f.tagSize) + \(v).encodedSize(cache: &cache)")
            } else {
              p.line("n += \(f.tagSize) + \(f.qualifiedCodec).size(of: \(v), cache: &cache)")
            }
          }
        }
      }
      p.line("return n")
    }
    p.line("}")
    p.line()
  }

  private func emitEncode(_ fields: [FieldModel], oneofs: [Google_Protobuf_OneofDescriptorProto], into p: inout CodePrinter) {
    p.line("\(visibility)func encodeMessage(to encoder: inout QuadProtobuf.BinaryEncoder) {")
    p.indent {
      for f in fields {
        let lenTag = UInt32(f.number) << 3 | 2
        switch f.presence {
        case .repeated(let packed):
          if f.isGroup {
            p.line("for v in \(f.property) {")
            p.indent {
              p.line("encoder.writeTag(\(f.tag))")
              p.line("encoder.writeGroup(v, fieldNumber: \(f.number))")
            }
            p.line("}")
          } else if packed {
            p.line("if !\(f.property).isEmpty {")
            p.indent {
              p.line("encoder.writeTag(\(lenTag))")
              p.line("encoder.writePacked(\(f.qualifiedCodec).self, \(f.property))")
            }
            p.line("}")
          } else {
            p.line("encoder.writeRepeated(\(f.qualifiedCodec).self, \(f.property), tag: \(f.tag))")
          }
        case .map(let k, let v):
          p.line("encoder.writeMap(\(k.qualifiedCodec).self, \(v.qualifiedCodec).self, \(f.property), tag: \(lenTag))")
        default:
          withValue(f, oneofs: oneofs, into: &p) { v, p in
            p.line("encoder.writeTag(\(f.tag))")
            if f.isGroup {
              p.line("encoder.writeGroup(\(v), fieldNumber: \(f.number))")
            } else {
              p.line("\(f.qualifiedCodec).write(\(v), to: &encoder)")
            }
          }
        }
      }
      p.line("encoder.writeUnknown(unknownFields)")
    }
    p.line("}")
    p.line()
  }

  // MARK: JSON

  private func emitJSONEncode(_ fields: [FieldModel], oneofs: [Google_Protobuf_OneofDescriptorProto], into p: inout CodePrinter) {
    p.line("\(visibility)func encodeJSON(to writer: inout QuadProtobuf.JSONWriter) throws {")
    p.indent {
      p.line("writer.beginObject()")
      for f in fields {
        let key = "writer.key(\(Naming.jsonKeyLiteral(f.jsonName)))"
        switch f.presence {
        case .repeated:
          p.line("if !\(f.property).isEmpty {")
          p.indent {
            p.line(key)
            p.line("writer.beginArray()")
            p.line("for v in \(f.property) {")
            p.indent {
              p.line("writer.element()")
              p.line(f.jsonWrite("v"))
            }
            p.line("}")
            p.line("writer.endArray()")
          }
          p.line("}")
        case .map(let k, let v):
          p.line("if !\(f.property).isEmpty {")
          p.indent {
            p.line(key)
            p.line("writer.beginObject()")
            let sort = k.proto.type == .bool ? ".sorted(by: { !$0 && $1 })" : ".sorted()"
            p.line("for k in \(f.property).keys\(sort) {")
            p.indent {
              p.line("writer.mapKey(k)")
              p.line(v.jsonWrite("\(f.property)[k]!"))
            }
            p.line("}")
            p.line("writer.endObject()")
          }
          p.line("}")
        default:
          withValue(f, oneofs: oneofs, into: &p) { v, p in
            p.line(key)
            p.line(f.jsonWrite(v))
          }
        }
      }
      p.line("writer.endObject()")
    }
    p.line("}")
    p.line()
  }

  private func jsonReadValue(_ f: FieldModel, assign: (String) -> String, into p: inout CodePrinter) {
    if f.isMessage || f.isGroup {
      p.line("var v = \(f.defaultExpr)")
      p.line("try reader.readMessage(into: &v)")
      p.line(assign("v"))
    } else if f.isEnum {
      p.line("if let v = try reader.readEnum(\(f.swiftType).self) { \(assign("v")) }")
    } else {
      p.line(assign(f.jsonRead))
    }
  }

  private func emitJSONDecode(_ fields: [FieldModel], oneofs: [Google_Protobuf_OneofDescriptorProto], into p: inout CodePrinter) {
    p.line("\(visibility)mutating func decodeJSON(from reader: inout QuadProtobuf.JSONReader) throws {")
    p.indent {
      p.line("try reader.beginObject()")
      p.line("while let key = try reader.nextKey() {")
      p.indent {
        p.line("switch key {")
        for f in fields {
          var names = [f.jsonName]
          if f.protoName != f.jsonName { names.append(f.protoName) }
          p.line("case \(names.map(Naming.stringLiteral).joined(separator: ", ")):")
          p.indent { emitJSONDecodeField(f, oneofs: oneofs, into: &p) }
        }
        p.line("default:")
        p.indent { p.line("try reader.unknownField(key, in: Self.protoMessageName)") }
        p.line("}")
      }
      p.line("}")
    }
    p.line("}")
    p.line()
  }

  private func emitJSONDecodeField(_ f: FieldModel, oneofs: [Google_Protobuf_OneofDescriptorProto], into p: inout CodePrinter) {
    let isValue = f.typeProtoName == ".google.protobuf.Value"
    switch f.presence {
    case .implicit:
      p.line("if try reader.readNull() {")
      p.indent { p.line("self.\(f.property) = \(f.defaultExpr)") }
      p.line("} else {")
      p.indent { jsonReadValue(f, assign: { "self.\(f.property) = \($0)" }, into: &p) }
      p.line("}")
    case .explicit:
      p.line("if try reader.readNull() {")
      p.indent { p.line("\(f.storage) = nil") }
      p.line("} else {")
      p.indent { jsonReadValue(f, assign: { "\(f.storage) = \($0)" }, into: &p) }
      p.line("}")
    case .message(let indirect):
      let assign: (String) -> String = indirect ? { "\(f.storage) = QuadProtobuf.Indirect(\($0))" } : { "\(f.storage) = \($0)" }
      if isValue {
        jsonReadValue(f, assign: assign, into: &p)
      } else {
        p.line("if try reader.readNull() {")
        p.indent { p.line("\(f.storage) = nil") }
        p.line("} else {")
        p.indent { jsonReadValue(f, assign: assign, into: &p) }
        p.line("}")
      }
    case .repeated:
      p.line("\(f.property) = []")
      p.line("if try !reader.readNull() {")
      p.indent {
        p.line("try reader.beginArray()")
        p.line("while try reader.nextElement() {")
        p.indent { jsonReadValue(f, assign: { "\(f.property).append(\($0))" }, into: &p) }
        p.line("}")
      }
      p.line("}")
    case .map(let k, let v):
      p.line("\(f.property) = [:]")
      p.line("if try !reader.readNull() {")
      p.indent {
        p.line("try reader.beginObject()")
        p.line("while let key = try reader.nextKey() {")
        p.indent {
          p.line("let k = \(k.jsonMapKey)")
          jsonReadValue(v, assign: { "\(f.property)[k] = \($0)" }, into: &p)
        }
        p.line("}")
      }
      p.line("}")
    case .oneof(let idx, _):
      let o = oneofPropertyName(oneofs[idx].name)
      if isValue {
        jsonReadValue(f, assign: { "\(o) = .\(f.property)(\($0))" }, into: &p)
      } else if f.typeProtoName == ".google.protobuf.NullValue" {
        p.line("if try reader.readNull() {")
        p.indent { p.line("\(o) = .\(f.property)(\(f.defaultExpr))") }
        p.line("} else {")
        p.indent { jsonReadValue(f, assign: { "\(o) = .\(f.property)(\($0))" }, into: &p) }
        p.line("}")
      } else {
        p.line("if try !reader.readNull() {")
        p.indent { jsonReadValue(f, assign: { "\(o) = .\(f.property)(\($0))" }, into: &p) }
        p.line("}")
      }
    }
  }
}
