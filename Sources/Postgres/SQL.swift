/// A SQL statement whose values travel as bind parameters, never as text spliced into it.
///
/// Interpolating a value appends `$n` and binds the value; literal text stays as written:
///
/// ```swift
/// let q: SQL = "SELECT name FROM students WHERE id = \(id) AND status = \(status)"
/// // text: SELECT name FROM students WHERE id = $1 AND status = $2   binds: [id, status]
/// ```
///
/// Anything dynamic that is not a value (a table name chosen at run time) needs
/// ``init(unsafeRaw:)``, which review treats as a red flag.
package struct SQL: Sendable, ExpressibleByStringInterpolation {
  /// The statement text with `$1`, `$2`, … where values go.
  package private(set) var text: String
  /// The values, in placeholder order.
  package private(set) var binds: [PostgresBind]

  package struct StringInterpolation: StringInterpolationProtocol {
    var text = ""
    var binds: [PostgresBind] = []

    package init(literalCapacity: Int, interpolationCount: Int) {
      text.reserveCapacity(literalCapacity + interpolationCount * 3)
    }

    package mutating func appendLiteral(_ literal: String) { text += literal }

    /// Binds `value` as the next parameter.
    package mutating func appendInterpolation(_ value: some PostgresEncodable) {
      binds.append(value.postgresBind)
      text += "$\(binds.count)"
    }

    /// Splices a fragment of SQL written in the source (a column list shared by statements):
    /// a `StaticString`, so never text built at run time.
    package mutating func appendInterpolation(literal fragment: StaticString) {
      text += fragment.description
    }

    /// Binds an optional value (`NULL` when `nil`).
    package mutating func appendInterpolation(_ value: (some PostgresEncodable)?) {
      binds.append(value?.postgresBind ?? .null)
      text += "$\(binds.count)"
    }
  }

  package init(stringLiteral value: String) {
    text = value
    binds = []
  }

  package init(stringInterpolation: StringInterpolation) {
    text = stringInterpolation.text
    binds = stringInterpolation.binds
  }

  /// Text used as it is, with no values: only for SQL built from trusted parts.
  package init(unsafeRaw text: String) {
    self.text = text
    binds = []
  }
}

/// One bind parameter: its type, and its bytes in text or binary form.
package enum PostgresBind: Sendable, Hashable {
  case null
  /// A value in PostgreSQL's text form, with the type's OID (0 lets the server infer it).
  case text(String, oid: UInt32)
  /// A value in binary form (`bytea`).
  case binary([UInt8], oid: UInt32)
}

/// A Swift value that can be bound as a parameter.
package protocol PostgresEncodable: Sendable {
  var postgresBind: PostgresBind { get }
}

extension String: PostgresEncodable {
  package var postgresBind: PostgresBind { .text(self, oid: PostgresOID.text) }
}

extension Int: PostgresEncodable {
  package var postgresBind: PostgresBind { .text(String(self), oid: PostgresOID.int8) }
}

extension Int64: PostgresEncodable {
  package var postgresBind: PostgresBind { .text(String(self), oid: PostgresOID.int8) }
}

extension Int32: PostgresEncodable {
  package var postgresBind: PostgresBind { .text(String(self), oid: PostgresOID.int4) }
}

extension Bool: PostgresEncodable {
  package var postgresBind: PostgresBind { .text(self ? "t" : "f", oid: PostgresOID.bool) }
}

extension Double: PostgresEncodable {
  package var postgresBind: PostgresBind {
    // PostgreSQL spells the non-finite values this way; finite ones round-trip exactly.
    if isNaN { return .text("NaN", oid: PostgresOID.float8) }
    if isInfinite { return .text(self > 0 ? "Infinity" : "-Infinity", oid: PostgresOID.float8) }
    return .text("\(self)", oid: PostgresOID.float8)
  }
}

extension Array: PostgresEncodable where Element == UInt8 {
  package var postgresBind: PostgresBind { .binary(self, oid: PostgresOID.bytea) }
}

/// The built-in type OIDs Quad binds and reads (`pg_type.oid`).
package enum PostgresOID {
  package static let bool: UInt32 = 16
  package static let bytea: UInt32 = 17
  package static let int8: UInt32 = 20
  package static let int2: UInt32 = 21
  package static let int4: UInt32 = 23
  package static let text: UInt32 = 25
  package static let float4: UInt32 = 700
  package static let float8: UInt32 = 701
  package static let varchar: UInt32 = 1043
  package static let textArray: UInt32 = 1009
}

/// A list of strings bound as one `text[]` parameter (`event_type = ANY(\(PostgresTextArray(types)))`).
package struct PostgresTextArray: PostgresEncodable, Sendable {
  package let values: [String]

  package init(_ values: [String]) { self.values = values }

  package var postgresBind: PostgresBind {
    // The array's text form: every element quoted, `"` and `\` escaped.
    var literal = "{"
    for (i, v) in values.enumerated() {
      if i > 0 { literal += "," }
      literal += "\""
      for c in v.unicodeScalars {
        if c == "\"" || c == "\\" { literal += "\\" }
        literal.unicodeScalars.append(c)
      }
      literal += "\""
    }
    return .text(literal + "}", oid: PostgresOID.textArray)
  }
}
