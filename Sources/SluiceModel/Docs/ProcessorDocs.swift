/// The text of `sluice processors`, generated from the specs.
public enum ProcessorDocs {
    public static func list(_ registry: ProcessorRegistry) -> String {
        let width = registry.names.map(\.count).max() ?? 0
        var lines = registry.specs.map { "\($0.name.padding(toLength: width, withPad: " ", startingAt: 0))  \($0.summary)" }
        lines.append("")
        lines.append("`sluice processors NAME` shows a processor's fields, outputs and an example.")
        return lines.joined(separator: "\n") + "\n"
    }

    public static func page(_ spec: ProcessorSpec) -> String {
        var lines = [spec.name, String(repeating: "=", count: spec.name.count), "", spec.summary, "", spec.description, "", "Fields (under `with:`)"]
        lines += fieldLines(spec.fields, indent: "  ")
        if !spec.rules.isEmpty {
            lines += ["", "Rules"]
            lines += spec.rules.map { "  " + describe($0) }
        }
        if let retry = spec.defaultRetry {
            lines += ["", "Retries (when neither the step nor `defaults` sets `retry`)", "  " + describe(retry)]
        }
        lines += ["", "Outputs (read as ${{ steps.<id>.outputs.<name> }})"]
        let width = spec.outputs.map(\.name.count).max() ?? 0
        lines += spec.outputs.map { "  \($0.name.padding(toLength: width, withPad: " ", startingAt: 0))  \($0.type): \($0.description)" }
        lines += ["", "Example", ""]
        lines += spec.example.split(separator: "\n", omittingEmptySubsequences: false).map { "  \($0)" }
        return lines.joined(separator: "\n") + "\n"
    }

    static func fieldLines(_ fields: [FieldSpec], indent: String) -> [String] {
        var lines: [String] = []
        for field in fields {
            var facts = [field.type.summary]
            switch field.requirement {
            case .required: facts.append("required")
            case .optional:
                if let note = field.defaultNote { facts.append("default \(note)") }
            case .defaultValue(let value):
                facts.append("default \(value)")
                if let note = field.defaultNote { facts.append(note) }
            }
            switch field.secret {
            case .never: break
            case .allowed: facts.append("may hold secrets")
            case .required: facts.append("secret: must be ${{ secrets.* }}")
            }
            if field.destination { facts.append("destination: not from params or step outputs where the step carries a secret") }
            lines.append("\(indent)\(field.name) (\(facts.joined(separator: ", ")))")
            lines.append("\(indent)    \(field.description)")
            if let example = field.example { lines.append("\(indent)    e.g. \(example)") }
            switch field.type {
            case .object(let nested), .list(.object(let nested)):
                lines += fieldLines(nested, indent: indent + "    ")
            case .variants(let discriminator, let shapes), .list(.variants(let discriminator, let shapes)):
                for kind in shapes.keys.sorted() {
                    lines.append("\(indent)    with \(discriminator): \(kind)")
                    lines += fieldLines(shapes[kind] ?? [], indent: indent + "        ")
                }
            case .map(.object(let nested), _):
                lines += fieldLines(nested, indent: indent + "    ")
            default:
                break
            }
        }
        return lines
    }

    /// "3 attempts, exponential backoff from 1s to 30s, with jitter".
    static func describe(_ retry: RetryPolicy) -> String {
        guard retry.attempts > 1 else { return "1 attempt, no retry" }
        let delays =
            retry.backoff == .exponential
            ? "exponential backoff from \(DurationText.format(retry.initialDelay)) to \(DurationText.format(retry.maxDelay))"
            : "\(DurationText.format(retry.initialDelay)) apart"
        return "\(retry.attempts) attempts, \(delays)\(retry.jitter ? ", with jitter" : ""); only transient failures retry"
    }

    static func describe(_ rule: FieldRule) -> String {
        switch rule {
        case let .required(field, when, equals):
            return equals == ["*"]
                ? "\(field) is required when \(when) is set"
                : "\(field) is required when \(when) is \(equals.joined(separator: " or "))"
        case .exactlyOne(let names): return "exactly one of \(names.joined(separator: ", "))"
        case .atMostOne(let names): return "at most one of \(names.joined(separator: ", "))"
        case let .memberOf(field, list): return "\(field) must be one of the \(list) columns"
        }
    }
}
