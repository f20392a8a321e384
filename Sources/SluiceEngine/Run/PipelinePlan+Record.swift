import Crypto
import Foundation
import SluiceModel
import SluiceStorage

extension PipelinePlan {
    /// The plan as a run keeps it (`RunRecord.plan`): the steps in the order they run, each
    /// with its processor, what it runs after and why, the tables it reads and writes, the
    /// SHA-256 of its `with` as written (`with_sha256`: a step's config may hold a secret
    /// written in the file, which the run store must not keep; the hash still tells a changed
    /// step from an unchanged one), and
    /// the timeout and retry it runs with (`fallbackTimeout` when neither it nor `defaults`
    /// sets one); then the `on_failure` handlers. JSON, keys sorted.
    public func recordJSON(fallbackTimeout: Duration) -> String {
        let definition = self.definition
        func timing(_ step: StepDefinition) -> [String: PlanValue] {
            var fields: [String: PlanValue] = [
                "timeout": .string(DurationText.format(step.timeout ?? definition.defaults.timeout ?? fallbackTimeout))
            ]
            let retry = step.retry ?? definition.defaults.retry ?? .none
            fields["retry"] = .object([
                "attempts": .number(Double(retry.attempts)), "backoff": .string(retry.backoff.rawValue),
                "initial_delay": .string(DurationText.format(retry.initialDelay)),
                "max_delay": .string(DurationText.format(retry.maxDelay)), "jitter": .bool(retry.jitter),
            ])
            return fields
        }
        let steps = order.compactMap { id -> PlanValue? in
            guard let step = definition.step(id) else { return nil }
            var fields = timing(step)
            fields["id"] = .string(id)
            fields["uses"] = .string(step.uses.value)
            fields["with_sha256"] = configHash(step)
            fields["after"] = .array(
                edges.filter { $0.to == id }.map { edge in
                    let reason: String
                    switch edge.reason {
                    case .needs: reason = "needs"
                    case .table(let table): reason = "table \(table)"
                    case .output: reason = "outputs"
                    case .secret(let name): reason = "secret \(name)"
                    }
                    return .object(["step": .string(edge.from), "reason": .string(reason)])
                })
            fields["reads"] = .array((reads[id] ?? []).map(PlanValue.string))
            fields["writes"] = .array((writes[id] ?? []).map(PlanValue.string))
            return .object(fields)
        }
        let handlers = definition.onFailure.map { step -> PlanValue in
            var fields = timing(step)
            fields["id"] = .string(step.id.value)
            fields["uses"] = .string(step.uses.value)
            fields["with_sha256"] = configHash(step)
            return .object(fields)
        }
        let whole = PlanValue.object([
            "pipeline": .string(definition.id?.value ?? ""), "file": .string(definition.file),
            "layers": .array(layers.map { .array($0.map(PlanValue.string)) }), "steps": .array(steps),
            "on_failure": .array(handlers),
        ])
        func configHash(_ step: StepDefinition) -> PlanValue {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let bytes = (try? encoder.encode(step.config.map(PlanValue.init) ?? .null)) ?? Data()
            return .string(PipelineVersion.hex(SHA256.hash(data: bytes)))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding strings, numbers and nested containers of them does not fail.
        return (try? encoder.encode(whole)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

/// A JSON value of a stored plan; YAML scalars keep their YAML meaning (a plain `3` is a
/// number, a quoted `"3"` a string).
private enum PlanValue: Encodable {
    case string(String)
    case number(Double)
    case bool(Bool)
    case null
    case array([PlanValue])
    case object([String: PlanValue])

    init(_ node: YAMLNode) {
        switch node.value {
        case .scalar(let text, let quoted):
            if quoted {
                self = .string(text)
            } else if node.isNull {
                self = .null
            } else if let flag = node.bool {
                self = .bool(flag)
            } else if let number = node.double, number.isFinite {
                self = .number(number)
            } else {
                self = .string(text)
            }
        case .sequence(let items): self = .array(items.map(PlanValue.init))
        case .mapping(let pairs):
            self = .object(
                Dictionary(pairs.map { ($0.key.scalarText ?? "", PlanValue($0.value)) }, uniquingKeysWith: { first, _ in first }))
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let text): try container.encode(text)
        case .number(let number):
            // Whole numbers as integers (`3`, not `3.0`).
            if number == number.rounded(), abs(number) < 1e15 { try container.encode(Int64(number)) } else { try container.encode(number) }
        case .bool(let flag): try container.encode(flag)
        case .null: try container.encodeNil()
        case .array(let items): try container.encode(items)
        case .object(let fields): try container.encode(fields)
        }
    }
}
