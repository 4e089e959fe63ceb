public import QuadProtobuf

/// A small, seeded, portable random generator (splitmix64) so failures replay exactly.
public struct SplitMix64: RandomNumberGenerator, Sendable {
  private var state: UInt64
  public init(seed: UInt64) { state = seed }
  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

/// Random values that favour edge cases (0, -1, min, max, NaN, empty, long, non-ASCII).
public struct RandomValues {
  public var rng: SplitMix64
  /// Whether strings may contain U+0000 (libprotobuf-c keeps strings NUL-terminated, so it cannot).
  public var allowNUL = true
  public init(seed: UInt64, allowNUL: Bool = true) {
    rng = SplitMix64(seed: seed)
    self.allowNUL = allowNUL
  }

  public mutating func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &rng) < percent }

  public mutating func int32() -> Int32 {
    switch Int.random(in: 0..<6, using: &rng) {
    case 0: return [0, -1, 1, .min, .max][Int.random(in: 0..<5, using: &rng)]
    case 1: return Int32.random(in: -200...200, using: &rng)
    default: return Int32.random(in: .min ... .max, using: &rng)
    }
  }
  public mutating func int64() -> Int64 {
    switch Int.random(in: 0..<6, using: &rng) {
    case 0: return [0, -1, 1, .min, .max, Int64(Int32.min) - 1][Int.random(in: 0..<6, using: &rng)]
    case 1: return Int64.random(in: -70000...70000, using: &rng)
    default: return Int64.random(in: .min ... .max, using: &rng)
    }
  }
  public mutating func uint32() -> UInt32 { UInt32(bitPattern: int32()) }
  public mutating func uint64() -> UInt64 { UInt64(bitPattern: int64()) }
  public mutating func double(allowNaN: Bool = true) -> Double {
    switch Int.random(in: 0..<8, using: &rng) {
    case 0: return [0.0, -0.0, 1.5, -2.25, .infinity, -.infinity, .greatestFiniteMagnitude, .leastNonzeroMagnitude][Int.random(in: 0..<8, using: &rng)]
    case 1 where allowNaN: return .nan
    default: return Double.random(in: -1e12...1e12, using: &rng)
    }
  }
  public mutating func float(allowNaN: Bool = true) -> Float {
    switch Int.random(in: 0..<8, using: &rng) {
    case 0: return [0, -0.0, 1.5, .infinity, -.infinity, .greatestFiniteMagnitude, .leastNonzeroMagnitude][Int.random(in: 0..<7, using: &rng)]
    case 1 where allowNaN: return .nan
    default: return Float.random(in: -1e6...1e6, using: &rng)
    }
  }
  public mutating func bool() -> Bool { Bool.random(using: &rng) }
  public mutating func string() -> String {
    let pieces = ["", "a", "quad", "Ünïcödé", "日本語", "emoji 🎓", "\"quote\"", "back\\slash", "new\nline",
                  allowNUL ? "\u{0}nul" : "nul", "tab\t"]
    switch Int.random(in: 0..<6, using: &rng) {
    case 0: return ""
    case 1: return String(repeating: "x", count: Int.random(in: 100...3000, using: &rng))
    default:
      var s = ""
      for _ in 0..<Int.random(in: 1...4, using: &rng) { s += pieces[Int.random(in: 0..<pieces.count, using: &rng)] }
      return s
    }
  }
  public mutating func bytes() -> [UInt8] {
    let n = chance(10) ? Int.random(in: 200...2000, using: &rng) : Int.random(in: 0...12, using: &rng)
    return (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
  }
  public mutating func count(_ max: Int = 4) -> Int { chance(40) ? 0 : Int.random(in: 1...max, using: &rng) }
  public mutating func color() -> Quad_Test_V1_Color {
    switch Int.random(in: 0..<5, using: &rng) {
    case 0: return .unspecified
    case 1: return .red
    case 2: return .green
    case 3: return .negative
    default: return Quad_Test_V1_Color(rawValue: Int32.random(in: 3...1000, using: &rng))!
    }
  }
}

extension Quad_Test_V1_Everything.Nested {
  /// A random nested message, at most `depth` levels deep.
  public static func random(_ r: inout RandomValues, depth: Int) -> Self {
    var n = Self()
    if r.chance(70) { n.a = r.int32() }
    if r.chance(70) { n.b = r.string() }
    if depth > 0 {
      if r.chance(30) { n.child = random(&r, depth: depth - 1) }
      for _ in 0..<r.count(2) { n.children.append(random(&r, depth: depth - 1)) }
    }
    return n
  }
}

