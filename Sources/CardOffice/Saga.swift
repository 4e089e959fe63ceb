package import CampusContracts
internal import QuadProtobuf

package typealias Saga = Campus_Cards_V1_Saga
typealias CardOfficeEvent = QuadEvents_campus_cards_v1_cards_proto

/// The card issue's steps, in order, and what a saga does next given what its log says.
enum SagaPlan {
  static let reserve = "reserve_card_number"
  static let charge = "charge_card_fee"
  static let activate = "activate_card"
  static let steps = [reserve, charge, activate]
  /// The steps that are undone when a later one fails (activation is the last step: nothing
  /// after it can fail).
  static let compensable: Set<String> = [reserve, charge]

  enum Action: Equatable {
    case perform(String)
    case compensate(String)
    case complete
    case finishCompensation
    case none
  }

  static func next(_ saga: Saga) -> Action {
    switch saga.state {
    case .running:
      if let step = saga.steps.first(where: { $0.outcome == .pending }) { return .perform(step.name) }
      return .complete
    case .compensating:
      if let step = saga.steps.last(where: { $0.outcome == .done && compensable.contains($0.name) }) { return .compensate(step.name) }
      return .finishCompensation
    default:
      return .none
    }
  }
}

extension Saga {
  /// A saga as its start event describes it: every step pending.
  init(started e: Campus_Cards_V1_CardIssueStarted) {
    self.init()
    sagaId = e.sagaId
    studentId = e.studentId
    feeCents = e.feeCents
    state = .running
    steps = SagaPlan.steps.map { name in
      var s = Campus_Cards_V1_SagaStep()
      s.name = name
      s.outcome = .pending
      return s
    }
  }

  /// The saga after `event` (one of its own stream's), recorded at `micros` as `version`.
  mutating func apply(_ event: CardOfficeEvent, version: Int64, atMicroseconds micros: Int64) {
    func mark(_ name: String, _ outcome: Campus_Cards_V1_StepOutcome, _ detail: String?) {
      guard let i = steps.firstIndex(where: { $0.name == name }) else { return }
      steps[i].outcome = outcome
      if let detail { steps[i].detail = detail }
      steps[i].at = Google_Protobuf_Timestamp(microseconds: micros)
    }
    switch event {
    case .cardIssueStarted(let e):
      self = Saga(started: e)
    case .cardIssueStepDone(let e):
      mark(e.step, .done, e.detail)
      if e.step == SagaPlan.reserve { cardId = e.detail }
    case .cardIssueStepFailed(let e):
      mark(e.step, .failed, e.reason)
      for i in steps.indices where steps[i].outcome == .pending { steps[i].outcome = .skipped }
      state = .compensating
    case .cardIssueStepCompensated(let e):
      mark(e.step, .compensated, nil)
    case .cardIssueCompleted:
      state = .completed
    case .cardIssueCompensated:
      state = .compensated
    case .cardNumberReserved, .cardNumberReleased:
      break
    }
    self.version = version
  }
}
