internal import CLibPQ
internal import Glibc
internal import NIOConcurrencyHelpers
internal import NIOPosix

/// A `NOTIFY` the connection received on a channel it listens on.
package struct PostgresNotification: Sendable, Hashable {
  package let channel: String
  package let payload: String
  /// The backend that sent it (`pg_backend_pid()` of the notifier).
  package let senderPID: Int32
}

extension PostgresConnection {
  /// Notifications that arrived on the channels this connection `LISTEN`s on, waiting up to
  /// `timeout` for the first (an empty answer when none came).
  ///
  /// Meant for a connection that does nothing else: it holds the connection for the wait.
  ///
  /// - Throws: ``PostgresError`` `.connectionLost` when the server went away.
  package func notifications(waitingUpTo timeout: Duration) async throws -> [PostgresNotification] {
    let milliseconds = Int32(clamping: timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
    return try await withConnectionBlocking { connection throws(PostgresError) in
      var found = try Self.drain(connection)
      guard found.isEmpty else { return found }
      var descriptor = pollfd(fd: PQsocket(connection), events: Int16(POLLIN), revents: 0)
      guard descriptor.fd >= 0 else { throw PostgresError(.connectionLost, "the connection has no socket", queryName: "listen") }
      _ = poll(&descriptor, 1, milliseconds)
      found = try Self.drain(connection)
      return found
    }
  }

  /// Reads what the socket holds and takes every queued notification.
  private static func drain(_ connection: OpaquePointer) throws(PostgresError) -> [PostgresNotification] {
    guard PQconsumeInput(connection) == 1 else {
      let why = PQerrorMessage(connection).map { String(cString: $0).trimmingTrailingNewlines() } ?? "connection lost"
      throw PostgresError(.connectionLost, why, queryName: "listen")
    }
    var found: [PostgresNotification] = []
    while let n = PQnotifies(connection) {
      found.append(PostgresNotification(
        channel: String(cString: n.pointee.relname), payload: String(cString: n.pointee.extra), senderPID: n.pointee.be_pid))
      PQfreemem(n)
    }
    return found
  }
}