extension Quad_Test_V1_Everything {
  /// A random message exercising every field kind; `allowNaN: false` for comparisons by value.
  public static func random(_ r: inout RandomValues, depth: Int = 2, allowNaN: Bool = false) -> Self {
    var m = Self()
    if r.chance(60) { m.fDouble = r.double(allowNaN: allowNaN) }
    if r.chance(60) { m.fFloat = r.float(allowNaN: allowNaN) }
    if r.chance(60) { m.fInt32 = r.int32() }
    if r.chance(60) { m.fInt64 = r.int64() }
    if r.chance(60) { m.fUint32 = r.uint32() }
    if r.chance(60) { m.fUint64 = r.uint64() }
    if r.chance(60) { m.fSint32 = r.int32() }
    if r.chance(60) { m.fSint64 = r.int64() }
    if r.chance(60) { m.fFixed32 = r.uint32() }
    if r.chance(60) { m.fFixed64 = r.uint64() }
    if r.chance(60) { m.fSfixed32 = r.int32() }
    if r.chance(60) { m.fSfixed64 = r.int64() }
    if r.chance(60) { m.fBool = r.bool() }
    if r.chance(60) { m.fString = r.string() }
    if r.chance(60) { m.fBytes = r.bytes() }
    if r.chance(50) { m.fNested = .random(&r, depth: depth) }
    if r.chance(60) { m.fEnum = r.color() }
    for _ in 0..<r.count() { m.rDouble.append(r.double(allowNaN: allowNaN)) }
    for _ in 0..<r.count() { m.rFloat.append(r.float(allowNaN: allowNaN)) }
    for _ in 0..<r.count() { m.rInt32.append(r.int32()) }
    for _ in 0..<r.count() { m.rInt64.append(r.int64()) }
    for _ in 0..<r.count() { m.rUint32.append(r.uint32()) }
    for _ in 0..<r.count() { m.rUint64.append(r.uint64()) }
    for _ in 0..<r.count() { m.rSint32.append(r.int32()) }
    for _ in 0..<r.count() { m.rSint64.append(r.int64()) }
    for _ in 0..<r.count() { m.rFixed32.append(r.uint32()) }
    for _ in 0..<r.count() { m.rFixed64.append(r.uint64()) }
    for _ in 0..<r.count() { m.rSfixed32.append(r.int32()) }
    for _ in 0..<r.count() { m.rSfixed64.append(r.int64()) }
    for _ in 0..<r.count() { m.rBool.append(r.bool()) }
    for _ in 0..<r.count() { m.rEnum.append(r.color()) }
    for _ in 0..<r.count() { m.rString.append(r.string()) }
    for _ in 0..<r.count() { m.rBytes.append(r.bytes()) }
    for _ in 0..<r.count(3) { m.rNested.append(.random(&r, depth: depth)) }
    for _ in 0..<r.count() { m.rInt32Unpacked.append(r.int32()) }
    for _ in 0..<r.count() { m.rSint64Unpacked.append(r.int64()) }
    switch Int.random(in: 0..<6, using: &r.rng) {
    case 0: m.oString = r.string()
    case 1: m.oInt64 = r.int64()
    case 2: m.oNested = .random(&r, depth: depth)
    case 3: m.oBytes = r.bytes()
    case 4: m.oEnum = r.color()
    default: break
    }
    for _ in 0..<r.count() { m.mInt32String[r.int32()] = r.string() }
    for _ in 0..<r.count(3) { m.mStringNested[r.string()] = .random(&r, depth: depth - 1) }
    for _ in 0..<r.count(2) { m.mBoolBytes[r.bool()] = r.bytes() }
    for _ in 0..<r.count() { m.mUint64Enum[r.uint64()] = r.color() }
    for _ in 0..<r.count() { m.mSint64Double[r.int64()] = r.double(allowNaN: allowNaN) }
    for _ in 0..<r.count() { m.mFixed32Float[r.uint32()] = r.float(allowNaN: allowNaN) }
    for _ in 0..<r.count() { m.mStringString[r.string()] = r.string() }
    if depth > 0 && r.chance(20) { m.self_p = random(&r, depth: depth - 1, allowNaN: allowNaN) }
    if r.chance(30) { m.default = r.int32() }
    if r.chance(30) { m.unknownFields_p = r.string() }
    return m
  }
}

