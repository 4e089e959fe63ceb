internal import Foundation
@testable internal import Gzip
internal import Glibc
internal import Testing

@Suite("gzip")
struct GzipTests {
  @Test("Round trips: empty, small, large, incompressible")
  func roundTrips() throws {
    var rng = SystemRandomNumberGenerator()
    for input: [UInt8] in [[], [1], Array("hello gzip".utf8), Array(repeating: 42, count: 1_000_000),
                           (0..<100_000).map { _ in UInt8.random(in: 0...255, using: &rng) }] {
      let z = Gzip.compress(input)
      #expect(z.prefix(2) == [0x1F, 0x8B])
      #expect(try Gzip.decompress(z, limit: input.count) == input)
    }
  }

  @Test("Limit boundaries: size - 1 fails, size and size + 1 pass", arguments: [(9_999, false), (10_000, true), (10_001, true)])
  func limit(_ limit: Int, _ ok: Bool) throws {
    let z = Gzip.compress(Array(repeating: 1, count: 10_000))
    if ok {
      #expect(try Gzip.decompress(z, limit: limit).count == 10_000)
    } else {
      #expect(throws: Gzip.Error(kind: .limitExceeded(limit: limit))) { try Gzip.decompress(z, limit: limit) }
    }
  }

  @Test("A zip bomb (64 MiB of zeros in under 128 KiB) stops at the 4 MiB limit")
  func zipBomb() throws {
    let z = Gzip.compress([UInt8](repeating: 0, count: 64 * 1024 * 1024), level: 9)
    #expect(z.count < 128 * 1024)
    #expect(throws: Gzip.Error(kind: .limitExceeded(limit: 4 * 1024 * 1024))) {
      try Gzip.decompress(z, limit: 4 * 1024 * 1024)
    }
  }

  @Test("Corrupt and truncated input are errors")
  func corrupt() {
    let z = Gzip.compress(Array("hello hello hello".utf8))
    #expect(throws: Gzip.Error(kind: .truncated)) { try Gzip.decompress(Array(z.prefix(z.count / 2)), limit: 1_000) }
    #expect { try Gzip.decompress([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], limit: 1_000) } throws: {
      if case .corrupt = ($0 as? Gzip.Error)?.kind { return true } else { return false }
    }
    var flipped = z
    flipped[z.count - 5] ^= 0xFF  // the CRC/length trailer
    #expect(throws: Gzip.Error.self) { try Gzip.decompress(flipped, limit: 1_000) }
  }

  @Test("Interoperates with Python's gzip both ways")
  func python() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quad-gzip-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let text = Array(String(repeating: "campus gzip interop ", count: 500).utf8)
    try Data(Gzip.compress(text)).write(to: dir.appendingPathComponent("swift.gz"))
    try """
      import gzip, sys
      d = sys.argv[1]
      data = gzip.decompress(open(d + '/swift.gz', 'rb').read())
      open(d + '/python.gz', 'wb').write(gzip.compress(data))
      """.write(to: dir.appendingPathComponent("peer.py"), atomically: true, encoding: .utf8)
    // system(3), not Foundation's Process (which can leave the child unreaped and wait forever);
    // this package's ASan build has no TestSupport.
    let status = system("python3 '\(dir.path)/peer.py' '\(dir.path)'")
    #expect(status == 0)
    let fromPython = [UInt8](try Data(contentsOf: dir.appendingPathComponent("python.gz")))
    #expect(try Gzip.decompress(fromPython, limit: text.count) == text)
  }
}
