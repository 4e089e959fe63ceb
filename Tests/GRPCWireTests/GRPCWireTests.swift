@testable internal import GRPCWire
internal import Testing

@Suite("Length-prefixed messages")
struct MessageFramingTests {
  @Test("Frames decode whatever the chunking, including one byte at a time")
  func chunking() throws {
    let messages: [[UInt8]] = [[], [1], Array(repeating: 7, count: 70_000), [1, 2, 3]]
    var wire: [UInt8] = []
    for (i, m) in messages.enumerated() { MessageFraming.appendFrame(m, compressed: i == 3, to: &wire) }
    for chunk in [1, 3, 5, 4096, wire.count] {
      var d = MessageDeframer()
      var got: [FramedMessage] = []
      var i = 0
      while i < wire.count {
        d.append(Array(wire[i..<min(i + chunk, wire.count)]))
        i += chunk
        while let m = try d.next() { got.append(m) }
      }
      try d.finish()
      #expect(got.map(\.bytes) == messages, "chunk \(chunk)")
      #expect(got.map(\.compressed) == [false, false, false, true])
    }
  }

  @Test("Receive limit: limit - 1 and limit pass, limit + 1 fails before its bytes are buffered",
        arguments: [(99, true), (100, true), (101, false)])
  func limit(_ length: Int, _ accepted: Bool) throws {
    var d = MessageDeframer(maximumMessageLength: 100)
    let frame = MessageFraming.frame(Array(repeating: 1, count: length))
    d.append(Array(frame.prefix(5)))  // the prefix alone decides
    if accepted {
      #expect(try d.next() == nil)
      d.append(Array(frame.dropFirst(5)))
      #expect(try d.next()?.bytes.count == length)
    } else {
      #expect(throws: FramingError(kind: .messageTooLarge(limit: 100, actual: 101))) { try d.next() }
    }
  }

  @Test("A 4 GiB length claim is refused at once")
  func hugeClaim() {
    var d = MessageDeframer()
    d.append([0, 0xFF, 0xFF, 0xFF, 0xFF])
    #expect(throws: FramingError(kind: .messageTooLarge(limit: 4 * 1024 * 1024, actual: 0xFFFF_FFFF))) { try d.next() }
    #expect(FramingError(kind: .messageTooLarge(limit: 4, actual: 5)).description == "received message larger than max (5 vs. 4)")
  }

  @Test("An invalid compressed flag and a truncated final message are errors")
  func malformed() throws {
    var d = MessageDeframer()
    d.append([2, 0, 0, 0, 0])
    #expect(throws: FramingError(kind: .invalidCompressedFlag(2))) { try d.next() }
    var t = MessageDeframer()
    t.append([0, 0, 0, 0, 4, 1, 2])
    #expect(try t.next() == nil)
    #expect(throws: FramingError(kind: .truncated(missing: 2))) { try t.finish() }
    var p = MessageDeframer()
    p.append([0, 0])
    #expect(throws: FramingError(kind: .truncated(missing: 3))) { try p.finish() }
  }
}

@Suite("grpc-timeout")
struct TimeoutTests {
  @Test("Parsing", arguments: [
    ("1H", Int64(3_600_000_000_000)), ("2M", 120_000_000_000), ("3S", 3_000_000_000), ("100m", 100_000_000),
    ("5u", 5_000), ("7n", 7), ("99999999H", Int64.max), ("0m", 0),
  ] as [(String, Int64)])
  func parse(_ value: String, _ ns: Int64) {
    #expect(GRPCTimeout.parse(value) == ns)
  }

  @Test("Malformed values", arguments: ["", "m", "1", "123456789m", "1x", "-1S", "1.5S", " 1S"])
  func malformed(_ value: String) {
    #expect(GRPCTimeout.parse(value) == nil)
  }

  @Test("Encoding picks the finest unit within 8 digits and never shortens the deadline")
  func encode() {
    #expect(GRPCTimeout.encode(nanoseconds: 5) == "5n")
    #expect(GRPCTimeout.encode(nanoseconds: 99_999_999) == "99999999n")
    #expect(GRPCTimeout.encode(nanoseconds: 100_000_000) == "100000u")
    #expect(GRPCTimeout.encode(nanoseconds: 100_000_001) == "100001u")
    #expect(GRPCTimeout.encode(nanoseconds: 3_600_000_000_000_000) == "3600000S")
    #expect(GRPCTimeout.encode(nanoseconds: 360_000_000_000_000_000) == "6000000M")
    for ns: Int64 in [1, 999, 1_234_567_891, 86_400_000_000_000] {
      #expect(GRPCTimeout.parse(GRPCTimeout.encode(nanoseconds: ns))! >= ns)
    }
  }
}

@Suite("grpc-message, -bin metadata, content-type")
struct MetadataEncodingTests {
  @Test("Percent-encoding: printable ASCII stays, everything else and % are escaped; decoding is lenient")
  func percent() {
    #expect(PercentEncoding.encode("ok 100%") == "ok 100%25")
    #expect(PercentEncoding.encode("\t\n日") == "%09%0A%E6%97%A5")
    let special = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n"
    #expect(PercentEncoding.decode(PercentEncoding.encode(special)) == special)
    #expect(PercentEncoding.decode("a%2") == "a%2")
    #expect(PercentEncoding.decode("%zz%41") == "%zzA")
  }

  @Test("Binary values: emitted unpadded, accepted padded or not")
  func binary() {
    #expect(BinaryMetadata.encode([0xAB, 0xAB, 0xAB]) == "q6ur")
    #expect(BinaryMetadata.encode([0xFF]) == "/w")
    #expect(BinaryMetadata.decode("/w") == [0xFF])
    #expect(BinaryMetadata.decode("/w==") == [0xFF])
    #expect(BinaryMetadata.decode("!!") == nil)
    #expect(BinaryMetadata.decode("a") == nil)
    #expect(BinaryMetadata.isBinaryKey("x-trace-bin"))
  }

  @Test("Content types", arguments: [
    ("application/grpc", true), ("application/grpc+proto", true), ("application/grpc+json", true),
    ("application/grpc; charset=utf-8", true), ("APPLICATION/GRPC", true), ("application/json", false),
    ("application/grpcx", false), ("text/plain", false),
  ])
  func contentType(_ value: String, _ ok: Bool) {
    #expect(GRPCContentType.isGRPC(value) == ok)
  }
}
