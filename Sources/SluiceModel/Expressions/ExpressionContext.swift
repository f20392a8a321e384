import Foundation

/// The values `${{ }}` expressions read at run time. The executor fills it as the run goes:
/// params first, then each step's outputs and the secrets it put into the vault.
public struct ExpressionContext: Sendable {
    public var params: [String: ExpressionValue]
    public var run: [String: ExpressionValue]
    public var env: [String: String]
    public var stepOutputs: [String: [String: ExpressionValue]]
    public var secrets: [String: String]
    /// The references whose value the run's caller chose (`params.usage_file` given through
    /// the API or a webhook payload, `run.request_id` from its `X-Request-Id`): a field whose
    /// template reads one of them may not widen what the run reaches (invariant 10).
    public var untrusted: Set<String>

    public init(
        params: [String: ExpressionValue] = [:], run: [String: ExpressionValue] = [:],
        env: [String: String] = [:], stepOutputs: [String: [String: ExpressionValue]] = [:],
        secrets: [String: String] = [:], untrusted: Set<String> = []
    ) {
        self.params = params
        self.run = run
        self.env = env
        self.stepOutputs = stepOutputs
        self.secrets = secrets
        self.untrusted = untrusted
    }

    /// The untrusted references `template` reads, in order of appearance, each once.
    public func untrustedReferences(in template: Template) -> [String] {
        var found: [String] = []
        for reference in template.references {
            let name = reference.path.joined(separator: ".")
            if untrusted.contains(name), !found.contains(name) { found.append(name) }
        }
        return found
    }

    public struct EvaluationError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// The functions expressions may call, with their arity, for lint and docs.
    public static let functions: [String: (arity: ClosedRange<Int>, summary: String)] = [
        "lower": (1...1, "lower(text): text in lower case"),
        "upper": (1...1, "upper(text): text in upper case"),
        "trim": (1...1, "trim(text): text without leading and trailing white space"),
        "date_add": (2...2, "date_add(date, duration): a YYYY-MM-DD date moved by a duration in days (`-1d`, `7d`)"),
    ]

    public func evaluate(_ expression: Expression) throws(EvaluationError) -> ExpressionValue {
        switch expression {
        case .literal(let value):
            return value
        case .reference(let path, _):
            return try resolve(path)
        case .not(let inner):
            return .bool(!(try evaluate(inner).isTruthy))
        case .binary(let op, let left, let right):
            switch op {
            case .or:
                let value = try evaluate(left)
                return value.isTruthy ? value : try evaluate(right)
            case .and:
                let value = try evaluate(left)
                return value.isTruthy ? try evaluate(right) : value
            case .equal:
                return .bool(try evaluate(left) == evaluate(right))
            case .notEqual:
                return .bool(try evaluate(left) != evaluate(right))
            }
        case .call(let function, let arguments, _):
            var values: [ExpressionValue] = []
            for argument in arguments { values.append(try evaluate(argument)) }
            return try call(function, values)
        }
    }

    private func resolve(_ path: [String]) throws(EvaluationError) -> ExpressionValue {
        let name = path.joined(separator: ".")
        func missing() -> EvaluationError { EvaluationError(description: "\(shown(name)) has no value in this run") }
        switch path.first {
        case "params" where path.count == 2:
            guard let value = params[path[1]] else { throw missing() }
            return value
        case "run" where path.count == 2:
            guard let value = run[path[1]] else { throw missing() }
            return value
        case "env" where path.count == 2:
            return env[path[1]].map(ExpressionValue.string) ?? .null
        case "steps" where path.count == 4 && path[2] == "outputs":
            guard let value = stepOutputs[path[1]]?[path[3]] else { throw missing() }
            return value
        case "secrets" where path.count == 2:
            guard let value = secrets[path[1]] else {
                throw EvaluationError(description: "secret \(shown(path[1])) is not in the vault (never decrypted, or cleared)")
            }
            return .string(value)
        default:
            throw EvaluationError(description: "\(shown(name)) is not something an expression can read")
        }
    }

    private func call(_ function: String, _ values: [ExpressionValue]) throws(EvaluationError) -> ExpressionValue {
        guard let signature = Self.functions[function] else {
            throw EvaluationError(description: "unknown function \(shown(function))")
        }
        guard signature.arity.contains(values.count) else {
            throw EvaluationError(description: "\(function) takes \(signature.arity.lowerBound) argument(s), got \(values.count)")
        }
        switch function {
        case "lower": return .string(values[0].description.lowercased())
        case "upper": return .string(values[0].description.uppercased())
        case "trim": return .string(values[0].description.trimmingCharacters(in: .whitespacesAndNewlines))
        default: return try dateAdd(values[0].description, values[1].description)
        }
    }

    private func dateAdd(_ date: String, _ amount: String) throws(EvaluationError) -> ExpressionValue {
        guard let day = CalendarDate(parsing: date) else {
            throw EvaluationError(description: "date_add: \(shown(date)) is not a YYYY-MM-DD date")
        }
        let negative = amount.hasPrefix("-")
        let magnitude = negative ? String(amount.dropFirst()) : amount
        guard let duration = try? DurationText.parse(magnitude), duration.components.seconds % 86_400 == 0,
            duration.components.attoseconds == 0
        else {
            throw EvaluationError(description: "date_add: \(shown(amount)) is not a whole number of days like 1d or -7d")
        }
        let days = Int(duration.components.seconds / 86_400)
        return .string(day.adding(days: negative ? -days : days).description)
    }
}
