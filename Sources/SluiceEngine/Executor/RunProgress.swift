import Foundation
import SluiceModel
import SluiceStorage

/// What the executor tells an observer as a run goes: every stored transition, and a step's
/// outputs when it succeeds.
public struct RunEvent: Sendable {
    public var transition: Transition
    public var outputs: [String: ExpressionValue]?

    public init(transition: Transition, outputs: [String: ExpressionValue]? = nil) {
        self.transition = transition
        self.outputs = outputs
    }
}

/// The live view of a run that `sluice run` redraws on a terminal: one line per step with
/// its state, attempt, time so far and, once done, its rows per second.
public struct RunProgress: Sendable {
    public struct Step: Sendable {
        public var id: String
        public var processor: String
        public var state: RunState = .pending
        public var attempt = 0
        public var startedAt: Date?
        public var finishedAt: Date?
        public var rows: Double?
        public var note = ""
    }

    public private(set) var steps: [Step]
    public private(set) var runState: RunState = .pending

    public init(_ plan: PipelinePlan) {
        steps = plan.order.compactMap { id in plan.definition.step(id).map { Step(id: id, processor: $0.uses.value) } }
    }

    public mutating func apply(_ event: RunEvent) {
        let transition = event.transition
        guard let id = transition.stepID else {
            runState = transition.state
            return
        }
        guard let index = steps.firstIndex(where: { $0.id == id }) else { return }
        var step = steps[index]
        step.state = transition.state
        step.attempt = max(step.attempt, transition.attempt)
        if transition.state == .running, step.startedAt == nil { step.startedAt = transition.at }
        if transition.state.isFinal { step.finishedAt = transition.at }
        if let outputs = event.outputs {
            for name in ["rows_written", "rows_inserted", "rows_affected"] {
                if case .number(let value) = outputs[name] {
                    step.rows =
                        value
                        + (name == "rows_inserted" ? (outputs["rows_updated"].flatMap { if case .number(let n) = $0 { n } else { nil } } ?? 0) : 0)
                    break
                }
            }
        }
        step.note = transition.state == .succeeded || transition.state == .running ? "" : transition.reason
        steps[index] = step
    }

    /// The lines to draw at `now`.
    public func render(now: Date = Date()) -> [String] {
        let idWidth = steps.map(\.id.count).max() ?? 0
        let processorWidth = steps.map(\.processor.count).max() ?? 0
        return steps.map { step in
            let mark: String
            switch step.state {
            case .succeeded: mark = "✓"
            case .running: mark = "›"
            case .retrying, .timedOut: mark = "↻"
            case .failed, .deadLettered: mark = "✗"
            case .skipped, .cancelled: mark = "–"
            case .pending: mark = " "
            }
            var elapsed = ""
            if let start = step.startedAt {
                elapsed = String(format: "%6.1fs", (step.finishedAt ?? now).timeIntervalSince(start))
            }
            var rate = ""
            if let rows = step.rows, let start = step.startedAt, let end = step.finishedAt, end > start {
                rate = String(format: "  %.0f rows, %.0f rows/s", rows, rows / end.timeIntervalSince(start))
            }
            let attempt = step.attempt > 1 ? " (attempt \(step.attempt))" : ""
            let note = step.note.isEmpty ? "" : "  \(step.note.prefix(80))"
            return "\(mark) \(step.id.padding(toLength: idWidth, withPad: " ", startingAt: 0))  "
                + "\(step.processor.padding(toLength: processorWidth, withPad: " ", startingAt: 0))  "
                + "\(step.state.rawValue.padding(toLength: 13, withPad: " ", startingAt: 0))\(elapsed)\(rate)\(attempt)\(note)"
        }
    }
}