extension Quad_Test_V1_Presence {
  /// A random message with explicit-presence fields and well-known types that have a JSON form.
  public static func random(_ r: inout RandomValues) -> Self {
    var m = Self()
    if r.chance(50) { m.oInt32 = r.chance(30) ? 0 : r.int32() }
    if r.chance(50) { m.oString = r.chance(30) ? "" : r.string() }
    if r.chance(50) { m.oDouble = r.chance(30) ? 0 : r.double(allowNaN: false) }
    if r.chance(50) { m.oEnum = r.chance(30) ? .unspecified : r.color() }
    if r.chance(50) { m.oBytes = r.bytes() }
    if r.chance(50) { m.oBool = r.bool() }
    if r.chance(50) { m.oUint64 = r.uint64() }
    if r.chance(50) {
      var t = Google_Protobuf_Timestamp()
      t.seconds = Int64.random(in: -62_135_596_800...253_402_300_799, using: &r.rng)
      t.nanos = [0, 1_000_000, 123_000, 999_999_999, Int32.random(in: 0..<1_000_000_000, using: &r.rng)][Int.random(in: 0..<5, using: &r.rng)]
      m.timestamp = t
    }
    if r.chance(50) {
      var d = Google_Protobuf_Duration()
      d.seconds = Int64.random(in: -315_576_000_000...315_576_000_000, using: &r.rng)
      d.nanos = Int32.random(in: 0..<1_000_000_000, using: &r.rng) * (d.seconds < 0 ? -1 : 1)
      m.duration = d
    }
    if r.chance(40) { m.int32Value.value = r.int32() }
    if r.chance(40) { m.int64Value.value = r.int64() }
    if r.chance(40) { m.uint32Value.value = r.uint32() }
    if r.chance(40) { m.uint64Value.value = r.uint64() }
    if r.chance(40) { m.doubleValue.value = r.double(allowNaN: false) }
    if r.chance(40) { m.floatValue.value = r.float(allowNaN: false) }
    if r.chance(40) { m.boolValue.value = r.bool() }
    if r.chance(40) { m.stringValue.value = r.string() }
    if r.chance(40) { m.bytesValue.value = r.bytes() }
    if r.chance(40) { m.struct = randomStruct(&r, depth: 2) }
    if r.chance(40) { m.value = randomValue(&r, depth: 2) }
    if r.chance(30) {
      for _ in 0..<r.count() { m.listValue.values.append(randomValue(&r, depth: 1)) }
    }
    if r.chance(30) {
      var inner = Quad_Test_V1_Everything.Nested()
      inner.a = r.int32()
      inner.b = r.string()
      m.any.typeUrl = "type.googleapis.com/quad.test.v1.Everything.Nested"
      m.any.value = inner.serializedBytes()
    }
    if r.chance(30) { m.fieldMask.paths = ["f_int32", "f_nested.child.a", "r_string"].filter { _ in r.bool() } }
    if r.chance(30) { m.empty = Google_Protobuf_Empty() }
    for _ in 0..<r.count(2) {
      var t = Google_Protobuf_Timestamp()
      t.seconds = Int64.random(in: 0...2_000_000_000, using: &r.rng)
      m.timestamps.append(t)
    }
    for _ in 0..<r.count(3) { m.values[r.string()] = randomValue(&r, depth: 1) }
    if r.chance(40) { m.everything = .random(&r, depth: 1) }
    return m
  }

  static func randomValue(_ r: inout RandomValues, depth: Int) -> Google_Protobuf_Value {
    var v = Google_Protobuf_Value()
    switch Int.random(in: 0..<(depth > 0 ? 6 : 4), using: &r.rng) {
    case 0: v.nullValue = .nullValue
    case 1: v.numberValue = Double(Int32.random(in: -1000...1000, using: &r.rng)) / 8
    case 2: v.stringValue = r.string()
    case 3: v.boolValue = r.bool()
    case 4: v.structValue = randomStruct(&r, depth: depth - 1)
    default:
      var l = Google_Protobuf_ListValue()
      for _ in 0..<r.count() { l.values.append(randomValue(&r, depth: depth - 1)) }
      v.listValue = l
    }
    return v
  }

  static func randomStruct(_ r: inout RandomValues, depth: Int) -> Google_Protobuf_Struct {
    var s = Google_Protobuf_Struct()
    for _ in 0..<r.count() { s.fields[r.string()] = randomValue(&r, depth: depth) }
    return s
  }
}

/// The types an `Any` in the test messages may hold.
public let testTypeRegistry = TypeRegistry([
  Quad_Test_V1_Everything.self, Quad_Test_V1_Everything.Nested.self, Quad_Test_V1_Presence.self,
  Google_Protobuf_Timestamp.self, Google_Protobuf_Duration.self, Google_Protobuf_Value.self,
])
