/// How bad a finding is. Errors fail `sluice lint`; warnings fail it only with `--strict`.
public enum Severity: String, Sendable, Codable, Comparable {
    case warning
    case error

    public static func < (lhs: Severity, rhs: Severity) -> Bool {
        lhs == .warning && rhs == .error
    }
}

/// One finding about a file: where, how bad, what, and which rule found it.
public struct Diagnostic: Hashable, Sendable, CustomStringConvertible {
    public var location: SourceLocation
    public var severity: Severity
    public var rule: LintRule
    public var message: String

    public init(_ rule: LintRule, at location: SourceLocation, _ message: String, severity: Severity? = nil) {
        self.rule = rule
        self.location = location
        self.message = message
        self.severity = severity ?? rule.defaultSeverity
    }

    /// `file:line:column: error: message [rule-id]`, the format compilers use and editors read.
    public var description: String {
        "\(location): \(severity.rawValue): \(message) [\(rule.rawValue)]"
    }
}

extension Array where Element == Diagnostic {
    /// Diagnostics in reading order: by file, line, column, then rule, so output is stable.
    public func sortedForReading() -> [Diagnostic] {
        sorted { ($0.location, $0.rule.rawValue, $0.message) < ($1.location, $1.rule.rawValue, $1.message) }
    }

    public var errorCount: Int { filter { $0.severity == .error }.count }
    public var warningCount: Int { filter { $0.severity == .warning }.count }
}
