internal import Foundation
internal import QuadProtobuf

/// How one field is stored, sized, written and read, worked out once for every emitter.
struct FieldModel {
  indirect enum Presence {
    /// proto3 singular scalar: stored inline, written when not the default.
    case implicit
    /// proto2 optional/required or proto3 `optional` scalar: stored as an optional.
    case explicit
    /// A singular message or group.
    case message(indirect: Bool)
    case repeated(packed: Bool)
    case map(key: FieldModel, value: FieldModel)
    case oneof(index: Int, indirect: Bool)
  }

  let proto: FieldProto
  let number: Int32
  let property: String
  let storage: String
  let presence: Presence
  /// `Int64`, `String`, `Pkg_Msg`…
  let swiftType: String
  /// `QuadProtobuf.ProtoInt64`…
  let codec: String
  let wireType: UInt32
  /// The value an unset field reads as.
  let defaultExpr: String
  let isGroup: Bool
  let isMessage: Bool
  let isEnum: Bool
  let isClosedEnum: Bool
  let isString: Bool
  let isBytes: Bool
  let isFloat: Bool
  let jsonName: String
  let protoName: String
  /// The message type's proto name, for well-known-type special cases.
  let typeProtoName: String

  var tag: UInt32 { UInt32(number) << 3 | wireType }
  var tagSize: Int { Varint.size32(UInt32(number) << 3) }
  var isRepeated: Bool { if case .repeated = presence { return true } else { return false } }

  /// The packable codec check: only scalars and enums may pack.
  var isPackable: Bool { !isMessage && !isGroup && !isString && !isBytes }

  init(_ f: FieldProto, in file: FileProto, owner: String, table: TypeTable, isMapPart: Bool = false) {
    proto = f
    number = f.number
    property = Naming.property(f.name)
    storage = Naming.storage(property)
    protoName = f.name
    jsonName = f.hasJsonName ? f.jsonName : Naming.lowerCamel(f.name)
    isGroup = f.type == .group
    isMessage = f.type == .message
    isEnum = f.type == .enum
    isString = f.type == .string
    isBytes = f.type == .bytes
    isFloat = f.type == .double || f.type == .float
    typeProtoName = f.typeName
    let proto3 = file.syntax == "proto3"

    var closedEnum = false
    switch f.type {
    case .double: (swiftType, codec, wireType, defaultExpr) = ("Swift.Double", "ProtoDouble", 1, "0")
    case .float: (swiftType, codec, wireType, defaultExpr) = ("Swift.Float", "ProtoFloat", 5, "0")
    case .int64: (swiftType, codec, wireType, defaultExpr) = ("Swift.Int64", "ProtoInt64", 0, "0")
    case .uint64: (swiftType, codec, wireType, defaultExpr) = ("Swift.UInt64", "ProtoUInt64", 0, "0")
    case .int32: (swiftType, codec, wireType, defaultExpr) = ("Swift.Int32", "ProtoInt32", 0, "0")
    case .fixed64: (swiftType, codec, wireType, defaultExpr) = ("Swift.UInt64", "ProtoFixed64", 1, "0")
    case .fixed32: (swiftType, codec, wireType, defaultExpr) = ("Swift.UInt32", "ProtoFixed32", 5, "0")
    case .bool: (swiftType, codec, wireType, defaultExpr) = ("Swift.Bool", "ProtoBool", 0, "false")
    case .string: (swiftType, codec, wireType, defaultExpr) = ("Swift.String", "ProtoString", 2, "\"\"")
    case .bytes: (swiftType, codec, wireType, defaultExpr) = ("[Swift.UInt8]", "ProtoBytes", 2, "[]")
    case .uint32: (swiftType, codec, wireType, defaultExpr) = ("Swift.UInt32", "ProtoUInt32", 0, "0")
    case .sfixed32: (swiftType, codec, wireType, defaultExpr) = ("Swift.Int32", "ProtoSFixed32", 5, "0")
    case .sfixed64: (swiftType, codec, wireType, defaultExpr) = ("Swift.Int64", "ProtoSFixed64", 1, "0")
    case .sint32: (swiftType, codec, wireType, defaultExpr) = ("Swift.Int32", "ProtoSInt32", 0, "0")
    case .sint64: (swiftType, codec, wireType, defaultExpr) = ("Swift.Int64", "ProtoSInt64", 0, "0")
    case .enum:
      let t = table[protoName: f.typeName]
      swiftType = t.swiftName
      codec = "ProtoEnum<\(t.swiftName)>"
      wireType = 0
      defaultExpr = "\(t.swiftName)()"
      closedEnum = t.isClosedEnum
    case .message:
      let t = table[protoName: f.typeName]
      swiftType = t.swiftName
      codec = "ProtoMessage<\(t.swiftName)>"
      wireType = 2
      defaultExpr = "\(t.swiftName)()"
    case .group:
      let t = table[protoName: f.typeName]
      swiftType = t.swiftName
      codec = ""
      wireType = 3
      defaultExpr = "\(t.swiftName)()"
    }
    isClosedEnum = closedEnum

    // Presence.
    if f.label == .repeated {
      if (f.type == .message), table[protoName: f.typeName].isMapEntry {
        let entry = table[protoName: f.typeName].message!
        let key = FieldModel(entry.field[0], in: file, owner: f.typeName, table: table, isMapPart: true)
        let value = FieldModel(entry.field[1], in: file, owner: f.typeName, table: table, isMapPart: true)
        presence = .map(key: key, value: value)
      } else {
        let packable = !(f.type == .message || f.type == .group || f.type == .string || f.type == .bytes)
        let packed = packable && (f.options.hasPacked ? f.options.packed : proto3)
        presence = .repeated(packed: packed)
      }
    } else if f.hasOneofIndex && !f.proto3Optional {
      let indirect = (f.type == .message || f.type == .group) && table.needsIndirection(owner: owner, target: f.typeName)
      presence = .oneof(index: Int(f.oneofIndex), indirect: indirect)
    } else if f.type == .message || f.type == .group {
      presence = .message(indirect: table.needsIndirection(owner: owner, target: f.typeName))
    } else if isMapPart || (proto3 && !f.proto3Optional) {
      presence = .implicit
    } else {
      presence = .explicit
    }
  }

