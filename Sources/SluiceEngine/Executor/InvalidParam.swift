import SluiceModel

/// A run's param that does not check against the pipeline's declaration: which param, and
/// what is wrong with it. How a caller gives a param depends on who is asking (`sluice run
/// --param`, an API body, a webhook's payload mapping), so each front end words that part
/// (`message(howToGive:)`); the executor, failing a run with it, says it as `sluice run` takes it.
public struct InvalidParam: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Problem: Sendable, Hashable {
        /// Given, but the pipeline declares no param of that name; `closest` is a declared one
        /// it may be a typo of.
        case undeclared(closest: String?)
        /// Declared without a default, and not given.
        case missing
        /// Not given, and its default could not be evaluated: why.
        case defaultFailed(String)
        /// Its value does not fit the param's type, pattern or allowed values: how.
        case invalidValue(String)
    }

    public var name: String
    public var problem: Problem
    /// Where in the pipeline file the problem is, when it is there (a default).
    public var location: SourceLocation?

    public init(name: String, problem: Problem, at location: SourceLocation? = nil) {
        self.name = name
        self.problem = problem
        self.location = location
    }

    /// How `sluice run` gives the param `name`.
    public static func commandLineHint(_ name: String) -> String { "give it with --param \(name)=…" }

    /// The problem for a person; `howToGive` tells a missing param's caller how to give it.
    public func message(howToGive: (String) -> String = InvalidParam.commandLineHint) -> String {
        switch problem {
        case .undeclared(let closest): "the pipeline has no param '\(name)'\(Suggestion.hint(for: name, in: closest.map { [$0] } ?? []))"
        case .missing: "param '\(name)' is required; \(howToGive(name))"
        case .defaultFailed(let why): "param '\(name)': its default can't be evaluated: \(why)"
        case .invalidValue(let why): "param '\(name)': \(why)"
        }
    }

    /// The failure of a run whose params don't check (`invalid_params`), in `sluice run`'s words.
    public var stepFailure: StepFailure { StepFailure(.invalidParams, message(), at: location) }

    public var description: String { stepFailure.description }
}
