internal import Glibc
package import Logging

/// A swift-log handler that writes one JSON object per line to standard error: `time` (UTC,
/// milliseconds), `level`, `logger`, `message`, and the metadata as string fields, for log
/// collectors that parse lines.
package struct JSONLogHandler: LogHandler {
  package var metadata: Logger.Metadata = [:]
  package var logLevel: Logger.Level = .info
  let label: String

  package init(label: String) {
    self.label = label
  }

  package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { metadata[key] }
    set { metadata[key] = newValue }
  }

  package func log(event: LogEvent) {
    var fields = metadata
    if let more = event.metadata { fields.merge(more) { _, new in new } }
    var line = "{\"time\":\"\(Self.now())\",\"level\":\"\(event.level)\",\"logger\":" + Self.quoted(label)
      + ",\"message\":" + Self.quoted("\(event.message)")
    for (key, value) in fields.sorted(by: { $0.key < $1.key }) where !["time", "level", "logger", "message"].contains(key) {
      line += "," + Self.quoted(key) + ":" + Self.quoted("\(value)")
    }
    line += "}\n"
    // One write(2) per line, so lines from concurrent tasks never interleave.
    var bytes = Array(line.utf8)
    bytes.withUnsafeMutableBytes { buffer in
      var offset = 0
      while offset < buffer.count {
        let n = write(2, buffer.baseAddress! + offset, buffer.count - offset)
        if n <= 0 { break }
        offset += n
      }
    }
  }

  /// `s` as a JSON string literal.
  static func quoted(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
      switch u {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      case _ where u.value < 0x20 || u.value == 0x7F:
        let hex = String(u.value, radix: 16)
        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
      default: out.unicodeScalars.append(u)
      }
    }
    return out + "\""
  }

  /// Now, as RFC 3339 UTC with milliseconds.
  static func now() -> String {
    var t = timespec()
    clock_gettime(CLOCK_REALTIME, &t)
    var seconds = time_t(t.tv_sec)
    var parts = tm()
    gmtime_r(&seconds, &parts)
    func pad(_ n: Int, _ w: Int) -> String { String(repeating: "0", count: max(0, w - String(n).count)) + String(n) }
    return "\(pad(Int(parts.tm_year) + 1900, 4))-\(pad(Int(parts.tm_mon) + 1, 2))-\(pad(Int(parts.tm_mday), 2))T"
      + "\(pad(Int(parts.tm_hour), 2)):\(pad(Int(parts.tm_min), 2)):\(pad(Int(parts.tm_sec), 2)).\(pad(Int(t.tv_nsec) / 1_000_000, 3))Z"
  }
}
