import SluiceModel
import SluiceStorage

/// Turns a checked `SQLExpression` into SQL text for one statement: each column qualified by
/// the alias of the table that has it (so joins never make a name ambiguous), and each
/// `:param` replaced by a numbered placeholder whose value is bound, never spliced.
struct SQLText {
    let dialect: any SQLDialect
    /// Alias → that table's columns, in the order tables are searched (`from` first).
    let tables: [(alias: String, columns: [String])]
    let params: [String: WarehouseValue]
    /// Values for the placeholders emitted so far, in order.
    private(set) var arguments: [WarehouseValue] = []

    init(
        dialect: any SQLDialect, tables: [(alias: String, columns: [String])], params: [String: WarehouseValue],
        arguments: [WarehouseValue] = []
    ) {
        self.dialect = dialect
        self.tables = tables
        self.params = params
        self.arguments = arguments
    }

    /// `"alias"."column"` for a column of one of the tables.
    func column(_ name: String) throws(StepFailure) -> String {
        guard let table = tables.first(where: { $0.columns.contains(name) }) else {
            throw StepFailure.config("column '\(name)' is in none of the tables (\(tables.map(\.alias).joined(separator: ", ")))")
        }
        return "\(dialect.quote(table.alias)).\(dialect.quote(name))"
    }

    mutating func render(_ text: String, field: String) throws(StepFailure) -> String {
        let expression: SQLExpression
        do { expression = try SQLExpression(parsing: text) } catch {
            throw StepFailure.config("\(field): \(error.description)")
        }
        var characters = Array(text)
        // Replace from the end so earlier offsets stay valid.
        for (token, offset) in expression.tokens.reversed() {
            switch token {
            case .column(let name):
                let replacement = try column(name)
                characters.replaceSubrange(offset..<(offset + name.count), with: Array(replacement))
            case .parameter(let name):
                guard params[name] != nil else { throw StepFailure.config("\(field) uses :\(name), but the step gives no params.\(name)") }
                characters.replaceSubrange(offset..<(offset + name.count + 1), with: Array("\u{0}\(name)\u{0}"))
            default:
                break
            }
        }
        // Number the placeholders left to right.
        var result = ""
        var index = 0
        while index < characters.count {
            if characters[index] == "\u{0}" {
                var end = index + 1
                while characters[end] != "\u{0}" { end += 1 }
                let name = String(characters[(index + 1)..<end])
                arguments.append(params[name] ?? .null)
                result += dialect.placeholder(arguments.count)
                index = end + 1
            } else {
                result.append(characters[index])
                index += 1
            }
        }
        return result
    }
}

extension YAMLNode {
    /// `params:` of a step as bound values: numbers stay numbers, booleans become 1/0.
    func boundParams() -> [String: WarehouseValue] {
        var values: [String: WarehouseValue] = [:]
        for pair in self["params"]?.mapping ?? [] {
            guard let name = pair.key.scalarText else { continue }
            let node = pair.value
            if node.isNull {
                values[name] = .null
            } else if let integer = node.int, !node.isQuoted {
                values[name] = .integer(Int64(integer))
            } else if let number = node.double, !node.isQuoted {
                values[name] = .real(number)
            } else if let flag = node.bool {
                values[name] = .integer(flag ? 1 : 0)
            } else {
                values[name] = .text(node.scalarText ?? "")
            }
        }
        return values
    }
}
