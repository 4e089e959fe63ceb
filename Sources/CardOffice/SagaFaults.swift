internal import Glibc

/// Faults a chaos test injects into the saga runner (from `QUAD_SAGA_FAULTS`): a step that
/// fails for good, and crashes (SIGKILL of the whole process) just before or just after a step's
/// outcome is recorded. Names are steps (`charge_card_fee`) or compensations
/// (`undo:charge_card_fee`). Format: `fail=NAME;crash-before-record=NAME;crash-after-record=NAME`.
package struct SagaFaults: Sendable, Hashable {
  package var failing: Set<String> = []
  package var crashBeforeRecord: Set<String> = []
  package var crashAfterRecord: Set<String> = []

  package init() {}

  /// Parses the variable's value; unknown kinds are an error, so a typo fails the run.
  package init(_ text: String) throws(FaultSpecError) {
    for entry in text.split(whereSeparator: { $0 == ";" || $0 == "," }) where !entry.isEmpty {
      let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
      guard parts.count == 2, !parts[1].isEmpty else { throw FaultSpecError(entry: String(entry)) }
      switch parts[0] {
      case "fail": failing.insert(parts[1])
      case "crash-before-record": crashBeforeRecord.insert(parts[1])
      case "crash-after-record": crashAfterRecord.insert(parts[1])
      default: throw FaultSpecError(entry: String(entry))
      }
    }
  }

  /// A fault spec entry that is not `KIND=NAME` with a known kind.
  package struct FaultSpecError: Error, CustomStringConvertible {
    let entry: String
    package var description: String { "QUAD_SAGA_FAULTS: \"\(entry)\" is not fail=, crash-before-record= or crash-after-record= with a step name" }
  }

  func crash(_ set: Set<String>, _ name: String) {
    guard set.contains(name) else { return }
    _ = kill(getpid(), SIGKILL)
  }
}
