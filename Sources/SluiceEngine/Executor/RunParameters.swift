import Foundation
import SluiceModel
import SluiceSecrets
import SluiceStorage

/// The expression context a run starts with: `run.*`, `env.*` and the params, each param
/// taken from the run's request, else its default (which may read `run.*` and `env.*`), checked
/// against its type, pattern and allowed values.
///
/// Params given by the caller of an API trigger or a webhook (and `run.request_id`, which such
/// a caller sends) are marked untrusted in the context; defaults, `sluice run --param`, the
/// scheduler and backfill are the operator's. No key material is in `env.*`, whoever starts
/// the run.
public enum RunParameters {
    /// `origin` is the trigger of the run a chain of resumes started from (a resumed run is
    /// as trusted as that run); by default the run's own. A param that does not check fails
    /// the run (`invalid_params`).
    public static func context(
        for definition: PipelineDefinition, run: RunRecord, env: [String: String],
        origin: RunTrigger? = nil
    ) throws(StepFailure) -> ExpressionContext {
        do {
            return try check(for: definition, run: run, env: env, origin: origin)
        } catch {
            throw error.stepFailure
        }
    }

    /// The context, or the first param that does not check, as a value: what the run starter
    /// refuses a run for before creating it.
    public static func check(
        for definition: PipelineDefinition, run: RunRecord, env: [String: String],
        origin: RunTrigger? = nil
    ) throws(InvalidParam) -> ExpressionContext {
        var context = ExpressionContext(env: visibleEnvironment(env))
        if (origin ?? run.trigger).passesCallerValues {
            context.untrusted = Set(run.params.keys.map { "params.\($0)" })
            if run.requestID != nil { context.untrusted.insert("run.request_id") }
        }
        context.run = [
            "id": .string(run.id),
            "logical_date": .string(run.logicalDate),
            "logical_time": .string("\(run.logicalDate)T00:00:00Z"),
            "pipeline": .string(run.pipeline),
            "org": .string(run.org),
            "trigger": .string(run.trigger.rawValue),
            "request_id": run.requestID.map(ExpressionValue.string) ?? .null,
            "attempt": .number(1),
        ]
        let declared = Set(definition.params.map(\.name.value))
        if let unknown = run.params.keys.sorted().first(where: { !declared.contains($0) }) {
            throw InvalidParam(name: unknown, problem: .undeclared(closest: Suggestion.closest(to: unknown, in: declared)))
        }
        for param in definition.params {
            let name = param.name.value
            var text: String
            if let given = run.params[name] {
                text = given
            } else if let defaultNode = param.defaultValue, let defaultText = defaultNode.scalarText {
                text = defaultText
                if Template.containsExpression(defaultText) {
                    do {
                        text = try Template(parsing: defaultText).evaluate(in: context).description
                    } catch {
                        throw InvalidParam(name: name, problem: .defaultFailed("\(error)"), at: defaultNode.location)
                    }
                }
            } else if param.required {
                throw InvalidParam(name: name, problem: .missing)
            } else {
                context.params[name] = .null
                continue
            }
            if let problem = ParamValue.problem(text: text, node: nil, type: param.type) {
                throw InvalidParam(name: name, problem: .invalidValue(problem))
            }
            if let pattern = param.pattern, let regex = try? ParamValue.wholeValueExpression(pattern), !regex.matches(text) {
                throw InvalidParam(name: name, problem: .invalidValue("\(shown(text)) does not match its pattern \(pattern)"))
            }
            if let allowed = param.allowedValues, !allowed.contains(where: { $0.scalarText == text }) {
                throw InvalidParam(
                    name: name, problem: .invalidValue("'\(text)' is not one of \(allowed.compactMap(\.scalarText).joined(separator: ", "))"))
            }
            switch param.type {
            case .integer, .number: context.params[name] = .number(Double(text) ?? 0)
            case .boolean: context.params[name] = .bool(text == "true")
            case .string, .date, .duration: context.params[name] = .string(text)
            }
        }
        return context
    }

    /// `env` without key material: the keyring path, the passphrase and its salt (every
    /// `SLUICE_KEY…` variable). Runs read `env.*` into fields, URLs and notifications; none of
    /// them may carry what opens the org's credentials.
    public static func visibleEnvironment(_ env: [String: String]) -> [String: String] {
        env.filter { name, _ in !KeySource.Variable.all.contains(name) && !name.hasPrefix("SLUICE_KEY") }
    }
}
