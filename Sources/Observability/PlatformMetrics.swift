package import CoreMetrics
package import EventRelay
internal import EventStore
internal import Postgres

/// Gauges of the event platform, sampled every `interval`: the log's head, how far the relay
/// is behind it and how long its fence has been stalled, each consumer group's checkpoint and
/// lag (what an autoscaler scales consumers on), and the PostgreSQL pool's use.
package struct PlatformMetrics: Sendable {
  let relay: EventRelay
  let interval: Duration
  /// The most consumer groups reported (groups are named by clients).
  static let maximumGroups = 200

  package init(relay: EventRelay, interval: Duration = .seconds(5)) {
    self.relay = relay
    self.interval = interval
  }

  /// Samples until the task is cancelled; a failed sample (the database away) is skipped.
  package func run() async {
    while !Task.isCancelled {
      try? await sample()
      try? await Task.sleep(for: interval)
    }
  }

  package func sample() async throws {
    let store = relay.store
    let pool = store.pool.counts
    Gauge(label: "quad_db_pool_connections", dimensions: [("state", "open")]).record(pool.open)
    Gauge(label: "quad_db_pool_connections", dimensions: [("state", "leased")]).record(pool.leased)
    Gauge(label: "quad_db_pool_waiting").record(pool.waiting)
    let stats = relay.stats
    Gauge(label: "quad_relay_position").record(stats.through)
    Gauge(label: "quad_relay_stalls").record(stats.stalls)
    let stalled = stats.stalledSince.map { ContinuousClock.now - $0 } ?? .zero
    Gauge(label: "quad_relay_stalled_seconds").record(Double(stalled.components.seconds) + Double(stalled.components.attoseconds) / 1e18)
    Gauge(label: "quad_relay_notifies", dimensions: [("direction", "sent")]).record(stats.notifiesSent)
    Gauge(label: "quad_relay_notifies", dimensions: [("direction", "received")]).record(stats.notifiesReceived)
    Gauge(label: "quad_relay_waiting_subscribers").record(stats.waiting)
    let head = try await store.head()
    Gauge(label: "quad_event_log_head").record(head)
    Gauge(label: "quad_relay_lag_events").record(max(0, head - stats.through))
    let groups = try await store.pool.withConnection { db in
      try await db.query(
        "SELECT group_name, checkpoint FROM quad_consumer_groups ORDER BY group_name LIMIT \(Int64(Self.maximumGroups))",
        named: "metrics.groups"
      ).map { (try $0.decode("group_name", as: String.self), try $0.decode("checkpoint", as: Int64.self)) }
    }
    for (group, checkpoint) in groups {
      Gauge(label: "quad_consumer_group_checkpoint", dimensions: [("group", group)]).record(checkpoint)
      Gauge(label: "quad_consumer_group_lag_events", dimensions: [("group", group)]).record(max(0, head - checkpoint))
      // In-process consumers again, by a name a Kubernetes label selector can match (no ':').
      if group.hasPrefix("consumer:") {
        Gauge(label: "quad_consumer_lag_events", dimensions: [("consumer", String(group.dropFirst("consumer:".count)))]).record(max(0, head - checkpoint))
      }
    }
  }
}
