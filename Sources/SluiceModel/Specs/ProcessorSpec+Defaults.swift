import Foundation

/// A step's `with` with every default its spec declares filled in, so run code reads each field
/// without restating its default: the spec is the one place a default is written. Defaults are
/// filled inside objects, the chosen variant of a `variants` field (an ingest `source`) and
/// each object of a list (`validate_data`'s checks), at the place of the object they join.
extension ProcessorSpec {
    public func withDefaults(_ config: YAMLNode) -> YAMLNode {
        Self.filled(config, fields: fields)
    }

    private static func filled(_ node: YAMLNode, fields: [FieldSpec]) -> YAMLNode {
        guard case .mapping(var pairs) = node.value else { return node }
        for (index, pair) in pairs.enumerated() {
            guard let name = pair.key.scalarText, let field = fields.first(where: { $0.name == name }) else { continue }
            pairs[index] = YAMLPair(key: pair.key, value: filled(pair.value, type: field.type))
        }
        for field in fields {
            guard case .defaultValue(let text) = field.requirement else { continue }
            // A field left out, or given as null (an expression that came out empty), takes the default.
            if let index = pairs.firstIndex(where: { $0.key.scalarText == field.name }) {
                guard pairs[index].value.isNull else { continue }
                pairs[index] = YAMLPair(key: pairs[index].key, value: defaultNode(text, type: field.type, at: pairs[index].value.location))
            } else {
                pairs.append(
                    YAMLPair(
                        key: YAMLNode(.scalar(field.name, quoted: false), at: node.location),
                        value: defaultNode(text, type: field.type, at: node.location)))
            }
        }
        return YAMLNode(.mapping(pairs), at: node.location)
    }

    /// A default as the value it stands for: a scalar, or for a list the YAML it is written as
    /// (`[200]`), placed where the field would be.
    private static func defaultNode(_ text: String, type: FieldType, at location: SourceLocation) -> YAMLNode {
        switch type {
        case .integer, .number, .boolean:
            return YAMLNode(.scalar(text, quoted: false), at: location)
        case .list:
            guard case .success(let parsed?) = YAMLLoader().load(Data(text.utf8), file: location.file) else { fallthrough }
            return relocated(parsed, to: location)
        default:
            return YAMLNode(.scalar(text, quoted: true), at: location)
        }
    }

    private static func relocated(_ node: YAMLNode, to location: SourceLocation) -> YAMLNode {
        switch node.value {
        case .sequence(let items): return YAMLNode(.sequence(items.map { relocated($0, to: location) }), at: location)
        case .mapping(let pairs):
            return YAMLNode(
                .mapping(pairs.map { YAMLPair(key: relocated($0.key, to: location), value: relocated($0.value, to: location)) }),
                at: location)
        case .scalar: return YAMLNode(node.value, at: location)
        }
    }

    private static func filled(_ node: YAMLNode, type: FieldType) -> YAMLNode {
        switch type {
        case .object(let fields):
            return filled(node, fields: fields)
        case .variants(let discriminator, let shapes):
            guard let kind = node[discriminator]?.scalarText, let fields = shapes[kind] else { return node }
            return filled(node, fields: fields)
        case .list(let item):
            guard case .sequence(let items) = node.value else { return filled(node, type: item) }
            return YAMLNode(.sequence(items.map { filled($0, type: item) }), at: node.location)
        default:
            return node
        }
    }
}
