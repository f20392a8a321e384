/// The names a `${{ }}` expression may read in one pipeline, for lint: the declared params,
/// the run fields, the steps and their processors' outputs, and the secrets some step decrypts.
public struct ReferenceScope: Sendable {
    public var params: Set<String>
    /// Params' literal defaults, for messages that suggest a replacement.
    public var paramDefaults: [String: String] = [:]
    public var stepOutputs: [String: [String]]
    public var secrets: Set<String>
    /// Steps whose processor is unknown: any output name is accepted for them.
    public var stepsWithUnknownOutputs: Set<String> = []
    /// Param defaults may read only `run.*` and `env.*`: params and steps don't exist yet.
    public var allowsParamsStepsAndSecrets: Bool = true
    /// `on_failure` handlers may also read why the run failed (`run.failed_step`, …).
    public var allowsFailureFields: Bool = false

    public init(params: Set<String> = [], stepOutputs: [String: [String]] = [:], secrets: Set<String> = []) {
        self.params = params
        self.stepOutputs = stepOutputs
        self.secrets = secrets
    }

    public enum Resolution: Equatable {
        case ok
        case secret(String)
        case step(String)
        case problem(String)
    }

    /// Why a reference's value is not the pipeline author's or the operator's to choose, or
    /// nil when it is (`env.*`, the run's own fields, secrets). A field that decides where a
    /// step sends its secrets must not read such a value.
    public static func untrustedSource(of path: [String]) -> String? {
        switch (path.first, path.count > 1 ? path[1] : nil) {
        case ("params", _): return "a param: whoever starts a run sets it, with an API token or a webhook payload"
        case ("steps", _): return "a step output: the data that step read can shape it"
        case ("run", "request_id"): return "the caller of the API chooses it in X-Request-Id"
        case ("run", "error"): return "it can quote the data or the answer that failed"
        default: return nil
        }
    }

    /// Checks one reference path.
    public func resolve(_ path: [String]) -> Resolution {
        let name = path.joined(separator: ".")
        let roots = ["params", "run", "env", "steps", "secrets"]
        guard let root = path.first else { return .problem("empty reference") }
        if !allowsParamsStepsAndSecrets, ["params", "steps", "secrets"].contains(root) {
            return .problem("\(shown(name)): a param default may read only run.* and env.*")
        }
        switch root {
        case "params":
            guard path.count == 2 else { return .problem("\(shown(name)): write params.<name>") }
            guard params.contains(path[1]) else {
                return .problem("unknown param \(shown(path[1]))\(Suggestion.hint(for: path[1], in: params))")
            }
            return .ok
        case "run":
            let failureFields = PipelineFormat.failureRunFields.map(\.name)
            if path.count == 2, failureFields.contains(path[1]), !allowsFailureFields {
                return .problem("\(shown(name)) is set only in on_failure handlers, where the run has failed")
            }
            let fields = PipelineFormat.runFields.map(\.name) + (allowsFailureFields ? failureFields : [])
            guard path.count == 2, fields.contains(path[1]) else {
                let field = path.dropFirst().joined(separator: ".")
                return .problem(
                    "run has no field \(shown(field))\(Suggestion.hint(for: field, in: fields)) (run fields: \(fields.joined(separator: ", ")))")
            }
            return .ok
        case "env":
            guard path.count == 2, Identifier.isValid(path[1]) else {
                return .problem("\(shown(name)): write env.<VARIABLE_NAME>")
            }
            return .ok
        case "steps":
            guard path.count == 4, path[2] == "outputs" else {
                return .problem("\(shown(name)): write steps.<id>.outputs.<name>")
            }
            guard let outputs = stepOutputs[path[1]] else {
                return .problem("unknown step \(shown(path[1]))\(Suggestion.hint(for: path[1], in: stepOutputs.keys))")
            }
            guard outputs.contains(path[3]) || stepsWithUnknownOutputs.contains(path[1]) else {
                let list = outputs.isEmpty ? "none" : outputs.joined(separator: ", ")
                return .problem(
                    "step \(shown(path[1])) has no output \(shown(path[3]))\(Suggestion.hint(for: path[3], in: outputs)) (its outputs: \(list))")
            }
            return .step(path[1])
        case "secrets":
            guard path.count == 2 else { return .problem("\(shown(name)): write secrets.<name>") }
            guard secrets.contains(path[1]) else {
                let hint = Suggestion.hint(for: path[1], in: secrets)
                return .problem("no step decrypts secret \(shown(path[1]))\(hint); add a kms_decrypt step with `as: \(path[1])`")
            }
            return .secret(path[1])
        default:
            return .problem("unknown name \(shown(root))\(Suggestion.hint(for: root, in: roots)); expressions read \(roots.joined(separator: ", "))")
        }
    }
}
