internal import ArgumentParser
internal import Logging
internal import Observability

/// How a long-running `quad` command logs: `--log-level` checked, and the process's handler
/// (JSON lines or text, on standard error) at that level.
enum LogSetup {
  static func validate(level: String) throws {
    guard Logger.Level(rawValue: level) != nil else {
      throw ValidationError("--log-level must be trace, debug, info, notice, warning, error or critical")
    }
  }

  static func bootstrap(level: String, json: Bool = true) {
    let level = Logger.Level(rawValue: level) ?? .info
    LoggingSystem.bootstrap { label in
      var handler: any LogHandler = json ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
      handler.logLevel = level
      return handler
    }
  }
}
