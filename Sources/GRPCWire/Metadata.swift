/// Custom metadata of a call (request headers, response headers or trailers), in wire order.
/// Keys are lower case; keys ending in `-bin` carry bytes, the others text.
package struct Metadata: Sendable, Sequence, ExpressibleByArrayLiteral, CustomStringConvertible {
  package typealias Element = (key: String, value: MetadataValue)
  package private(set) var entries: [Element]

  package init() { entries = [] }
  package init(_ entries: [Element]) { self.entries = entries }
  package init(arrayLiteral elements: Element...) { entries = elements }

  package var isEmpty: Bool { entries.isEmpty }
  package var count: Int { entries.count }
  package func makeIterator() -> IndexingIterator<[Element]> { entries.makeIterator() }

  /// Adds a text entry (the key is lower-cased).
  package mutating func add(_ key: String, _ value: String) {
    entries.append((key.lowercased(), .text(value)))
  }

  /// Adds a binary entry; the key must end in `-bin`.
  package mutating func add(_ key: String, bytes: [UInt8]) {
    entries.append((key.lowercased(), .binary(bytes)))
  }

  /// Replaces every entry under `key` with one text entry (the key is lower-cased).
  package mutating func set(_ key: String, _ value: String) {
    let k = key.lowercased()
    entries.removeAll { $0.key == k }
    entries.append((k, .text(value)))
  }

  package mutating func append(_ entry: Element) { entries.append(entry) }
  package mutating func append(contentsOf other: Metadata) { entries += other.entries }

  /// Every value under `key`, in order.
  package func values(_ key: String) -> [MetadataValue] {
    let k = key.lowercased()
    return entries.filter { $0.key == k }.map(\.value)
  }

  /// The first text value under `key`.
  package func first(_ key: String) -> String? {
    for case let (k, .text(v)) in entries where k == key.lowercased() { return v }
    return nil
  }

  /// The first binary value under `key`.
  package func firstBytes(_ key: String) -> [UInt8]? {
    for case let (k, .binary(v)) in entries where k == key.lowercased() { return v }
    return nil
  }

  package var description: String {
    entries.map { key, value in
      switch value {
      case .text(let s): return "\(key): \(s)"
      case .binary(let b): return "\(key): \(BinaryMetadata.encode(b))"
      }
    }.joined(separator: ", ")
  }

  package static func == (a: Metadata, b: Metadata) -> Bool {
    a.entries.map(\.key) == b.entries.map(\.key) && a.entries.map(\.value) == b.entries.map(\.value)
  }
}

extension Metadata: Equatable {}
