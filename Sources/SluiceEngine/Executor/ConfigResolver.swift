import SluiceModel

/// Evaluates the `${{ }}` expressions in a step's `with` just before the step runs. The result
/// is YAML again, so processors read it with the same accessors and positions as the file:
/// an expression that yields a number becomes a plain scalar, one that yields text a quoted one.
public enum ConfigResolver {
    public static func resolve(_ node: YAMLNode, in context: ExpressionContext) throws(StepFailure) -> YAMLNode {
        switch node.value {
        case .scalar(let text, _):
            guard Template.containsExpression(text) else { return node }
            let template: Template
            do { template = try Template(parsing: text) } catch {
                throw .config("expression: \(error.description)", at: node.location)
            }
            let value: ExpressionValue
            do { value = try template.evaluate(in: context) } catch {
                throw .config(error.description, at: node.location)
            }
            switch value {
            case .string(let result): return YAMLNode(.scalar(result, quoted: true), at: node.location)
            case .null: return YAMLNode(.scalar("", quoted: false), at: node.location)
            case .number, .bool: return YAMLNode(.scalar(value.description, quoted: false), at: node.location)
            }
        case .sequence(let items):
            var resolved: [YAMLNode] = []
            for item in items { resolved.append(try resolve(item, in: context)) }
            return YAMLNode(.sequence(resolved), at: node.location)
        case .mapping(let pairs):
            var resolved: [YAMLPair] = []
            for pair in pairs { resolved.append(YAMLPair(key: pair.key, value: try resolve(pair.value, in: context))) }
            return YAMLNode(.mapping(resolved), at: node.location)
        }
    }
}
