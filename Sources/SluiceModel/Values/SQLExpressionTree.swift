/// A checked `SQLExpression` as a tree, so a warehouse can type it and write each operation in
/// its own SQL: SQLite computes on decimals through functions (`decimal_add`, `decimal_sum`),
/// PostgreSQL with its operators on `numeric`.
public indirect enum SQLNode: Sendable, Hashable {
    case column(String)
    /// A number or a quoted string, as written.
    case literal(String)
    case parameter(String)
    /// `null`, `true` or `false`.
    case word(String)
    /// `*` as a function's argument: `count(*)`.
    case star
    /// `-x`, `+x`, `not x`.
    case prefix(String, SQLNode)
    /// Arithmetic (`+ - * / %`), comparison (`= <> != < <= > >=`), `and`, `or`, `||`, `like`,
    /// `not like`.
    case infix(String, SQLNode, SQLNode)
    /// `x is [not] y`.
    case isTest(SQLNode, negated: Bool, SQLNode)
    /// `x [not] in (a, b)`.
    case inList(SQLNode, negated: Bool, [SQLNode])
    /// `x [not] between a and b`.
    case between(SQLNode, negated: Bool, SQLNode, SQLNode)
    /// `name([distinct] arguments) [filter (where condition)]`.
    case call(String, distinct: Bool, [SQLNode], filter: SQLNode?)
    /// `cast(x as type words)`.
    case cast(SQLNode, String)
    /// `case [subject] when … then … [else …] end`.
    case caseWhen(SQLNode?, [SQLNode], SQLNode?)
    /// `(x)`.
    case group(SQLNode)
}

extension SQLExpression {
    /// The expression as a tree; throws where the tokens don't form one expression.
    public func tree() throws(ParseError) -> SQLNode {
        var parser = TreeParser(tokens: tokens, length: text.count)
        let node = try parser.expression()
        if let (token, offset) = parser.peek() {
            throw ParseError(description: "unexpected \(TreeParser.shown(token)) after a complete expression", offset: offset)
        }
        return node
    }
}

/// Recursive descent over the checked tokens, with SQL's precedence: `or`, `and`, `not`,
/// comparisons, `||`, `+ -`, `* / %`, unary signs.
private struct TreeParser {
    let tokens: [(token: SQLExpression.Token, offset: Int)]
    let length: Int
    var index = 0

    init(tokens: [(token: SQLExpression.Token, offset: Int)], length: Int) {
        self.tokens = tokens
        self.length = length
    }

    static func shown(_ token: SQLExpression.Token) -> String {
        switch token {
        case .column(let name), .function(let name), .keyword(let name), .literal(let name), .symbol(let name): "'\(name)'"
        case .parameter(let name): "':\(name)'"
        }
    }

    func peek() -> (SQLExpression.Token, Int)? {
        index < tokens.count ? (tokens[index].token, tokens[index].offset) : nil
    }

    private var offset: Int { index < tokens.count ? tokens[index].offset : length }

    private func isKeyword(_ word: String, ahead: Int = 0) -> Bool {
        guard index + ahead < tokens.count, case .keyword(let found) = tokens[index + ahead].token else { return false }
        return found == word
    }

    private func isSymbol(_ symbol: String) -> Bool {
        guard index < tokens.count, case .symbol(let found) = tokens[index].token else { return false }
        return found == symbol
    }

    private mutating func expect(symbol: String) throws(SQLExpression.ParseError) {
        guard isSymbol(symbol) else { throw failure("expected '\(symbol)'") }
        index += 1
    }

    private mutating func expect(keyword: String) throws(SQLExpression.ParseError) {
        guard isKeyword(keyword) else { throw failure("expected '\(keyword.uppercased())'") }
        index += 1
    }

    private func failure(_ what: String) -> SQLExpression.ParseError {
        let found = peek().map { " but found \(Self.shown($0.0))" } ?? " at the end"
        return SQLExpression.ParseError(description: what + found, offset: offset)
    }

    mutating func expression() throws(SQLExpression.ParseError) -> SQLNode {
        var node = try conjunction()
        while isKeyword("or") {
            index += 1
            node = .infix("or", node, try conjunction())
        }
        return node
    }

    private mutating func conjunction() throws(SQLExpression.ParseError) -> SQLNode {
        var node = try negation()
        while isKeyword("and") {
            index += 1
            node = .infix("and", node, try negation())
        }
        return node
    }

    private mutating func negation() throws(SQLExpression.ParseError) -> SQLNode {
        if isKeyword("not") {
            index += 1
            return .prefix("not", try negation())
        }
        return try comparison()
    }

