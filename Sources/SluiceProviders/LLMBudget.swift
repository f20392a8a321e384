import Foundation
import SluiceEngine
import SluiceModel
import SluiceStorage

/// Tokens one LLM call spent, kept with its run.
struct LLMUsage: Codable, Sendable, Hashable {
    var model: String
    var tokens: Int
}

extension StepRecordKind where Record == LLMUsage {
    /// The tokens a step's LLM call spent.
    static var llmUsage: Self { Self("llm_usage") }
}

/// An org's monthly LLM token budget (`llm_budget` under `limits` in sluice.yml): what its runs
/// spent this calendar month (UTC) is the sum of their kept `llm_usage` records; a call that
/// could take that past the budget is refused before it is sent.
///
/// Two runs of one org checking at the same moment can both pass, each seeing the other's spend
/// not yet kept: the budget can then be passed by at most one call per run running at once.
struct LLMBudget {
    let step: StepContext

    init(_ step: StepContext) {
        self.step = step
    }

    /// The first instant of the month `now` is in, in UTC.
    static func monthStart(of now: Date) -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = .gmt
        return calendar.date(from: calendar.dateComponents([.year, .month], from: now)) ?? now
    }

    /// Fails with `budget_exceeded`, sending nothing, when spending up to `tokens` more could
    /// pass the org's budget. Does nothing for an org without one.
    func admit(upTo tokens: Int, now: Date = Date()) async throws {
        guard let budget = step.project?.settings.limits(for: step.org).llmBudget else { return }
        let since = Self.monthStart(of: now)
        let spent = try await step.requireRecords().orgRecords(.llmUsage, org: step.org, since: since).reduce(0) { $0 + $1.tokens }
        guard spent + tokens <= budget else {
            let month = String(since.formatted(Date.ISO8601FormatStyle(timeZone: .gmt)).prefix(7))
            throw StepFailure(
                .budgetExceeded,
                "org '\(step.org)' has spent \(spent) of its llm_budget of \(budget) tokens in \(month) (UTC); this call may spend up to \(tokens) more, so it was not sent"
            )
        }
    }

    /// Keeps what a call spent with the run, where the next check counts it.
    /// Without a run store (a step run on its own) there is nowhere to keep it, and no budget.
    func record(_ usage: LLMUsage) async throws {
        try await step.services.records?.keep([usage], as: .llmUsage)
    }
}
