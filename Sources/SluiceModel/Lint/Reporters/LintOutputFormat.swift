import Foundation

/// The formats `sluice lint --format` writes: for people, for programs, and for CI systems.
public enum LintOutputFormat: String, CaseIterable, Sendable {
    /// `file:line:column: error: message [rule]`, coloured on a terminal.
    case text
    /// One JSON document with every diagnostic and the counts.
    case json
    /// GitHub Actions workflow commands (`::error file=…`), shown as annotations on a PR.
    case github
    /// SARIF 2.1.0, for code-scanning uploads.
    case sarif

    public func render(_ report: LintReport, colour: Bool = false) -> String {
        switch self {
        case .text: return Self.text(report, colour: colour)
        case .json: return Self.json(report)
        case .github: return Self.github(report)
        case .sarif: return Self.sarif(report)
        }
    }

    // MARK: Text

    static func text(_ report: LintReport, colour: Bool) -> String {
        func paint(_ text: String, _ code: String) -> String { colour ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text }
        var lines = report.diagnostics.map { diagnostic in
            let severity = diagnostic.severity == .error ? paint("error", "1;31") : paint("warning", "1;33")
            // The file name and the message may quote input: escaped before the colours go on.
            return
                "\(paint(printable(diagnostic.location.description), "1")): \(severity): \(printable(diagnostic.message, keepingLineBreaks: true)) \(paint("[\(diagnostic.rule.rawValue)]", "2"))"
        }
        let files = report.filesChecked == 1 ? "1 file" : "\(report.filesChecked) files"
        if report.diagnostics.isEmpty {
            lines.append("\(files) checked, no problems")
        } else {
            lines.append(
                "\(files) checked: \(report.errorCount) error\(report.errorCount == 1 ? "" : "s"), \(report.warningCount) warning\(report.warningCount == 1 ? "" : "s")"
            )
        }
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: JSON

    private struct JSONReport: Encodable {
        struct Item: Encodable {
            var file: String
            var line: Int
            var column: Int
            var severity: String
            var rule: String
            var message: String
        }
        var files_checked: Int
        var errors: Int
        var warnings: Int
        var diagnostics: [Item]
    }

    static func json(_ report: LintReport) -> String {
        let document = JSONReport(
            files_checked: report.filesChecked, errors: report.errorCount, warnings: report.warningCount,
            diagnostics: report.diagnostics.map {
                .init(
                    file: $0.location.file, line: $0.location.line, column: $0.location.column,
                    severity: $0.severity.rawValue, rule: $0.rule.rawValue, message: $0.message)
            })
        return encode(document)
    }

    // MARK: GitHub Actions

    static func github(_ report: LintReport) -> String {
        // Workflow command values escape %, CR and LF; properties also escape : and ,.
        func escapeData(_ text: String) -> String {
            text.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "\r", with: "%0D")
                .replacingOccurrences(of: "\n", with: "%0A")
        }
        func escapeProperty(_ text: String) -> String {
            escapeData(text).replacingOccurrences(of: ":", with: "%3A").replacingOccurrences(of: ",", with: "%2C")
        }
        return report.diagnostics.map { diagnostic in
            let kind = diagnostic.severity == .error ? "error" : "warning"
            let location = diagnostic.location
            return
                "::\(kind) file=\(escapeProperty(location.file)),line=\(location.line),col=\(location.column),title=\(escapeProperty("sluice \(diagnostic.rule.rawValue)"))::\(escapeData(diagnostic.message))"
        }.map { $0 + "\n" }.joined()
    }

    // MARK: SARIF 2.1.0

    private struct SARIF: Encodable {
        struct Run: Encodable {
            var tool: Tool
            /// Sluice counts columns in Unicode scalars; SARIF's default is UTF-16 units.
            var columnKind = "unicodeCodePoints"
            var results: [Result]
        }
        struct Tool: Encodable {
            var driver: Driver
        }
        struct Driver: Encodable {
            var name: String
            var rules: [Rule]
        }
        struct Rule: Encodable {
            var id: String
            var shortDescription: Text
            var defaultConfiguration: Configuration
        }
        struct Configuration: Encodable {
            var level: String
        }
        struct Text: Encodable {
            var text: String
        }
        struct Result: Encodable {
            var ruleId: String
            var ruleIndex: Int
            var level: String
            var message: Text
            var locations: [Location]
        }
        struct Location: Encodable {
            var physicalLocation: Physical
        }
        struct Physical: Encodable {
            var artifactLocation: Artifact
            var region: Region
        }
        struct Artifact: Encodable {
            var uri: String
        }
        struct Region: Encodable {
            var startLine: Int
            var startColumn: Int
        }

        var version = "2.1.0"
        var schema = "https://json.schemastore.org/sarif-2.1.0.json"
        var runs: [Run]

        enum CodingKeys: String, CodingKey {
            case version
            case schema = "$schema"
            case runs
        }
    }

    static func sarif(_ report: LintReport) -> String {
        let rules = LintRule.allCases
        let index = Dictionary(uniqueKeysWithValues: rules.enumerated().map { ($1, $0) })
        func level(_ severity: Severity) -> String { severity == .error ? "error" : "warning" }
        let run = SARIF.Run(
            tool: .init(
                driver: .init(
                    name: "sluice",
                    rules: rules.map {
                        .init(
                            id: $0.rawValue, shortDescription: .init(text: $0.summary),
                            defaultConfiguration: .init(level: level($0.defaultSeverity)))
                    })),
            results: report.diagnostics.map { diagnostic in
                .init(
                    ruleId: diagnostic.rule.rawValue, ruleIndex: index[diagnostic.rule] ?? 0, level: level(diagnostic.severity),
                    message: .init(text: diagnostic.message),
                    locations: [
                        .init(
                            physicalLocation: .init(
                                artifactLocation: .init(uri: diagnostic.location.file),
                                region: .init(startLine: diagnostic.location.line, startColumn: diagnostic.location.column)))
                    ])
            })
        return encode(SARIF(runs: [run]))
    }

    static func encode(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
