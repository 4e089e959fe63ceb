package import EventStore

/// A subscriber the relay hands each published batch to, on the subscriber's lane (its
/// connection's event loop), instead of waking the subscriber's task to read it: one run per
/// lane serves every live subscriber on it. See ``EventRelay/join(_:at:)``.
package protocol LiveSubscriber: AnyObject, Sendable {
  /// Subscribers with the same lane get a batch in one ``onLane(_:)`` run.
  var laneID: ObjectIdentifier { get }
  /// Runs `work` on the lane, after what is queued there: one at a time, in order.
  func onLane(_ work: @escaping @Sendable () -> Void)
  /// On the lane: the batch the relay published after `from`, up to `through` (every committed
  /// event in between, in position order). False: the subscriber leaves the live set.
  func deliver(_ events: [StoredEvent], from: Int64, through: Int64) -> Bool
  /// On the lane: the relay stopped and no longer holds the subscriber.
  func relayStopped()
}
