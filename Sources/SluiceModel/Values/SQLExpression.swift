/// A SQL expression written in YAML (an aggregate measure, a `where` filter), checked token by
/// token before it may be part of a statement: column names, literals, operators, `:params`
/// and a fixed list of functions that behave alike in SQLite and PostgreSQL. Statements,
/// subqueries, comments and `;` are refused, so a measure can't smuggle in other SQL.
public struct SQLExpression: Sendable, Hashable {
    public enum Token: Sendable, Hashable {
        case column(String)
        case function(String)
        case keyword(String)
        case parameter(String)
        case literal(String)
        case symbol(String)
    }

    public var text: String
    /// Tokens with their character offsets in `text`.
    public var tokens: [(token: Token, offset: Int)]

    public static func == (lhs: SQLExpression, rhs: SQLExpression) -> Bool { lhs.text == rhs.text }
    public func hash(into hasher: inout Hasher) { hasher.combine(text) }

    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public var description: String
        public var offset: Int
    }

    public static let functions: Set<String> = [
        "count", "sum", "avg", "min", "max", "coalesce", "nullif", "abs", "round", "lower", "upper",
        "length", "substr", "trim", "cast", "greatest", "least",
    ]

    static let keywords: Set<String> = [
        "and", "or", "not", "null", "is", "in", "between", "like", "case", "when", "then", "else", "end",
        "as", "distinct", "true", "false", "integer", "real", "text", "numeric", "bigint", "double", "precision", "filter", "where",
    ]

    static let refused: Set<String> = [
        "select", "from", "union", "insert", "update", "delete", "drop", "create", "alter", "attach", "pragma",
        "with", "join", "into", "values", "exec", "execute", "returning", "over",
    ]

    /// Column names the expression uses, with offsets.
    public var columns: [(name: String, offset: Int)] {
        tokens.compactMap {
            if case .column(let name) = $0.token { return (name, $0.offset) }; return nil
        }
    }

    public var parameters: [String] {
        tokens.compactMap {
            if case .parameter(let name) = $0.token { return name }; return nil
        }
    }

    public init(parsing text: String) throws(ParseError) {
        self.text = text
        var tokens: [(Token, Int)] = []
        let characters = Array(text)
        var index = 0
        var depth = 0
        while index < characters.count {
            let character = characters[index]
            let start = index
            if character.isWhitespace {
                index += 1
                continue
            }
            if character.isLetter || character == "_" {
                while index < characters.count, characters[index].isLetter || characters[index].isNumber || characters[index] == "_" {
                    index += 1
                }
                let word = String(characters[start..<index])
                let lower = word.lowercased()
                var next = index
                while next < characters.count, characters[next].isWhitespace { next += 1 }
                let isCall = next < characters.count && characters[next] == "("
                if Self.refused.contains(lower) {
                    throw ParseError(
                        description: "\(shown(word)) is not allowed: write an expression over columns, not a statement or subquery", offset: start)
                }
                if isCall {
                    guard Self.functions.contains(lower) else {
                        throw ParseError(
                            description:
                                "unknown SQL function \(shown(word))\(Suggestion.hint(for: lower, in: Self.functions)) (functions: \(Self.functions.sorted().joined(separator: ", ")))",
                            offset: start)
                    }
                    tokens.append((.function(lower), start))
                } else if Self.keywords.contains(lower) {
                    tokens.append((.keyword(lower), start))
                } else {
                    tokens.append((.column(word), start))
                }
            } else if character.isNumber || (character == "." && index + 1 < characters.count && characters[index + 1].isNumber) {
                while index < characters.count,
                    characters[index].isNumber || characters[index] == "." || characters[index] == "e"
                        || characters[index] == "E"
                        || ((characters[index] == "-" || characters[index] == "+") && "eE".contains(characters[index - 1]))
                {
                    index += 1
                }
                tokens.append((.literal(String(characters[start..<index])), start))
            } else if character == "'" {
                index += 1
                var closed = false
                while index < characters.count {
                    if characters[index] == "'" {
                        if index + 1 < characters.count, characters[index + 1] == "'" { index += 2; continue }
                        closed = true
                        index += 1
                        break
                    }
                    index += 1
                }
                guard closed else { throw ParseError(description: "string not closed", offset: start) }
                tokens.append((.literal(String(characters[start..<index])), start))
            } else if character == ":" && index + 1 < characters.count && (characters[index + 1].isLetter || characters[index + 1] == "_") {
                index += 1
                while index < characters.count, characters[index].isLetter || characters[index].isNumber || characters[index] == "_" { index += 1 }
                tokens.append((.parameter(String(characters[(start + 1)..<index])), start))
            } else {
                let pair = index + 1 < characters.count ? String(characters[index...index + 1]) : ""
                if pair == "--" || pair == "/*" {
                    throw ParseError(description: "comments are not allowed in an expression", offset: start)
                }
                if ["<=", ">=", "<>", "!=", "||"].contains(pair) {
                    tokens.append((.symbol(pair), start))
                    index += 2
                    continue
                }
                guard "+-*/%()<>=,".contains(character) else {
                    let why =
                        character == ";" ? "';' is not allowed: a measure is one expression" : "unexpected character \(shown(String(character)))"
                    throw ParseError(description: why, offset: start)
                }
                if character == "(" { depth += 1 }
                if character == ")" {
                    depth -= 1
                    if depth < 0 { throw ParseError(description: "')' without a matching '('", offset: start) }
                }
                tokens.append((.symbol(String(character)), start))
                index += 1
            }
        }
        if depth > 0 { throw ParseError(description: "'(' is not closed", offset: characters.count) }
        if tokens.isEmpty { throw ParseError(description: "the expression is empty", offset: 0) }
        self.tokens = tokens
    }
}
