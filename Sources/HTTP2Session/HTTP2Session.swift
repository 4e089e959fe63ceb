internal import CNGHTTP2

/// One HTTP/2 connection's protocol state: the only owner of an `nghttp2_session`.
///
/// nghttp2 does the framing, HPACK, SETTINGS, flow control, PING and GOAWAY. Bytes read from the
/// socket go in through ``receive(_:)``, which returns what happened as ``HTTP2Event``s; frames to
/// send come out of ``outbound()``. Callbacks only record events; nothing re-enters the caller.
///
/// Inbound flow control is manual per stream: received DATA counts against its stream's window
/// until the reader calls ``consume(streamID:count:)``, so a handler that does not read stops its
/// peer on that stream. The connection's window is given back as DATA arrives (what is held is
/// bounded by the stream windows), so one stalled stream never starves the others.
///
/// - Important: not thread-safe; one event loop (or one task) drives a session.
package final class HTTP2Session {
  /// Which end of the connection this is.
  package enum Role: Sendable { case server, client }

  /// Connection settings and limits, with the defaults gRPC servers commonly use.
  package struct Configuration: Sendable {
    /// SETTINGS_MAX_CONCURRENT_STREAMS advertised to the peer (default 100).
    package var maxConcurrentStreams: UInt32 = 100
    /// SETTINGS_INITIAL_WINDOW_SIZE for each stream (default 65,535).
    package var initialWindowSize: UInt32 = 65_535
    /// The connection's receive window (default 1 MiB): how much the peer may have in flight
    /// across all streams.
    package var connectionWindowSize: Int32 = 1 << 20
    /// SETTINGS_MAX_HEADER_LIST_SIZE (default 16 KiB); larger header blocks reset the stream.
    package var maxHeaderListSize: UInt32 = 16_384
    /// SETTINGS frames accepted per connection before it is closed (nghttp2's own bound).
    package var maxSettings: Int = 32
    /// Outbound PING/SETTINGS ACKs queued before the connection is closed.
    package var maxOutboundAcks: Int = 1_000
    /// CONTINUATION frames accepted for one header block.
    package var maxContinuations: Int = 8
    /// Streams the peer may reset in a burst, and refilled per second, before nghttp2 ends the
    /// connection (the HTTP/2 "rapid reset" bound).
    package var streamResetBurst: UInt64 = 1_000
    package var streamResetRate: UInt64 = 33

    package static let defaults = Configuration()
    package init() {}
  }

  let role: Role
  private let session: OpaquePointer
  /// Events recorded by callbacks and not yet returned.
  private var events: [HTTP2Event] = []
  /// The header block being received (HTTP/2 never interleaves blocks: a HEADERS frame's
  /// CONTINUATIONs follow it at once), with its size as SETTINGS_MAX_HEADER_LIST_SIZE counts it.
  private var blockStream: Int32 = 0
  private var blockHeaders: [HTTP2Header] = []
  private var blockSize = 0
  private let maxHeaderListSize: Int
  /// Data waiting for nghttp2 to pull it, by stream.
  private var outboundStreams: [Int32: OutboundStream] = [:]
  /// Control frames received so far, for the owner's flood limits.
  package private(set) var received = FrameCounts()

  /// Counts of received frames that cost the receiver work but carry no request data.
  package struct FrameCounts: Sendable, Hashable {
    package var pings = 0
    package var settings = 0
    package var windowUpdates = 0
    package var resets = 0
    package var priorities = 0
    /// DATA frames with no payload and no END_STREAM.
    package var emptyData = 0
    package var dataFrames = 0
    package var headers = 0
    package init() {}
  }

  /// An error thrown inside a callback, reported after nghttp2 returns.
  private var callbackError: HTTP2SessionError?

  /// A stream's unsent body (a class: appended to and drained in place, never copied).
  private final class OutboundStream {
    var buffer: [UInt8] = []
    var offset = 0
    var ended = false
    var trailers: [HTTP2Header]?
    var deferred = false
    var pending: Int { buffer.count - offset }
  }

  /// Makes a session and queues this side's SETTINGS (and, for a client, the connection preface).
  ///
  /// - Throws: ``HTTP2SessionError`` when nghttp2 cannot allocate the session.
  package init(role: Role, configuration: Configuration = .defaults) throws(HTTP2SessionError) {
    self.role = role
    self.maxHeaderListSize = Int(configuration.maxHeaderListSize)
    var callbacks: OpaquePointer?
    try Self.check(nghttp2_session_callbacks_new(&callbacks), "nghttp2_session_callbacks_new")
    defer { nghttp2_session_callbacks_del(callbacks) }
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, onBeginHeaders)
    nghttp2_session_callbacks_set_on_header_callback(callbacks, onHeader)
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, onFrameRecv)
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, onDataChunkRecv)
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, onStreamClose)

    var option: OpaquePointer?
    try Self.check(nghttp2_option_new(&option), "nghttp2_option_new")
    defer { nghttp2_option_del(option) }
    nghttp2_option_set_no_auto_window_update(option, 1)
    nghttp2_option_set_max_settings(option, configuration.maxSettings)
    nghttp2_option_set_max_outbound_ack(option, configuration.maxOutboundAcks)
    nghttp2_option_set_max_continuations(option, configuration.maxContinuations)
    nghttp2_option_set_stream_reset_rate_limit(option, configuration.streamResetBurst, configuration.streamResetRate)

    var created: OpaquePointer?
    // `self` is not complete yet, so the session's user data is set right after.
    let rv = role == .server
      ? nghttp2_session_server_new2(&created, callbacks, nil, option)
      : nghttp2_session_client_new2(&created, callbacks, nil, option)
    try Self.check(rv, "nghttp2_session_new")
    session = created!
    nghttp2_session_set_user_data(session, Unmanaged.passUnretained(self).toOpaque())

    var settings = [
      nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), value: configuration.maxConcurrentStreams),
      nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: configuration.initialWindowSize),
      nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), value: configuration.maxHeaderListSize),
    ]
    try Self.check(nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &settings, settings.count), "nghttp2_submit_settings")
    if configuration.connectionWindowSize > 65_535 {
      try Self.check(
        nghttp2_session_set_local_window_size(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, configuration.connectionWindowSize),
        "nghttp2_session_set_local_window_size")
    }
  }

  deinit {
    nghttp2_session_del(session)
  }

  static func check(_ rv: Int32, _ what: String) throws(HTTP2SessionError) {
    if rv != 0 { throw HTTP2SessionError(libraryCode: rv, operation: what) }
  }

  // MARK: Bytes in and out

  /// Feeds bytes read from the socket and returns the events they produced, in order.
  ///
  /// - Throws: ``HTTP2SessionError`` for a connection error (bad preface, flood, protocol
  ///   violation); ``outbound()`` then holds the GOAWAY to send before closing.
  package func receive(_ bytes: [UInt8]) throws(HTTP2SessionError) -> [HTTP2Event] {
    let result = bytes.withUnsafeBytes { buffer in Result { () throws(HTTP2SessionError) in try receive(buffer) } }
    return try result.get()
  }

  /// Feeds bytes read from the socket, in place (they are not kept past the call).
  package func receive(_ buffer: UnsafeRawBufferPointer) throws(HTTP2SessionError) -> [HTTP2Event] {
    let rv = nghttp2_session_mem_recv(session, buffer.baseAddress?.assumingMemoryBound(to: UInt8.self), buffer.count)
    if let callbackError {
      self.callbackError = nil
      throw callbackError
    }
    if rv < 0 {
      let code = Int32(truncatingIfNeeded: rv)
      // nghttp2 has queued a GOAWAY for most connection errors; make sure one goes out.
      if code != NGHTTP2_ERR_NOMEM.rawValue {
        _ = nghttp2_session_terminate_session(session, NGHTTP2_PROTOCOL_ERROR.rawValue)
      }
      throw HTTP2SessionError(libraryCode: code, operation: "nghttp2_session_mem_recv")
    }
    return takeEvents()
  }

  /// Events recorded since the last call, such as streams that closed while ``outbound()`` sent
  /// their last frame.
  package func takeEvents() -> [HTTP2Event] {
    defer { events.removeAll(keepingCapacity: true) }
    return events
  }

  /// Every frame nghttp2 has ready to send, serialized (empty when there is nothing).
  package func outbound() throws(HTTP2SessionError) -> [UInt8] {
    var out: [UInt8] = []
    try outbound { out.append(contentsOf: $0) }
    return out
  }

  /// Every frame nghttp2 has ready to send, handed to `body` chunk by chunk (each chunk valid
  /// only inside the call), so the caller copies once into its own buffer.
  package func outbound(_ body: (UnsafeRawBufferPointer) -> Void) throws(HTTP2SessionError) {
    while true {
      var data: UnsafePointer<UInt8>?
      let n = nghttp2_session_mem_send(session, &data)
      if n < 0 { throw HTTP2SessionError(libraryCode: Int32(truncatingIfNeeded: n), operation: "nghttp2_session_mem_send") }
      if n == 0 { break }
      body(UnsafeRawBufferPointer(start: data, count: n))
    }
  }

  /// Whether nghttp2 still expects to read (false once both sides are done or after GOAWAY).
  package var wantsRead: Bool { nghttp2_session_want_read(session) != 0 }
  /// Whether frames are waiting to be sent.
  package var wantsWrite: Bool { nghttp2_session_want_write(session) != 0 }

  // MARK: Streams

  /// Client: opens a stream with request headers; the body follows through ``send(streamID:bytes:)``.
  ///
  /// - Returns: the new stream's id.
  package func startRequest(headers: [HTTP2Header]) throws(HTTP2SessionError) -> Int32 {
    precondition(role == .client, "startRequest is for client sessions")
    var provider = Self.dataProvider()
    let id = try withNameValues(headers) { nva, count in
      nghttp2_submit_request(session, nil, nva, count, &provider, nil)
    }
    if id < 0 { throw HTTP2SessionError(libraryCode: id, operation: "nghttp2_submit_request") }
    outboundStreams[id] = OutboundStream()
    return id
  }

  /// Server: sends response headers on a stream; the body and trailers follow.
  package func startResponse(streamID: Int32, headers: [HTTP2Header]) throws(HTTP2SessionError) {
    precondition(role == .server, "startResponse is for server sessions")
    var provider = Self.dataProvider()
    outboundStreams[streamID] = OutboundStream()
    let rv = try withNameValues(headers) { nva, count in
      nghttp2_submit_response(session, streamID, nva, count, &provider)
    }
    if rv != 0 {
      outboundStreams[streamID] = nil
      throw HTTP2SessionError(libraryCode: rv, operation: "nghttp2_submit_response")
    }
  }

  /// Server: answers with a single HEADERS frame that ends the stream (gRPC's Trailers-Only).
  package func respondHeadersOnly(streamID: Int32, headers: [HTTP2Header]) throws(HTTP2SessionError) {
    let rv = try withNameValues(headers) { nva, count in
      nghttp2_submit_response(session, streamID, nva, count, nil)
    }
    if rv != 0 { throw HTTP2SessionError(libraryCode: rv, operation: "nghttp2_submit_response") }
  }

  /// Queues body bytes on a stream opened by ``startRequest(headers:)`` or ``startResponse(streamID:headers:)``.
  package func send(streamID: Int32, bytes: [UInt8]) throws(HTTP2SessionError) {
    guard let stream = outboundStreams[streamID], !stream.ended else {
      throw HTTP2SessionError(libraryCode: NGHTTP2_ERR_STREAM_CLOSED.rawValue, operation: "send on stream \(streamID)")
    }
    if stream.offset > 0 && stream.offset == stream.buffer.count {
      stream.buffer.removeAll(keepingCapacity: true)
      stream.offset = 0
    }
    stream.buffer.append(contentsOf: bytes)
    try resume(streamID)
  }

  /// Ends a stream's body, with trailers (a final HEADERS frame) or without (END_STREAM on DATA).
  package func finish(streamID: Int32, trailers: [HTTP2Header]? = nil) throws(HTTP2SessionError) {
    guard let stream = outboundStreams[streamID], !stream.ended else {
      throw HTTP2SessionError(libraryCode: NGHTTP2_ERR_STREAM_CLOSED.rawValue, operation: "finish stream \(streamID)")
    }
    stream.ended = true
    stream.trailers = trailers
    try resume(streamID)
  }

  /// Bytes queued on a stream that nghttp2 has not yet taken (flow control may hold them back).
  package func pendingOutbound(streamID: Int32) -> Int { outboundStreams[streamID]?.pending ?? 0 }

  /// Gives `count` received DATA bytes back to the stream's window (WINDOW_UPDATE); the
  /// connection's window was given back when they arrived.
  package func consume(streamID: Int32, count: Int) throws(HTTP2SessionError) {
    let rv = nghttp2_session_consume_stream(session, streamID, count)
    if rv != 0 && rv != NGHTTP2_ERR_INVALID_ARGUMENT.rawValue {
      throw HTTP2SessionError(libraryCode: rv, operation: "nghttp2_session_consume_stream")
    }
  }

  /// Resets a stream (RST_STREAM with `errorCode`, e.g. 8 for CANCEL).
  package func resetStream(streamID: Int32, errorCode: UInt32) throws(HTTP2SessionError) {
    try Self.check(nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, errorCode), "nghttp2_submit_rst_stream")
  }

  /// Server: announces a graceful shutdown (GOAWAY with the maximum stream id); a final
  /// ``goAway(errorCode:)`` follows once in-flight streams are done.
  package func shutdownNotice() throws(HTTP2SessionError) {
    try Self.check(nghttp2_submit_shutdown_notice(session), "nghttp2_submit_shutdown_notice")
  }

  /// Sends a PING; the peer's ACK arrives as ``HTTP2Event/pingAcknowledged``.
  package func ping() throws(HTTP2SessionError) {
    try Self.check(nghttp2_submit_ping(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nil), "nghttp2_submit_ping")
  }

  /// Sends GOAWAY naming the last stream this side processed.
  package func goAway(errorCode: UInt32 = 0) throws(HTTP2SessionError) {
    let last = nghttp2_session_get_last_proc_stream_id(session)
    try Self.check(nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), last, errorCode, nil, 0), "nghttp2_submit_goaway")
  }

  private func resume(_ streamID: Int32) throws(HTTP2SessionError) {
    guard outboundStreams[streamID]?.deferred == true else { return }
    outboundStreams[streamID]?.deferred = false
    let rv = nghttp2_session_resume_data(session, streamID)
    if rv != 0 && rv != NGHTTP2_ERR_INVALID_ARGUMENT.rawValue {
      throw HTTP2SessionError(libraryCode: rv, operation: "nghttp2_session_resume_data")
    }
  }

  // MARK: Name/value arrays

  /// Calls `body` with an `nghttp2_nv` array for `headers` (nghttp2 copies them during the call).
  private func withNameValues<R>(
    _ headers: [HTTP2Header],
    _ body: (UnsafePointer<nghttp2_nv>, Int) -> R
  ) throws(HTTP2SessionError) -> R {
    var storage: [UInt8] = []
    var ranges: [(Int, Int, Int, Int)] = []
    for h in headers {
      let n = storage.count
      storage.append(contentsOf: h.name.utf8)
      let v = storage.count
      storage.append(contentsOf: h.value.utf8)
      ranges.append((n, v - n, v, storage.count - v))
    }
    storage.append(0)  // never empty, so the base address exists
    return storage.withUnsafeMutableBufferPointer { buffer in
      let base = buffer.baseAddress!
      let nva = ranges.map { r in
        nghttp2_nv(name: base + r.0, value: base + r.2, namelen: r.1, valuelen: r.3, flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
      }
      return nva.withUnsafeBufferPointer { body($0.baseAddress!, $0.count) }
    }
  }

  private static func dataProvider() -> nghttp2_data_provider {
    var provider = nghttp2_data_provider()
    provider.source.ptr = nil
    provider.read_callback = readCallback
    return provider
  }

  // MARK: Callback bodies (called by the C trampolines below)

  fileprivate func beginHeaders(streamID: Int32) {
    blockStream = streamID
    blockHeaders = []
    blockHeaders.reserveCapacity(10)
    blockSize = 0
  }

  /// Records one header field; a block over the advertised SETTINGS_MAX_HEADER_LIST_SIZE resets
  /// the stream (nghttp2 only advertises the limit).
  fileprivate func header(streamID: Int32, name: UnsafePointer<UInt8>, nameLength: Int, value: UnsafePointer<UInt8>, valueLength: Int) -> Int32 {
    guard streamID == blockStream else { return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue }
    let size = blockSize + nameLength + valueLength + 32
    guard size <= maxHeaderListSize else {
      blockStream = 0
      blockHeaders = []
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue
    }
    let h = HTTP2Header(
      name: String(decoding: UnsafeBufferPointer(start: name, count: nameLength), as: UTF8.self),
      value: String(decoding: UnsafeBufferPointer(start: value, count: valueLength), as: UTF8.self))
    blockHeaders.append(h)
    blockSize = size
    return 0
  }

  fileprivate func frameReceived(type: UInt8, flags: UInt8, streamID: Int32, frame: UnsafePointer<nghttp2_frame>) {
    let endStream = flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
    switch UInt32(type) {
    case NGHTTP2_HEADERS.rawValue:
      received.headers += 1
      let headers = streamID == blockStream ? blockHeaders : []
      blockStream = 0
      blockHeaders = []
      events.append(.headers(streamID: streamID, headers: headers, endStream: endStream))
    case NGHTTP2_DATA.rawValue:
      received.dataFrames += 1
      if endStream {
        events.append(.endStream(streamID: streamID))
      } else if frame.pointee.hd.length == 0 {
        received.emptyData += 1
      }
    case NGHTTP2_PING.rawValue:
      if flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) != 0 {
        events.append(.pingAcknowledged)
      } else {
        received.pings += 1
      }
    case NGHTTP2_SETTINGS.rawValue:
      if flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0 { received.settings += 1 }
    case NGHTTP2_WINDOW_UPDATE.rawValue:
      received.windowUpdates += 1
    case NGHTTP2_PRIORITY.rawValue:
      received.priorities += 1
    case NGHTTP2_GOAWAY.rawValue:
      events.append(.goAway(lastStreamID: frame.pointee.goaway.last_stream_id, errorCode: frame.pointee.goaway.error_code))
    case NGHTTP2_RST_STREAM.rawValue:
      received.resets += 1
      events.append(.reset(streamID: streamID, errorCode: frame.pointee.rst_stream.error_code))
    default:
      break
    }
  }

  fileprivate func dataReceived(streamID: Int32, bytes: UnsafeBufferPointer<UInt8>) {
    // The connection window comes back at once; the stream's waits for its reader.
    _ = nghttp2_session_consume_connection(session, bytes.count)
    events.append(.data(streamID: streamID, bytes: Array(bytes)))
  }

  fileprivate func streamClosed(streamID: Int32, errorCode: UInt32) {
    outboundStreams[streamID] = nil
    if blockStream == streamID {
      blockStream = 0
      blockHeaders = []
    }
    events.append(.streamClosed(streamID: streamID, errorCode: errorCode))
  }

  /// nghttp2 pulls body bytes: copy what is queued, defer when nothing is, end (with or without
  /// trailers) once the stream is finished and drained.
  fileprivate func read(streamID: Int32, into buffer: UnsafeMutablePointer<UInt8>, length: Int, flags: UnsafeMutablePointer<UInt32>) -> Int {
    guard let stream = outboundStreams[streamID] else {
      return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
    }
    let n = min(length, stream.pending)
    if n > 0 {
      stream.buffer.withUnsafeBufferPointer { src in
        buffer.update(from: src.baseAddress! + stream.offset, count: n)
      }
      stream.offset += n
    }
    if stream.pending == 0 {
      if stream.ended {
        flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
        if let trailers = stream.trailers {
          flags.pointee |= NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
          let rv = (try? withNameValues(trailers) { nva, count in nghttp2_submit_trailer(session, streamID, nva, count) }) ?? -1
          if rv != 0 {
            callbackError = HTTP2SessionError(libraryCode: rv, operation: "nghttp2_submit_trailer")
          }
        }
      } else if n == 0 {
        stream.deferred = true
        return Int(NGHTTP2_ERR_DEFERRED.rawValue)
      }
      stream.buffer.removeAll(keepingCapacity: true)
      stream.offset = 0
    }
    return n
  }
}

