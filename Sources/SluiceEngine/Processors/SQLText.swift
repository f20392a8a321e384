import SluiceModel
import SluiceStorage

/// Turns a checked `SQLExpression` (through its tree, `renderTyped`) into SQL text for one
/// statement: each column qualified by
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

/// What an expression computes, as far as choosing its arithmetic and its column type needs.
enum ValueKind: Sendable, Equatable {
    case integer, float, decimal, text, bool, unknown

    init(_ type: ColumnType) {
        switch type {
        case .int64: self = .integer
        case .bool: self = .bool
        case .float64: self = .float
        case .numeric, .bigNumeric: self = .decimal
        default: self = .text
        }
    }

    /// The kind of arithmetic on two operands: a double anywhere makes it floating point (as
    /// in PostgreSQL and BigQuery); else a decimal makes it exact; integers stay integers.
    static func arithmetic(_ left: ValueKind, _ right: ValueKind) -> ValueKind {
        if left == .float || right == .float { return .float }
        if left == .decimal || right == .decimal { return .decimal }
        if left == .integer && right == .integer { return .integer }
        return .unknown
    }

    /// The column type a result of this kind is published as.
    var columnType: ColumnType {
        switch self {
        case .integer: .int64
        case .float: .float64
        case .decimal: .numeric
        case .bool: .bool
        case .text, .unknown: .string
        }
    }
}

extension SQLText {
    /// Renders a measure or a filter through its tree, typed by the columns' types, so that
    /// decimal operations are written the warehouse's exact way (`SQLDialect.decimal…`).
    /// Returns the SQL and what it computes.
    mutating func renderTyped(_ text: String, field: String, types: [String: ColumnType]) throws(StepFailure) -> (sql: String, kind: ValueKind) {
        let tree: SQLNode
        do { tree = try SQLExpression(parsing: text).tree() } catch {
            throw StepFailure.config("\(field): \(error.description)")
        }
        return try render(tree, field: field, types: types)
    }