  var qualifiedCodec: String { "QuadProtobuf.\(codec)" }

  /// The declared proto2 default, as a Swift expression.
  func declaredDefault(table: TypeTable) -> String {
    guard proto.hasDefaultValue else { return defaultExpr }
    let d = proto.defaultValue
    switch proto.type {
    case .string: return Naming.stringLiteral(d)
    case .bytes: return "[" + FieldModel.unescapeCBytes(d).map(String.init).joined(separator: ", ") + "]"
    case .bool: return d
    case .enum:
      let e = table[protoName: proto.typeName]
      return "." + Naming.enumCase(d, enumName: e.enumType!.name)
    case .double, .float:
      switch d {
      case "inf": return "\(swiftType).infinity"
      case "-inf": return "-\(swiftType).infinity"
      case "nan": return "\(swiftType).nan"
      default: return d
      }
    default: return d
    }
  }

  /// Undoes protoc's C escaping of `bytes` defaults.
  static func unescapeCBytes(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    let b = Array(s.utf8)
    var i = 0
    while i < b.count {
      if b[i] == UInt8(ascii: "\\"), i + 1 < b.count {
        let c = b[i + 1]
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "7"):
          var v = 0
          var j = i + 1
          while j < b.count, j < i + 4, (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(b[j]) {
            v = v * 8 + Int(b[j] - 48)
            j += 1
          }
          out.append(UInt8(truncatingIfNeeded: v))
          i = j
          continue
        case UInt8(ascii: "n"): out.append(10)
        case UInt8(ascii: "r"): out.append(13)
        case UInt8(ascii: "t"): out.append(9)
        case UInt8(ascii: "x"):
          var v = 0
          var j = i + 2
          while j < b.count, j < i + 4, let d = Int(String(UnicodeScalar(b[j])), radix: 16) {
            v = v * 16 + d
            j += 1
          }
          out.append(UInt8(truncatingIfNeeded: v))
          i = j
          continue
        default: out.append(c)
        }
        i += 2
      } else {
        out.append(b[i])
        i += 1
      }
    }
    return out
  }

  /// Swift condition: `value` differs from the proto3 default (so it is written).
  func nonDefault(_ value: String) -> String {
    switch proto.type {
    case .string, .bytes: return "!\(value).isEmpty"
    case .bool: return value
    case .double, .float: return "\(value).bitPattern != 0"
    case .enum: return "\(value).rawValue != 0"
    default: return "\(value) != 0"
    }
  }

  /// JSON writer call for one value.
  func jsonWrite(_ value: String) -> String {
    switch proto.type {
    case .double: return "writer.writeDouble(\(value))"
    case .float: return "writer.writeFloat(\(value))"
    case .int64, .sint64, .sfixed64: return "writer.writeInt64(\(value))"
    case .uint64, .fixed64: return "writer.writeUInt64(\(value))"
    case .int32, .sint32, .sfixed32: return "writer.writeInt32(\(value))"
    case .uint32, .fixed32: return "writer.writeUInt32(\(value))"
    case .bool: return "writer.writeBool(\(value))"
    case .string: return "writer.writeString(\(value))"
    case .bytes: return "writer.writeBytes(\(value))"
    case .enum:
      if typeProtoName == ".google.protobuf.NullValue" { return "writer.writeNull()" }
      return "writer.writeEnum(\(value))"
    default: return "try writer.writeMessage(\(value))"
    }
  }

  /// JSON reader expression for one scalar value (not enums or messages).
  var jsonRead: String {
    switch proto.type {
    case .double: return "try reader.readDouble()"
    case .float: return "try reader.readFloat()"
    case .int64, .sint64, .sfixed64: return "try reader.readInt64()"
    case .uint64, .fixed64: return "try reader.readUInt64()"
    case .int32, .sint32, .sfixed32: return "try reader.readInt32()"
    case .uint32, .fixed32: return "try reader.readUInt32()"
    case .bool: return "try reader.readBool()"
    case .string: return "try reader.readString()"
    case .bytes: return "try reader.readBytes()"
    default: fatalError("not a scalar")
    }
  }

  /// Map-key conversion from a JSON object key.
  var jsonMapKey: String {
    switch proto.type {
    case .string: return "key"
    case .bool: return "try reader.mapKeyBool(key)"
    case .int64, .sint64, .sfixed64: return "try reader.mapKeyInt64(key)"
    case .uint64, .fixed64: return "try reader.mapKeyUInt64(key)"
    case .int32, .sint32, .sfixed32: return "try reader.mapKeyInt32(key)"
    default: return "try reader.mapKeyUInt32(key)"
    }
  }
}
