import Foundation
import SluiceEngine
import SluiceModel
import SluiceStorage
import Synchronization

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
/// Within one process, calls that are under way hold the most they can spend against their
/// org's budget until what they spent is kept, so parallel steps and runs of one process can't
/// pass it together. Processes don't see each other's holds: two runs of one org in two
/// processes checking at the same moment can both pass, so the budget can be passed by at most
/// one call per process running at once.
struct LLMBudget {
    let step: StepContext

    /// Tokens held by calls under way, per org, in this process.
    private static let held = Mutex<[String: Int]>([:])

    /// A hold on the budget, let go once the call's spend is kept (or it failed without cost).
    struct Hold: Sendable {
        let org: String
        let tokens: Int

        func release() {
            guard tokens > 0 else { return }
            LLMBudget.held.withLock { $0[org, default: 0] -= tokens }
        }
    }

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
    func admit(upTo tokens: Int, now: Date = Date()) async throws -> Hold {
        guard let budget = step.project?.settings.limits(for: step.org).llmBudget else { return Hold(org: step.org, tokens: 0) }
        let since = Self.monthStart(of: now)
        let spent = try await step.requireRecords().orgRecords(.llmUsage, org: step.org, since: since).reduce(0) { $0 + $1.tokens }
        let org = step.org
        // Kept spend is read before the hold is taken; a call that keeps its spend lets its hold
        // go only after, so a spend is never missed (at worst counted twice for a moment).
        let heldByOthers = Self.held.withLock { held -> Int? in
            let others = held[org, default: 0]
            guard spent + others + tokens <= budget else { return others }
            held[org, default: 0] += tokens
            return nil
        }
        if let others = heldByOthers {
            let month = String(since.formatted(Date.ISO8601FormatStyle(timeZone: .gmt)).prefix(7))
            let underWay = others > 0 ? ", and calls under way may spend up to \(others) more" : ""
            throw StepFailure(
                .budgetExceeded,
                "org '\(org)' has spent \(spent) of its llm_budget of \(budget) tokens in \(month) (UTC)\(underWay); this call may spend up to \(tokens) more, so it was not sent"
            )
        }
        return Hold(org: org, tokens: tokens)
    }

    /// Keeps what a call spent with the run, where the next check counts it.
    /// Without a run store (a step run on its own) there is nowhere to keep it, and no budget.
    func record(_ usage: LLMUsage) async throws {
        try await step.services.records?.keep([usage], as: .llmUsage)
    }
}
