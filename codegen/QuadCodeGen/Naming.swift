internal import Foundation

/// Swift names for proto names. The rules, as swift-protobuf spells them so users recognise them:
///
/// - A top-level type is its package's dot-separated parts, each UpperCamelCased and joined with
///   `_`, then `_` and the proto name: `campus.students.v1.Student` → `Campus_Students_V1_Student`.
///   `option swift_prefix = "QC";` replaces that package prefix: `QCStudent`.
/// - A nested type is a nested Swift type: `Campus_Students_V1_Student.Address`.
/// - A field `given_name` is the property `givenName`; an enum value `ROLE_GRADUATE` of enum
///   `Role` is the case `.graduate` (the enum's name, as a prefix, is dropped).
/// - Names that clash with Swift keywords are back-quoted; names that clash with generated
///   members (`unknownFields`, `protoMessageName`, …) get the suffix `_p`.
enum Naming {
  static let swiftKeywords: Set<String> = [
    "associatedtype", "class", "deinit", "enum", "extension", "fileprivate", "func", "import", "init",
    "inout", "internal", "let", "open", "operator", "private", "precedencegroup", "protocol", "public",
    "rethrows", "static", "struct", "subscript", "typealias", "var", "break", "case", "catch",
    "continue", "default", "defer", "do", "else", "fallthrough", "for", "guard", "if", "in", "repeat",
    "return", "throw", "switch", "where", "while", "as", "false", "is", "nil", "super", "throws",
    "true", "try", "await", "async", "any", "some", "consume", "borrowing", "consuming", "package",
    "nonisolated", "isolated", "each", "macro",
  ]

  /// Property names that would clash with what generated types already declare.
  static let reservedMembers: Set<String> = [
    "unknownFields", "protoMessageName", "serializedBytes", "serializedSize", "jsonString",
    "jsonUTF8Bytes", "hashValue", "hash", "self", "Type", "Protocol", "Self", "init", "description",
    "debugDescription", "decodeMessage", "encodeMessage", "encodedSize", "encodeJSON", "decodeJSON",
    "merge", "rawValue", "protoName", "allCases",
  ]

  /// Type names Swift treats specially when nested (`Foo.Type` is a metatype).
  static let reservedTypeNames: Set<String> = ["Type", "Protocol", "Self", "Any", "Error", "Sendable", "Hashable"]

  static func upperCamel(_ s: Substring) -> String {
    var out = ""
    var upperNext = true
    for c in s {
      if c == "_" || c == "-" || c == "." {
        upperNext = true
        continue
      }
      if upperNext {
        out += c.uppercased()
        upperNext = false
      } else {
        out.append(c)
      }
      if c.isNumber { upperNext = true }
    }
    return out
  }

  /// `given_name` → `givenName` (protoc's json_name rule: drop `_`, uppercase the next letter).
  static func lowerCamel(_ s: String) -> String {
    var out = ""
    var upperNext = false
    for c in s {
      if c == "_" {
        upperNext = true
        continue
      }
      if upperNext {
        out += c.uppercased()
        upperNext = false
      } else {
        out.append(c)
      }
    }
    if let first = out.first, first.isUppercase {
      // A field named `Foo` stays readable as `foo`.
      out = first.lowercased() + out.dropFirst()
    }
    return out
  }

  /// A property name, escaped as needed.
  static func property(_ protoName: String) -> String {
    let camel = lowerCamel(protoName)
    if camel.isEmpty { return "_p" }
    if reservedMembers.contains(camel) { return camel + "_p" }
    if swiftKeywords.contains(camel) { return "`\(camel)`" }
    if camel.first!.isNumber { return "_" + camel }
    return camel
  }

  /// The storage name behind a property (`_homeAddress`).
  static func storage(_ property: String) -> String {
    "_" + property.replacingOccurrences(of: "`", with: "")
  }

  /// Capitalised form for `hasX` / `clearX`.
  static func capitalized(_ property: String) -> String {
    let p = property.replacingOccurrences(of: "`", with: "")
    return p.prefix(1).uppercased() + p.dropFirst()
  }