    private mutating func comparison() throws(SQLExpression.ParseError) -> SQLNode {
        let left = try concatenation()
        if index < tokens.count, case .symbol(let symbol) = tokens[index].token, ["=", "<>", "!=", "<", "<=", ">", ">="].contains(symbol) {
            index += 1
            return .infix(symbol, left, try concatenation())
        }
        if isKeyword("is") {
            index += 1
            let negated = isKeyword("not")
            if negated { index += 1 }
            return .isTest(left, negated: negated, try concatenation())
        }
        let negated = isKeyword("not") && (isKeyword("in", ahead: 1) || isKeyword("between", ahead: 1) || isKeyword("like", ahead: 1))
        if negated { index += 1 }
        if isKeyword("in") {
            index += 1
            try expect(symbol: "(")
            var items = [try expression()]
            while isSymbol(",") {
                index += 1
                items.append(try expression())
            }
            try expect(symbol: ")")
            return .inList(left, negated: negated, items)
        }
        if isKeyword("between") {
            index += 1
            let low = try concatenation()
            try expect(keyword: "and")
            return .between(left, negated: negated, low, try concatenation())
        }
        if isKeyword("like") {
            index += 1
            return .infix(negated ? "not like" : "like", left, try concatenation())
        }
        return left
    }

    private mutating func concatenation() throws(SQLExpression.ParseError) -> SQLNode {
        var node = try sum()
        while isSymbol("||") {
            index += 1
            node = .infix("||", node, try sum())
        }
        return node
    }

    private mutating func sum() throws(SQLExpression.ParseError) -> SQLNode {
        var node = try product()
        while isSymbol("+") || isSymbol("-") {
            guard case .symbol(let symbol) = tokens[index].token else { break }
            index += 1
            node = .infix(symbol, node, try product())
        }
        return node
    }

    private mutating func product() throws(SQLExpression.ParseError) -> SQLNode {
        var node = try unary()
        while isSymbol("*") || isSymbol("/") || isSymbol("%") {
            guard case .symbol(let symbol) = tokens[index].token else { break }
            index += 1
            node = .infix(symbol, node, try unary())
        }
        return node
    }

    private mutating func unary() throws(SQLExpression.ParseError) -> SQLNode {
        if isSymbol("-") || isSymbol("+") {
            guard case .symbol(let symbol) = tokens[index].token else { return try primary() }
            index += 1
            return .prefix(symbol, try unary())
        }
        return try primary()
    }

    private mutating func primary() throws(SQLExpression.ParseError) -> SQLNode {
        guard index < tokens.count else { throw failure("expected a value") }
        let token = tokens[index].token
        index += 1
        switch token {
        case .column(let name): return .column(name)
        case .literal(let text): return .literal(text)
        case .parameter(let name): return .parameter(name)
        case .keyword(let word) where ["null", "true", "false"].contains(word): return .word(word)
        case .keyword("case"): return try caseExpression()
        case .function("cast"): return try castExpression()
        case .function(let name): return try call(name)
        case .symbol("("):
            let inner = try expression()
            try expect(symbol: ")")
            return .group(inner)
        case .symbol("*"): return .star
        default:
            index -= 1
            throw failure("expected a value")
        }
    }

    private mutating func call(_ name: String) throws(SQLExpression.ParseError) -> SQLNode {
        try expect(symbol: "(")
        let distinct = isKeyword("distinct")
        if distinct { index += 1 }
        var arguments: [SQLNode] = []
        if !isSymbol(")") {
            arguments.append(isSymbol("*") ? try star() : try expression())
            while isSymbol(",") {
                index += 1
                arguments.append(try expression())
            }
        }
        try expect(symbol: ")")
        var filter: SQLNode?
        if isKeyword("filter") {
            index += 1
            try expect(symbol: "(")
            try expect(keyword: "where")
            filter = try expression()
            try expect(symbol: ")")
        }
        return .call(name, distinct: distinct, arguments, filter: filter)
    }

    private mutating func star() throws(SQLExpression.ParseError) -> SQLNode {
        index += 1
        return .star
    }

    private mutating func castExpression() throws(SQLExpression.ParseError) -> SQLNode {
        try expect(symbol: "(")
        let value = try expression()
        try expect(keyword: "as")
        var words: [String] = []
        while index < tokens.count, case .keyword(let word) = tokens[index].token {
            words.append(word)
            index += 1
        }
        guard !words.isEmpty else { throw failure("expected a type after AS") }
        try expect(symbol: ")")
        return .cast(value, words.joined(separator: " "))
    }

    private mutating func caseExpression() throws(SQLExpression.ParseError) -> SQLNode {
        let subject = isKeyword("when") ? nil : try expression()
        var branches: [SQLNode] = []
        while isKeyword("when") {
            index += 1
            branches.append(try expression())
            try expect(keyword: "then")
            branches.append(try expression())
        }
        guard !branches.isEmpty else { throw failure("expected WHEN") }
        var otherwise: SQLNode?
        if isKeyword("else") {
            index += 1
            otherwise = try expression()
        }
        try expect(keyword: "end")
        return .caseWhen(subject, branches, otherwise)
    }
}
