internal import HTTP2Session
internal import NIOCore
internal import Synchronization

/// A server connection's life past its calls: keepalive PINGs, idle and age limits, graceful
/// shutdown, and closing clients that flood it with control frames.
struct Lifecycle {
  var lastFrameAt = NIODeadline.now()
  var lastCallEndedAt = NIODeadline.now()
  var keepalive: Scheduled<Void>?
  var pingTimeout: Scheduled<Void>?
  var idleTimer: Scheduled<Void>?
  var ageTimer: Scheduled<Void>?
  var closeTimer: Scheduled<Void>?
  var finalGoAwayTimer: Scheduled<Void>?
  var shuttingDown = false
  var floodWindowStart = NIODeadline.now()
  var floodBaseline = HTTP2Session.FrameCounts()

  mutating func cancelTimers() {
    keepalive?.cancel()
    pingTimeout?.cancel()
    idleTimer?.cancel()
    ageTimer?.cancel()
    closeTimer?.cancel()
    finalGoAwayTimer?.cancel()
  }
}

extension ServerConnectionHandler {
  func startLifecycle() {
    guard let loop = context?.eventLoop else { return }
    let now = NIODeadline.now()
    lifecycle.lastFrameAt = now
    lifecycle.lastCallEndedAt = now
    lifecycle.floodWindowStart = now
    if let interval = settings.keepaliveInterval {
      scheduleKeepalive(after: TimeAmount(interval))
    }
    if let idle = settings.maxIdle {
      scheduleIdleCheck(after: TimeAmount(idle))
    }
    if let age = settings.maxConnectionAge {
      let jittered = Double(age.saturatingNanoseconds) * Double.random(in: 0.9...1.1)
      lifecycle.ageTimer = loop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(jittered))) { [self] in
        beginShutdown()
        let grace = TimeAmount(settings.maxConnectionAgeGrace)
        lifecycle.closeTimer = context?.eventLoop.assumeIsolated().scheduleTask(in: grace) { [self] in
          context?.close(promise: nil)
        }
      }
    }
  }

  func stopLifecycle() {
    lifecycle.cancelTimers()
  }

  // MARK: Keepalive

  /// Checks for silence every quarter interval.
  private func scheduleKeepalive(after delay: TimeAmount) {
    lifecycle.keepalive = context?.eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in
      keepaliveTick()
      if let interval = settings.keepaliveInterval {
        scheduleKeepalive(after: .nanoseconds(max(interval.saturatingNanoseconds / 4, 1_000_000)))
      }
    }
  }

  private func keepaliveTick() {
    guard let interval = settings.keepaliveInterval, lifecycle.pingTimeout == nil else { return }
    guard NIODeadline.now() - lifecycle.lastFrameAt >= TimeAmount(interval) else { return }
    try? session.ping()
    io.flush()
    lifecycle.pingTimeout = context?.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(settings.keepaliveTimeout)) { [self] in
      stats.keepaliveTimeouts.add(1, ordering: .relaxed)
      context?.close(promise: nil)
    }
  }

  func pingAcknowledged() {
    lifecycle.pingTimeout?.cancel()
    lifecycle.pingTimeout = nil
  }

  // MARK: Idleness

  private func scheduleIdleCheck(after delay: TimeAmount) {
    lifecycle.idleTimer = context?.eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in
      guard let idle = settings.maxIdle else { return }
      let limit = TimeAmount(idle)
      let since = NIODeadline.now() - lifecycle.lastCallEndedAt
      if !hasCalls && since >= limit {
        beginShutdown()
      } else {
        scheduleIdleCheck(after: hasCalls ? limit : limit - since)
      }
    }
  }

  /// The last call ended.
  func becameIdle() {
    lifecycle.lastCallEndedAt = .now()
  }

  // MARK: Graceful shutdown

  /// GOAWAY with the highest stream id (no new calls, please), then, a round trip later, the
  /// final GOAWAY naming the last stream taken; the connection closes when those calls are done.
  func beginShutdown() {
    guard !lifecycle.shuttingDown, context != nil else { return }
    lifecycle.shuttingDown = true
    try? session.shutdownNotice()
    try? session.ping()
    io.flush()
    lifecycle.finalGoAwayTimer = context?.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(200)) { [self] in
      try? session.goAway(errorCode: 0)
      io.flush()
    }
  }

  // MARK: Floods

  /// After each read: the frames this second against the allowances; past one, GOAWAY
  /// (ENHANCE_YOUR_CALM) and close.
  func framesReceived() {
    let now = NIODeadline.now()
    lifecycle.lastFrameAt = now
    let counts = session.received
    var window = counts
    window.pings -= lifecycle.floodBaseline.pings
    window.settings -= lifecycle.floodBaseline.settings
    window.windowUpdates -= lifecycle.floodBaseline.windowUpdates
    window.emptyData -= lifecycle.floodBaseline.emptyData
    window.priorities -= lifecycle.floodBaseline.priorities
    window.headers -= lifecycle.floodBaseline.headers
    window.dataFrames -= lifecycle.floodBaseline.dataFrames
    if let why = settings.floodLimits.exceeded(by: window) {
      stats.connectionsClosedForAbuse.add(1, ordering: .relaxed)
      closeForAbuse(why)
      return
    }
    if now - lifecycle.floodWindowStart >= .seconds(1) {
      lifecycle.floodWindowStart = now
      lifecycle.floodBaseline = counts
    }
  }

  private func closeForAbuse(_ why: String) {
    try? session.goAway(errorCode: 11)  // ENHANCE_YOUR_CALM
    io.flush()
    context?.close(promise: nil)
  }
}