    private mutating func render(_ node: SQLNode, field: String, types: [String: ColumnType]) throws(StepFailure) -> (sql: String, kind: ValueKind) {
        switch node {
        case .column(let name):
            return (try column(name), types[name].map(ValueKind.init) ?? .unknown)
        case .literal(let literal):
            if literal.hasPrefix("'") { return (literal, .text) }
            if literal.allSatisfy(\.isNumber) { return (literal, .integer) }
            return (dialect.decimalLiteral(literal), .decimal)
        case .parameter(let name):
            guard let value = params[name] else { throw StepFailure.config("\(field) uses :\(name), but the step gives no params.\(name)") }
            arguments.append(value)
            let kind: ValueKind =
                switch value {
                case .integer: .integer
                case .real: .decimal
                case .text: .text
                default: .unknown
                }
            return (dialect.placeholder(arguments.count), kind)
        case .word(let word):
            return (word.uppercased(), word == "null" ? .unknown : .bool)
        case .star:
            return ("*", .unknown)
        case .prefix(let op, let operand):
            let (sql, kind) = try render(operand, field: field, types: types)
            if op == "not" { return ("NOT \(sql)", .bool) }
            if op == "-", kind == .decimal { return (dialect.decimalArithmetic("-", "0", sql), .decimal) }
            return ("\(op)\(sql)", kind)
        case .infix(let op, let leftNode, let rightNode):
            let (left, leftKind) = try render(leftNode, field: field, types: types)
            let (right, rightKind) = try render(rightNode, field: field, types: types)
            switch op {
            case "+", "-", "*", "/", "%":
                let kind = ValueKind.arithmetic(leftKind, rightKind)
                if kind == .decimal, op != "%" { return (dialect.decimalArithmetic(op, left, right), .decimal) }
                return ("\(left) \(op) \(right)", kind)
            case "=", "<>", "!=", "<", "<=", ">", ">=":
                if leftKind == .decimal || rightKind == .decimal, leftKind != .text, rightKind != .text {
                    return (dialect.decimalComparison(op, left, right), .bool)
                }
                return ("\(left) \(op) \(right)", .bool)
            case "||":
                return ("\(left) || \(right)", .text)
            default:
                return ("\(left) \(op.uppercased()) \(right)", .bool)
            }
        case .isTest(let subject, let negated, let other):
            let (left, _) = try render(subject, field: field, types: types)
            let (right, _) = try render(other, field: field, types: types)
            return ("\(left) IS \(negated ? "NOT " : "")\(right)", .bool)
        case .inList(let subject, let negated, let items):
            let (left, leftKind) = try render(subject, field: field, types: types)
            var rendered: [String] = []
            for item in items {
                let (sql, kind) = try render(item, field: field, types: types)
                // Canonical decimal text is equal exactly when the numbers are.
                rendered.append(leftKind == .decimal && kind != .text ? dialect.decimalCanonical(sql) : sql)
            }
            let subjectSQL = leftKind == .decimal ? dialect.decimalCanonical(left) : left
            return ("\(subjectSQL) \(negated ? "NOT " : "")IN (\(rendered.joined(separator: ", ")))", .bool)
        case .between(let subject, let negated, let lowNode, let highNode):
            let (value, kind) = try render(subject, field: field, types: types)
            let (low, lowKind) = try render(lowNode, field: field, types: types)
            let (high, highKind) = try render(highNode, field: field, types: types)
            if [kind, lowKind, highKind].contains(.decimal) {
                let within = "(\(dialect.decimalComparison(">=", value, low)) AND \(dialect.decimalComparison("<=", value, high)))"
                return (negated ? "NOT \(within)" : within, .bool)
            }
            return ("\(value) \(negated ? "NOT " : "")BETWEEN \(low) AND \(high)", .bool)
        case .call(let name, let distinct, let argumentNodes, let filterNode):
            var rendered: [(sql: String, kind: ValueKind)] = []
            for argument in argumentNodes { rendered.append(try render(argument, field: field, types: types)) }
            var filter = ""
            if let filterNode { filter = " FILTER (WHERE \(try render(filterNode, field: field, types: types).sql))" }
            let first = rendered.first?.kind ?? .unknown
            let list = (distinct ? "DISTINCT " : "") + rendered.map(\.sql).joined(separator: ", ")
            switch name {
            case "count":
                return ("count(\(list))\(filter)", .integer)
            case "sum", "avg", "min", "max":
                if first == .decimal, rendered.count == 1, let exact = dialect.decimalAggregate(name, list) {
                    return (exact + filter, .decimal)
                }
                let kind: ValueKind = name == "avg" ? (first == .decimal ? .decimal : .float) : first
                return ("\(name)(\(list))\(filter)", kind)
            case "round":
                if first == .decimal { return (dialect.decimalRound(rendered[0].sql, rendered.count > 1 ? rendered[1].sql : "0"), .decimal) }
                return ("round(\(list))", first == .integer ? .integer : .float)
            case "abs":
                if first == .decimal { return (dialect.decimalAbsolute(rendered[0].sql), .decimal) }
                return ("abs(\(list))", first)
            case "length":
                return ("length(\(list))", .integer)
            case "lower", "upper", "substr", "trim":
                return ("\(name)(\(list))", .text)
            default:
                // coalesce, nullif, greatest, least: the kind their arguments share.
                let kinds = Set(rendered.map(\.kind)).subtracting([.unknown])
                let kind: ValueKind =
                    kinds.count == 1 ? kinds.first! : (kinds.isSubset(of: [.integer, .decimal]) && !kinds.isEmpty ? .decimal : .unknown)
                return ("\(name)(\(list))", kind)
            }
        case .cast(let value, let type):
            let (sql, _) = try render(value, field: field, types: types)
            switch type {
            case "numeric": return (dialect.decimalCanonical(sql), .decimal)
            case "integer", "bigint": return ("CAST(\(sql) AS \(type.uppercased()))", .integer)
            case "real", "double precision", "double": return ("CAST(\(sql) AS \(type.uppercased()))", .float)
            default: return ("CAST(\(sql) AS \(type.uppercased()))", .text)
            }
        case .caseWhen(let subject, let branches, let otherwise):
            var sql = "CASE"
            if let subject { sql += " " + (try render(subject, field: field, types: types)).sql }
            var kinds = Set<ValueKind>()
            for (position, branch) in branches.enumerated() {
                let (text, kind) = try render(branch, field: field, types: types)
                sql += (position % 2 == 0 ? " WHEN " : " THEN ") + text
                if position % 2 == 1 { kinds.insert(kind) }
            }
            if let otherwise {
                let (text, kind) = try render(otherwise, field: field, types: types)
                sql += " ELSE " + text
                kinds.insert(kind)
            }
            kinds.remove(.unknown)
            let kind: ValueKind =
                kinds.count == 1 ? kinds.first! : (kinds.isSubset(of: [.integer, .decimal]) && !kinds.isEmpty ? .decimal : .unknown)
            return (sql + " END", kind)
        case .group(let inner):
            let (sql, kind) = try render(inner, field: field, types: types)
            return ("(\(sql))", kind)
        }
    }
}
