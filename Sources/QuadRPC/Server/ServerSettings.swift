internal import HTTP2Session

/// How a server treats its connections: message and header limits, keepalive, idleness, age,
/// graceful shutdown, and the bounds past which a client counts as abusive.
package struct ServerSettings: Sendable {
  /// Largest request message accepted, after decompression (RESOURCE_EXHAUSTED above it).
  package var maximumMessageLength = 4 * 1024 * 1024
  /// Largest response message a handler may send (RESOURCE_EXHAUSTED above it).
  package var maximumSendMessageLength = 4 * 1024 * 1024
  /// SETTINGS_MAX_CONCURRENT_STREAMS: calls one connection may have open at once.
  package var maxConcurrentStreams: UInt32 = 100
  /// SETTINGS_MAX_HEADER_LIST_SIZE: larger request heads are refused.
  package var maxHeaderListSize: UInt32 = 16 * 1024
  /// Bytes of request messages one connection may hold before their handlers take them, across
  /// its streams; the stream that goes past it ends with RESOURCE_EXHAUSTED.
  package var connectionBufferBudget = 64 * 1024 * 1024
  /// PING a connection after this long without a frame from the client, and close it when the
  /// ACK does not come within ``keepaliveTimeout``.
  package var keepaliveInterval: Duration? = .seconds(7200)
  package var keepaliveTimeout: Duration = .seconds(20)
  /// Shut a connection down gracefully after this long without calls.
  package var maxIdle: Duration?
  /// Shut a connection down gracefully after this age (±10 % jitter, so clients do not all
  /// reconnect at once), and close it ``maxConnectionAgeGrace`` later.
  package var maxConnectionAge: Duration?
  package var maxConnectionAgeGrace: Duration = .seconds(30)
  /// Control frames a client may send per second; past any of them the connection gets GOAWAY
  /// (ENHANCE_YOUR_CALM) and is closed.
  package var floodLimits = FloodLimits()

  /// Run handlers on their connection's event loop (no thread hop per call; handlers must not
  /// block, which Quad's database layer never does on a loop), or on Swift's global pool.
  package var handlersOnEventLoop = true

  package init() {}

  var sessionConfiguration: HTTP2Session.Configuration {
    var c = HTTP2Session.Configuration()
    c.maxConcurrentStreams = maxConcurrentStreams
    c.maxHeaderListSize = maxHeaderListSize
    return c
  }
}

/// Per-second allowances for frames that cost the server work but carry no calls. (New streams
/// need none: SETTINGS_MAX_CONCURRENT_STREAMS and nghttp2's reset-rate limit bound them.)
package struct FloodLimits: Sendable, Hashable {
  /// PINGs beyond the HEADERS and DATA frames of the same second (so BDP probes that ride with
  /// traffic never count, as in gRPC's "pings without data").
  package var pings = 100
  package var settings = 100
  package var windowUpdates = 10_000
  package var emptyData = 100
  package var priorities = 1_000
  package init() {}

  /// The first allowance the counts (over one second) exceed, by name.
  func exceeded(by c: HTTP2Session.FrameCounts) -> String? {
    if c.pings - c.headers - c.dataFrames > pings { return "PING flood (\(c.pings)/s)" }
    if c.settings > settings { return "SETTINGS flood (\(c.settings)/s)" }
    if c.windowUpdates > windowUpdates { return "WINDOW_UPDATE flood (\(c.windowUpdates)/s)" }
    if c.emptyData > emptyData { return "empty DATA flood (\(c.emptyData)/s)" }
    if c.priorities > priorities { return "PRIORITY flood (\(c.priorities)/s)" }
    return nil
  }
}