// MARK: - C trampolines: recover the session from user_data; never throw or trap across C.

private func owner(_ userData: UnsafeMutableRawPointer?) -> HTTP2Session {
  Unmanaged<HTTP2Session>.fromOpaque(userData!).takeUnretainedValue()
}

private let onBeginHeaders: nghttp2_on_begin_headers_callback = { _, frame, userData in
  owner(userData).beginHeaders(streamID: frame!.pointee.hd.stream_id)
  return 0
}

private let onHeader: nghttp2_on_header_callback = { _, frame, name, nameLength, value, valueLength, _, userData in
  owner(userData).header(streamID: frame!.pointee.hd.stream_id, name: name!, nameLength: nameLength, value: value!, valueLength: valueLength)
}

private let onFrameRecv: nghttp2_on_frame_recv_callback = { _, frame, userData in
  let hd = frame!.pointee.hd
  owner(userData).frameReceived(type: hd.type, flags: hd.flags, streamID: hd.stream_id, frame: frame!)
  return 0
}

private let onDataChunkRecv: nghttp2_on_data_chunk_recv_callback = { _, _, streamID, data, length, userData in
  owner(userData).dataReceived(streamID: streamID, bytes: UnsafeBufferPointer(start: data, count: length))
  return 0
}

private let onStreamClose: nghttp2_on_stream_close_callback = { _, streamID, errorCode, userData in
  owner(userData).streamClosed(streamID: streamID, errorCode: errorCode)
  return 0
}

private let readCallback: nghttp2_data_source_read_callback = { _, streamID, buffer, length, flags, _, userData in
  owner(userData).read(streamID: streamID, into: buffer!, length: length, flags: flags!)
}
