internal import Authentication
internal import Logging
package import QuadRPC

/// The audit trail of personal data: one `quad.audit` log line per call that returned someone's
/// personal data (a student record, a history, where they were), with the caller's identity,
/// the method and whose data it was.
package enum AuditLog {
  static let logger = Logger(label: "quad.audit")

  /// Records that the current call returned the personal data of `subjects` (at most 100 named;
  /// the count is always given).
  package static func personalDataRead(_ context: ServerContext, subjects: [String]) {
    guard !subjects.isEmpty else { return }
    let identity = Principal.current?.description ?? "anonymous"
    logger.notice("personal data read", metadata: [
      "identity": "\(identity)", "method": "\(context.path)", "peer": "\(context.peer)",
      "subjects": "\(subjects.prefix(100).joined(separator: ","))", "subject_count": "\(subjects.count)",
    ])
  }
}