  /// A nested type's name.
  static func nestedType(_ protoName: String, isEnum: Bool) -> String {
    let n = upperCamelKeepingCase(protoName)
    if reservedTypeNames.contains(n) { return n + (isEnum ? "Enum" : "Message") }
    return n
  }

  /// Standard-library names a package-less top-level type must not take (it would shadow them in
  /// the user's module).
  static let standardTypeNames: Set<String> = [
    "String", "Int", "Int8", "Int16", "Int32", "Int64", "UInt", "UInt8", "UInt16", "UInt32", "UInt64",
    "Bool", "Double", "Float", "Array", "Dictionary", "Set", "Optional", "Result", "Character",
    "Data", "Date", "URL", "Never", "Void", "Task", "Equatable", "Comparable", "Codable", "Identifiable",
  ]

  /// A top-level type's name: the prefix plus the proto name; without a prefix, names Swift
  /// reserves or the standard library uses get `Message` / `Enum` appended.
  static func topLevelType(_ protoName: String, prefix: String, isEnum: Bool) -> String {
    let n = upperCamelKeepingCase(protoName)
    if prefix.isEmpty, reservedTypeNames.contains(n) || standardTypeNames.contains(n) {
      return n + (isEnum ? "Enum" : "Message")
    }
    return prefix + n
  }

  /// Type names keep their case except that `_` separators are kept (swift-protobuf keeps them too).
  static func upperCamelKeepingCase(_ s: String) -> String {
    guard let first = s.first else { return s }
    return first.uppercased() + s.dropFirst()
  }

  /// The prefix for a package's top-level types.
  static func packagePrefix(_ package: String, swiftPrefix: String?) -> String {
    if let swiftPrefix { return swiftPrefix }
    if package.isEmpty { return "" }
    return package.split(separator: ".").map { upperCamel($0) }.joined(separator: "_") + "_"
  }

  /// An enum case name: drop the enum's name as a prefix, then lowerCamelCase.
  static func enumCase(_ valueName: String, enumName: String) -> String {
    let prefix = upperSnake(enumName) + "_"
    var name = valueName
    if name.uppercased().hasPrefix(prefix), name.count > prefix.count {
      let rest = String(name.dropFirst(prefix.count))
      if let f = rest.first, !f.isNumber { name = rest }
    }
    let camel = lowerCamel(name.lowercased())
    if camel.isEmpty { return "_p" }
    if swiftKeywords.contains(camel) { return "`\(camel)`" }
    if ["UNRECOGNIZED", "rawValue", "protoName", "allCases", "init", "self", "Type"].contains(camel) { return camel + "_p" }
    if camel.first!.isNumber { return "_" + camel }
    return camel
  }

  /// `ScanKind` → `SCAN_KIND`.
  static func upperSnake(_ s: String) -> String {
    var out = ""
    var previousLower = false
    for c in s {
      if c.isUppercase && previousLower { out += "_" }
      out += c.uppercased()
      previousLower = c.isLowercase || c.isNumber
    }
    return out
  }

  /// A Swift string literal for any text.
  static func stringLiteral(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
      switch u {
      case "\\": out += "\\\\"
      case "\"": out += "\\\""
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      default:
        if u.value < 0x20 || u.value == 0x7F {
          out += "\\u{\(String(u.value, radix: 16))}"
        } else {
          out.unicodeScalars.append(u)
        }
      }
    }
    return out + "\""
  }

  /// A JSON-escaped key, as a Swift string literal.
  static func jsonKeyLiteral(_ s: String) -> String {
    var json = ""
    for u in s.unicodeScalars {
      switch u {
      case "\"": json += "\\\""
      case "\\": json += "\\\\"
      default:
        if u.value < 0x20 {
          json += String(format: "\\u%04x", u.value)
        } else {
          json.unicodeScalars.append(u)
        }
      }
    }
    return stringLiteral(json)
  }
}
