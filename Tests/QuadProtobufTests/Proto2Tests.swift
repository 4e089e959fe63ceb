internal import QuadProtobuf
internal import TestMessages
internal import Testing

@Suite("proto2: presence, defaults, closed enums, groups")
struct Proto2Tests {
  @Test("Declared defaults are read when unset; presence is tracked")
  func defaults() {
    var m = QTLegacy()
    #expect(m.count == 42)
    #expect(m.name == "quad \"quoted\"\n")
    #expect(m.size == .large)
    #expect(m.ratio == -.infinity)
    #expect(m.blob == [1, 2, 255])
    #expect(m.flag == true)
    #expect(m.inner.f == 1.5)
    #expect(!m.hasCount)
    m.count = 0
    #expect(m.hasCount)
    #expect(m.serializedBytes() == [0x08, 0x00])  // set to zero: still written
    m.clearCount()
    #expect(m.count == 42)
  }

  @Test("Unknown numbers of a closed enum go to unknown fields, singular, repeated and packed")
  func closedEnum() throws {
    let bytes: [UInt8] = [0x18, 0x09] + [0x40, 0x01, 0x40, 0x07] + [0x52, 0x02, 0x02, 0x08]
    let m = try QTLegacy(serializedBytes: bytes)
    #expect(!m.hasSize)
    #expect(m.sizes == [.small])
    #expect(m.packedSizes == [.large])
    #expect(m.unknownFields.bytes == [0x18, 0x09, 0x40, 0x07, 0x50, 0x08])
  }

  @Test("Groups decode and re-encode, singular and repeated")
  func groups() throws {
    var m = QTLegacy()
    m.id = 1
    m.item.value = 5
    m.item.label = "g"
    var e = QTLegacy.Entry()
    e.key = 9
    m.entry = [e, e]
    let bytes = m.serializedBytes()
    #expect(bytes.contains(0x5B))  // start group 11
    #expect(bytes.contains(0x5C))  // end group 11
    #expect(try QTLegacy(serializedBytes: bytes) == m)
  }

  @Test("Extensions are preserved as unknown fields")
  func extensionsPreserved() throws {
    // note (100): tag 100<<3|2 = 802 = [0xA2, 0x06]
    let bytes: [UInt8] = [0x38, 0x01, 0xA2, 0x06, 0x02, 0x68, 0x69]
    let m = try QTLegacy(serializedBytes: bytes)
    #expect(m.serializedBytes() == bytes)
  }

  @Test("swift_prefix names types; nested types nest")
  func naming() {
    #expect(QTLegacy.protoMessageName == "quad.test.v1.Legacy")
    #expect(QTLegacy.Inner.protoMessageName == "quad.test.v1.Legacy.Inner")
    #expect(QTSize.allCases == [.small, .large, .huge])
  }
}

@Suite("proto2 extensions")
struct ExtensionTests {
  @Test("A typed extension reads, writes and clears through the unknown fields")
  func typedExtension() throws {
    var m = QTLegacy()
    m.id = 1
    #expect(!m.hasExtension(QTExtensions_note))
    m.setExtensionValue(QTExtensions_note, "hi")
    #expect(try m.extensionValue(QTExtensions_note) == "hi")
    let bytes = m.serializedBytes()
    #expect(bytes == [0x38, 0x01, 0xA2, 0x06, 0x02, 0x68, 0x69])
    var back = try QTLegacy(serializedBytes: bytes)
    #expect(try back.extensionValue(QTExtensions_note) == "hi")
    back.setExtensionValue(QTExtensions_note, "again")  // replaces, never duplicates
    #expect(try back.extensionValues(QTExtensions_note) == ["again"])
    back.clearExtension(QTExtensions_note)
    #expect(back.unknownFields.isEmpty)
  }

  @Test("Custom options on descriptor.proto's options messages")
  func customOption() throws {
    let option = QuadProtobuf.Extension<Google_Protobuf_MessageOptions, QuadProtobuf.ProtoMessage<Quad_Test_V1_Everything.Nested>>(
      fieldNumber: 50000, fullName: "quad.test.v1.event")
    var options = Google_Protobuf_MessageOptions()
    var value = Quad_Test_V1_Everything.Nested()
    value.b = "student.registered"
    options.setExtensionValue(option, value)
    let parsed = try Google_Protobuf_MessageOptions(serializedBytes: options.serializedBytes())
    #expect(try parsed.extensionValue(option)?.b == "student.registered")
  }
}
