import SluiceModel

/// Evaluates the `${{ }}` expressions in a step's `with` just before the step runs. The result
/// is YAML again, so processors read it with the same accessors and positions as the file:
/// an expression that yields a number becomes a plain scalar, one that yields text a quoted one.
/// It also tells which fields were made from what the run's caller chose (the context's
/// `untrusted` references), so processors can hold paths and URLs from them to the tenant's
/// confines.
public enum ConfigResolver {
    /// A step's evaluated `with`, and which of its fields read an untrusted reference.
    public struct Resolved: Sendable {
        public var config: YAMLNode
        /// Dotted field paths (`source.path`, `url`, a list item as `checks[0]`) whose template
        /// read an untrusted reference.
        public var untrustedFields: [String: UntrustedField]
    }

    /// What the run's caller chose in one field.
    public struct UntrustedField: Sendable, Hashable {
        /// The untrusted references the field's template read (`params.usage_file`).
        public var references: [String]
        /// The field's value before the first expression that reads one: the pipeline's own
        /// text. `/srv/exports/` makes a path absolute by the author's choice; with
        /// `https://api.example.com/` the caller can't choose the host.
        public var prefix: String

        public init(references: [String], prefix: String) {
            self.references = references
            self.prefix = prefix
        }
    }

    public static func resolve(_ node: YAMLNode, in context: ExpressionContext) throws(StepFailure) -> Resolved {
        var untrusted: [String: UntrustedField] = [:]
        let config = try resolve(node, in: context, path: "", untrusted: &untrusted)
        return Resolved(config: config, untrustedFields: untrusted)
    }

    private static func resolve(
        _ node: YAMLNode, in context: ExpressionContext, path: String,
        untrusted: inout [String: UntrustedField]
    ) throws(StepFailure) -> YAMLNode {
        switch node.value {
        case .scalar(let text, _):
            guard Template.containsExpression(text) else { return node }
            let template: Template
            do { template = try Template(parsing: text) } catch {
                throw .config("expression: \(error.description)", at: node.location)
            }
            let read = context.untrustedReferences(in: template)
            if !read.isEmpty { untrusted[path] = UntrustedField(references: read, prefix: trustedPrefix(of: template, in: context)) }
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
            for (index, item) in items.enumerated() {
                resolved.append(try resolve(item, in: context, path: "\(path)[\(index)]", untrusted: &untrusted))
            }
            return YAMLNode(.sequence(resolved), at: node.location)
        case .mapping(let pairs):
            var resolved: [YAMLPair] = []
            for pair in pairs {
                let key = pair.key.scalarText ?? "?"
                let child = path.isEmpty ? key : "\(path).\(key)"
                resolved.append(YAMLPair(key: pair.key, value: try resolve(pair.value, in: context, path: child, untrusted: &untrusted)))
            }
            return YAMLNode(.mapping(resolved), at: node.location)
        }
    }

    /// The evaluated text of `template` up to its first expression that reads an untrusted
    /// reference.
    private static func trustedPrefix(of template: Template, in context: ExpressionContext) -> String {
        var prefix = ""
        for part in template.parts {
            switch part {
            case .text(let text):
                prefix += text
            case .expression(let expression, _):
                if expression.references.contains(where: { context.untrusted.contains($0.path.joined(separator: ".")) }) { return prefix }
                prefix += (try? context.evaluate(expression))?.description ?? ""
            }
        }
        return prefix
    }
}
