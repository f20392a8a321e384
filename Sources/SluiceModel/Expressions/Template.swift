import Foundation

/// A string value from a pipeline file, split into literal text and `${{ … }}` expressions.
/// A value that is exactly one expression evaluates to that expression's value (a number
/// stays a number); otherwise the parts are joined as text.
public struct Template: Hashable, Sendable {
    public enum Part: Hashable, Sendable {
        case text(String)
        /// An expression and the character offset of its first character in the value.
        case expression(Expression, offset: Int)
    }

    public var parts: [Part]

    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public var description: String
        public var offset: Int
    }

    /// Whether `text` contains `${{` at all; cheap, for the many values that don't.
    public static func containsExpression(_ text: String) -> Bool {
        var previous: (UInt8, UInt8) = (0, 0)
        for byte in text.utf8 {
            if byte == UInt8(ascii: "{"), previous == (UInt8(ascii: "$"), UInt8(ascii: "{")) { return true }
            previous = (previous.1, byte)
        }
        return false
    }

    public init(parsing text: String) throws(ParseError) {
        var parts: [Part] = []
        let characters = Array(text)
        var index = 0
        var literal = ""
        while index < characters.count {
            if characters[index] == "$", index + 2 < characters.count, characters[index + 1] == "{", characters[index + 2] == "{" {
                let open = index
                var close = index + 3
                var found = false
                var quote: Character?
                while close + 1 < characters.count {
                    let character = characters[close]
                    if let open = quote {
                        if character == open { quote = nil }
                    } else if character == "'" || character == "\"" {
                        quote = character
                    } else if character == "}", characters[close + 1] == "}" {
                        found = true
                        break
                    }
                    close += 1
                }
                guard found else {
                    throw ParseError(description: "'${{' is not closed by '}}'", offset: open)
                }
                if !literal.isEmpty {
                    parts.append(.text(literal))
                    literal = ""
                }
                let inner = String(characters[(open + 3)..<close])
                do {
                    let expression = try ExpressionParser.parse(inner)
                    parts.append(.expression(expression, offset: open + 3))
                } catch {
                    throw ParseError(description: error.description, offset: open + 3 + error.offset)
                }
                index = close + 2
            } else {
                literal.append(characters[index])
                index += 1
            }
        }
        if !literal.isEmpty { parts.append(.text(literal)) }
        self.parts = parts
    }

    /// The expressions of the template with their offsets.
    public var expressions: [(expression: Expression, offset: Int)] {
        parts.compactMap {
            if case .expression(let expression, let offset) = $0 { return (expression, offset) }
            return nil
        }
    }

    /// Every reference with its offset in the whole value.
    public var references: [(path: [String], offset: Int)] {
        expressions.flatMap { item in item.expression.references.map { ($0.path, item.offset + $0.offset) } }
    }

    public func evaluate(in context: ExpressionContext) throws(ExpressionContext.EvaluationError) -> ExpressionValue {
        if parts.count == 1, case .expression(let expression, _) = parts[0] {
            return try context.evaluate(expression)
        }
        var text = ""
        for part in parts {
            switch part {
            case .text(let literal): text += literal
            case .expression(let expression, _): text += try context.evaluate(expression).description
            }
        }
        return .string(text)
    }
}
