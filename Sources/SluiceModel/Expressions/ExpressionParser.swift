/// Parses the text between `${{` and `}}`. Errors carry the character offset of the problem.
public struct ExpressionParser {
    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public var description: String
        public var offset: Int
    }

    private enum Token: Equatable {
        case identifier(String)
        case string(String)
        case number(Double)
        case symbol(String)
        case end
    }

    private let source: [Character]
    private var tokens: [(token: Token, offset: Int)] = []
    private var position = 0
    /// Nesting and operator counts, bounded so every walk over the tree stays shallow.
    private var depth = 0
    private var operators = 0
    static let maxDepth = 32
    static let maxOperators = 100

    public static func parse(_ text: String) throws(ParseError) -> Expression {
        var parser = ExpressionParser(text)
        try parser.tokenize()
        let expression = try parser.parseOr()
        guard parser.current.token == .end else {
            throw ParseError(description: "unexpected \(parser.describe(parser.current.token)) after the expression", offset: parser.current.offset)
        }
        return expression
    }

    private init(_ text: String) {
        source = Array(text)
    }

    // MARK: Tokens

    private mutating func tokenize() throws(ParseError) {
        var index = 0
        while index < source.count {
            let character = source[index]
            if character.isWhitespace {
                index += 1
                continue
            }
            let start = index
            if character.isLetter || character == "_" {
                while index < source.count, source[index].isLetter || source[index].isNumber || source[index] == "_" {
                    index += 1
                }
                tokens.append((.identifier(String(source[start..<index])), start))
            } else if character.isNumber {
                while index < source.count, source[index].isNumber || source[index] == "." { index += 1 }
                guard let number = Double(String(source[start..<index])) else {
                    throw ParseError(description: "'\(String(source[start..<index]))' is not a number", offset: start)
                }
                tokens.append((.number(number), start))
            } else if character == "'" || character == "\"" {
                index += 1
                var text = ""
                var closed = false
                while index < source.count {
                    if source[index] == character {
                        // '' inside single quotes is one quote, as in SQL and GitHub Actions.
                        if character == "'", index + 1 < source.count, source[index + 1] == "'" {
                            text.append("'")
                            index += 2
                            continue
                        }
                        closed = true
                        index += 1
                        break
                    }
                    text.append(source[index])
                    index += 1
                }
                guard closed else { throw ParseError(description: "string not closed", offset: start) }
                tokens.append((.string(text), start))
            } else {
                let pair = index + 1 < source.count ? String(source[index...index + 1]) : ""
                if ["==", "!=", "&&", "||"].contains(pair) {
                    tokens.append((.symbol(pair), start))
                    index += 2
                } else if "().,[]!".contains(character) {
                    tokens.append((.symbol(String(character)), start))
                    index += 1
                } else {
                    throw ParseError(description: "unexpected character \(shown(String(character)))", offset: start)
                }
            }
        }
        tokens.append((.end, source.count))
    }

    private var current: (token: Token, offset: Int) { tokens[position] }

    private mutating func advance() { if position < tokens.count - 1 { position += 1 } }

    private func describe(_ token: Token) -> String {
        switch token {
        case .identifier(let name): return "\(shown(name))"
        case .string(let text): return "string \(shown(text))"
        case .number(let number): return "number \(ExpressionValue.number(number))"
        case .symbol(let symbol): return "\(shown(symbol))"
        case .end: return "end of expression"
        }
    }

    private mutating func countOperator() throws(ParseError) {
        operators += 1
        if operators > Self.maxOperators {
            throw ParseError(description: "the expression has more than \(Self.maxOperators) operators; split it up", offset: current.offset)
        }
    }

    private mutating func enter() throws(ParseError) {
        depth += 1
        if depth > Self.maxDepth {
            throw ParseError(description: "the expression nests deeper than \(Self.maxDepth) levels", offset: current.offset)
        }
    }

    private mutating func expect(_ symbol: String) throws(ParseError) {
        guard current.token == .symbol(symbol) else {
            throw ParseError(description: "expected \(shown(symbol)) but found \(describe(current.token))", offset: current.offset)
        }
        advance()
    }

    // MARK: Grammar

    private mutating func parseOr() throws(ParseError) -> Expression {
        var left = try parseAnd()
        while current.token == .symbol("||") {
            try countOperator()
            advance()
            left = .binary(.or, left, try parseAnd())
        }
        return left
    }

    private mutating func parseAnd() throws(ParseError) -> Expression {
        var left = try parseEquality()
        while current.token == .symbol("&&") {
            try countOperator()
            advance()
            left = .binary(.and, left, try parseEquality())
        }
        return left
    }

    private mutating func parseEquality() throws(ParseError) -> Expression {
        let left = try parseUnary()
        for op in [Expression.BinaryOperator.equal, .notEqual] where current.token == .symbol(op.rawValue) {
            try countOperator()
            advance()
            return .binary(op, left, try parseUnary())
        }
        return left
    }

    private mutating func parseUnary() throws(ParseError) -> Expression {
        if current.token == .symbol("!") {
            try countOperator()
            try enter()
            defer { depth -= 1 }
            advance()
            return .not(try parseUnary())
        }
        return try parsePrimary()
    }

    private mutating func parsePrimary() throws(ParseError) -> Expression {
        let (token, offset) = current
        switch token {
        case .string(let text):
            advance()
            return .literal(.string(text))
        case .number(let number):
            advance()
            return .literal(.number(number))
        case .symbol("("):
            try enter()
            defer { depth -= 1 }
            advance()
            let inner = try parseOr()
            try expect(")")
            return inner
        case .identifier(let name):
            advance()
            switch name {
            case "true": return .literal(.bool(true))
            case "false": return .literal(.bool(false))
            case "null": return .literal(.null)
            default: break
            }
            if current.token == .symbol("(") {
                try enter()
                defer { depth -= 1 }
                advance()
                var arguments: [Expression] = []
                if current.token != .symbol(")") {
                    arguments.append(try parseOr())
                    while current.token == .symbol(",") {
                        advance()
                        arguments.append(try parseOr())
                    }
                }
                try expect(")")
                return .call(function: name, arguments: arguments, offset: offset)
            }
            var path = [name]
            while true {
                if current.token == .symbol(".") {
                    advance()
                    guard case .identifier(let member) = current.token else {
                        throw ParseError(description: "expected a name after '.' but found \(describe(current.token))", offset: current.offset)
                    }
                    path.append(member)
                    advance()
                } else if current.token == .symbol("[") {
                    advance()
                    guard case .string(let member) = current.token else {
                        throw ParseError(
                            description: "expected a quoted name inside [ ] but found \(describe(current.token))", offset: current.offset)
                    }
                    path.append(member)
                    advance()
                    try expect("]")
                } else {
                    break
                }
            }
            return .reference(path: path, offset: offset)
        case .end:
            throw ParseError(description: "the expression is empty or ends too early", offset: offset)
        default:
            throw ParseError(description: "unexpected \(describe(token))", offset: offset)
        }
    }
}
