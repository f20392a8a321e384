/// A `${{ … }}` expression: references to `params.*`, `run.*`, `env.*`,
/// `steps.<id>.outputs.*` and `secrets.*`, literals, `==`, `!=`, `&&`, `||` (the first
/// non-empty value, which gives defaults: `params.day || run.logical_date`), `!`, and a few
/// functions (`lower`, `upper`, `trim`, `date_add`).
public indirect enum Expression: Hashable, Sendable {
    case literal(ExpressionValue)
    /// A dotted path such as `steps.load.outputs.rows`, with the offset of its first character.
    case reference(path: [String], offset: Int)
    case not(Expression)
    case binary(BinaryOperator, Expression, Expression)
    case call(function: String, arguments: [Expression], offset: Int)

    public enum BinaryOperator: String, Hashable, Sendable {
        case equal = "=="
        case notEqual = "!="
        case and = "&&"
        case or = "||"
    }

    /// Every reference in the expression, in order of appearance.
    public var references: [(path: [String], offset: Int)] {
        switch self {
        case .literal: return []
        case .reference(let path, let offset): return [(path, offset)]
        case .not(let inner): return inner.references
        case .binary(_, let left, let right): return left.references + right.references
        case .call(_, let arguments, _): return arguments.flatMap(\.references)
        }
    }
}

/// The values expressions compute with. Numbers are doubles; integers print without `.0`.
public enum ExpressionValue: Hashable, Sendable, CustomStringConvertible {
    case string(String)
    case number(Double)
    case bool(Bool)
    case null

    /// How the value reads when spliced into a string.
    public var description: String {
        switch self {
        case .string(let text): return text
        case .number(let number):
            if number.rounded() == number, abs(number) < 1e15 { return String(Int64(number)) }
            return String(number)
        case .bool(let flag): return flag ? "true" : "false"
        case .null: return ""
        }
    }

    /// Empty strings, null and false count as "no value" for `||` and `!`.
    public var isTruthy: Bool {
        switch self {
        case .string(let text): return !text.isEmpty
        case .number(let number): return number != 0
        case .bool(let flag): return flag
        case .null: return false
        }
    }
}
