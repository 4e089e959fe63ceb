internal import Postgres

/// A consumer group's state in the log's database: where it has read up to, and who reads it.
package struct ConsumerGroupLease: Sendable, Hashable {
  package let group: String
  package let holder: String
  /// The group's checkpoint when the lease was taken: the reader resumes after it.
  package let checkpoint: Int64
}

/// A consumer group's lease passed to another reader while its holder still ran (it missed its
/// renewals for longer than the lease lasts).
package struct LeaseLost: Error, CustomStringConvertible {
  package let group: String
  package var description: String { "group \(group): another reader took over the lease" }
}

extension EventStore {
  /// Takes `group`'s lease for `holder` if nobody holds it (or its holder let it expire),
  /// creating the group at `initialCheckpoint` if it is new; `nil` while another holder has it.
  package func acquireLease(group: String, holder: String, ttl: Duration, initialCheckpoint: Int64) async throws -> ConsumerGroupLease? {
    let ms = Self.milliseconds(ttl)
    return try await pool.withConnection { db in
      let rows = try await db.query("""
        INSERT INTO quad_consumer_groups AS g (group_name, checkpoint, lease_holder, lease_expires)
        VALUES (\(group), \(initialCheckpoint), \(holder), clock_timestamp() + \(ms) * interval '1 millisecond')
        ON CONFLICT (group_name) DO UPDATE
          SET lease_holder = EXCLUDED.lease_holder, lease_expires = EXCLUDED.lease_expires, updated_at = clock_timestamp()
          WHERE g.lease_holder IS NULL OR g.lease_expires < clock_timestamp() OR g.lease_holder = EXCLUDED.lease_holder
        RETURNING checkpoint
        """, named: "groups.acquire")
      guard let row = rows.first else { return nil }
      return ConsumerGroupLease(group: group, holder: holder, checkpoint: try row.decode("checkpoint"))
    }
  }

  /// Waits until `holder` holds `group` (another holder may have it now), trying every
  /// `retry`.
  package func waitForLease(group: String, holder: String, ttl: Duration, retry: Duration, initialCheckpoint: Int64) async throws -> ConsumerGroupLease {
    while true {
      if let lease = try await acquireLease(group: group, holder: holder, ttl: ttl, initialCheckpoint: initialCheckpoint) { return lease }
      try await Task.sleep(for: retry)
    }
  }

  /// Extends `holder`'s lease on `group`; `false` when it has lost it (another holder took
  /// over after it expired).
  package func renewLease(group: String, holder: String, ttl: Duration) async throws -> Bool {
    let ms = Self.milliseconds(ttl)
    return try await pool.withConnection { db in
      try await db.query("""
        UPDATE quad_consumer_groups SET lease_expires = clock_timestamp() + \(ms) * interval '1 millisecond'
        WHERE group_name = \(group) AND lease_holder = \(holder)
        """, named: "groups.renew").affectedRows == 1
    }
  }

  /// Renews `lease` every `renewal` until the task is cancelled.
  ///
  /// - Throws: ``LeaseLost`` when another holder took the group over (the lease had expired).
  package func holdLease(_ lease: ConsumerGroupLease, ttl: Duration, renewal: Duration) async throws {
    while true {
      try await Task.sleep(for: renewal)
      guard try await renewLease(group: lease.group, holder: lease.holder, ttl: ttl) else { throw LeaseLost(group: lease.group) }
    }
  }

  /// Gives up `holder`'s lease on `group` so a waiting reader takes over at once.
  package func releaseLease(group: String, holder: String) async throws {
    try await pool.withConnection { db in
      _ = try await db.query("""
        UPDATE quad_consumer_groups SET lease_holder = NULL, lease_expires = NULL
        WHERE group_name = \(group) AND lease_holder = \(holder)
        """, named: "groups.release")
    }
  }

  /// Moves `group`'s checkpoint forward to `position` (never back) and returns it.
  package func commitCheckpoint(group: String, position: Int64) async throws -> Int64 {
    try await pool.withConnection { db in
      try await db.query("""
        INSERT INTO quad_consumer_groups AS g (group_name, checkpoint) VALUES (\(group), \(position))
        ON CONFLICT (group_name) DO UPDATE SET checkpoint = GREATEST(g.checkpoint, EXCLUDED.checkpoint), updated_at = clock_timestamp()
        RETURNING checkpoint
        """, named: "groups.commit")[0].decode("checkpoint", as: Int64.self)
    }
  }

  /// `group`'s checkpoint, `nil` for a group never seen.
  package func checkpoint(group: String) async throws -> Int64? {
    try await pool.withConnection { db in
      try await db.query("SELECT checkpoint FROM quad_consumer_groups WHERE group_name = \(group)", named: "groups.checkpoint")
        .first?.decode("checkpoint", as: Int64.self)
    }
  }

  static func milliseconds(_ d: Duration) -> Int64 {
    d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
  }
}
