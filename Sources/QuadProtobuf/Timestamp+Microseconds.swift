/// Microsecond instants (what PostgreSQL's timestamptz holds) as Timestamps and back.
extension Google_Protobuf_Timestamp {
  /// The instant `microseconds` after the Unix epoch.
  public init(microseconds: Int64) {
    self.init()
    let (s, us) = microseconds.quotientAndRemainder(dividingBy: 1_000_000)
    seconds = us < 0 ? s - 1 : s
    nanos = Int32((us < 0 ? us + 1_000_000 : us) * 1000)
  }

  /// Microseconds since the Unix epoch; nil outside the range the Timestamp type allows.
  public var microseconds: Int64? {
    guard (-62_135_596_800...253_402_300_799).contains(seconds), (0..<1_000_000_000).contains(nanos) else { return nil }
    return seconds * 1_000_000 + Int64(nanos / 1000)
  }
}
