package import GRPCWire
internal import Synchronization

/// What a handler knows about its call, and how it shapes the response's metadata and
/// compression.
package struct ServerContext: Sendable {
  /// `/package.Service/Method`.
  package var path: String
  /// The client's custom metadata, in order.
  package var metadata: Metadata
  /// When the call must be done, if the client set `grpc-timeout`; pass it on to downstream
  /// calls and queries.
  package var deadline: ContinuousClock.Instant?
  /// The client's address (`ip:port`).
  package var peer: String
  /// Whether the request message of a unary or server-streaming call arrived compressed.
  package var requestCompressed: Bool
  /// The client's certificate identity, on a mutual-TLS connection.
  package var peerIdentity: PeerIdentity?
  let response: ResponseOptions

  package init(
    path: String, metadata: Metadata = [], deadline: ContinuousClock.Instant? = nil, peer: String = "",
    requestCompressed: Bool = false, peerIdentity: PeerIdentity? = nil
  ) {
    self.peerIdentity = peerIdentity
    self.path = path
    self.metadata = metadata
    self.deadline = deadline
    self.peer = peer
    self.requestCompressed = requestCompressed
    self.response = ResponseOptions()
  }

  /// Adds metadata to the response headers; effective until the first response message is sent.
  package func addInitialMetadata(_ metadata: Metadata) {
    response.state.withLock { $0.initial.append(contentsOf: metadata) }
  }

  /// Adds metadata to the trailers that end the call.
  package func addTrailingMetadata(_ metadata: Metadata) {
    response.state.withLock { $0.trailing.append(contentsOf: metadata) }
  }

  /// Compresses response messages with gzip when the client accepts it (otherwise identity).
  /// Decided per message: it applies to messages written after the call.
  package func setCompression(_ enabled: Bool) {
    response.state.withLock { $0.compress = enabled }
  }
}

/// The response metadata and compression a handler chose, read on the event loop when the
/// headers and trailers go out.
final class ResponseOptions: Sendable {
  struct State {
    var initial: Metadata = []
    var trailing: Metadata = []
    var compress = false
  }
  let state = Mutex(State())
}
