package import QuadRPC
internal import GRPCWire

/// A client interceptor that sends every call of a ``GRPCClient`` through one target's
/// ``Bulkhead`` (RESOURCE_EXHAUSTED when full) and ``CircuitBreaker`` (UNAVAILABLE while
/// open, saying when it lets a call through again). UNAVAILABLE,
/// DEADLINE_EXCEEDED, INTERNAL, UNKNOWN and RESOURCE_EXHAUSTED count as the target failing;
/// other statuses are answers.
package struct ResilientCalls: ClientInterceptor {
  package let breaker: CircuitBreaker
  package let bulkhead: Bulkhead?

  package init(breaker: CircuitBreaker, bulkhead: Bulkhead? = nil) {
    self.breaker = breaker
    self.bulkhead = bulkhead
  }

  static let failures: Set<GRPCStatus.Code> = [.unavailable, .deadlineExceeded, .internal, .unknown, .resourceExhausted]

  package func intercept<Response: Sendable>(_ context: ClientContext, next: (ClientContext) async throws -> Response) async throws -> Response {
    do {
      if let bulkhead {
        return try await bulkhead.run { try await breaker.run({ try await next(context) }, isFailure: Self.isFailure) }
      }
      return try await breaker.run({ try await next(context) }, isFailure: Self.isFailure)
    } catch let open as CircuitBreaker.Open {
      throw RPCError(code: .unavailable, message: "\(open.description); retry in \(open.retryAfter)")
    } catch let full as Bulkhead.Full {
      throw RPCError(code: .resourceExhausted, message: full.description)
    }
  }

  static func isFailure(_ error: any Error) -> Bool {
    guard let e = error as? RPCError else { return true }
    return failures.contains(e.code)
  }
}
