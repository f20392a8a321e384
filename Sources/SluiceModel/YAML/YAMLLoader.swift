import Foundation
import Yams

/// Reads one YAML document into `YAMLNode`s with positions, refusing input that could crash or
/// hang a parser: files over 1 MiB, bytes that are not UTF-8 text, nesting past 200 levels,
/// alias expansion past 100,000 nodes, and aliases used as mapping keys (which make the parser
/// hash an expanded tree). Every refusal is a `Diagnostic` with a line and column.
public struct YAMLLoader: Sendable {
    public struct Limits: Sendable {
        public var maxBytes: Int = 1 << 20
        public var maxDepth: Int = 200
        public var maxNodes: Int = 100_000
        public init() {}
    }

    public var limits: Limits

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Reads a file from disk. A file that can't be read is a diagnostic too.
    public func load(fileAt url: URL, displayPath: String) -> Result<YAMLNode?, Diagnostic> {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            return .failure(
                Diagnostic(
                    .yamlSyntax, at: .start(of: displayPath),
                    "cannot read the file: \(error.localizedDescription)"))
        }
        return load(data, file: displayPath)
    }

    /// Parses bytes. `.success(nil)` means the document is empty.
    public func load(_ data: Data, file: String) -> Result<YAMLNode?, Diagnostic> {
        if data.count > limits.maxBytes {
            let place = TextScan.location(ofByte: limits.maxBytes, in: data, file: file)
            return .failure(
                Diagnostic(
                    .inputLimit, at: place,
                    "the file is \(data.count) bytes; pipeline files may be at most \(limits.maxBytes) bytes (1 MiB)"))
        }
        let text: String
        switch TextScan.checkText(data, file: file) {
        case .failure(let diagnostic): return .failure(diagnostic)
        case .success(let decoded): text = decoded
        }
        let structure = TextScan.checkStructure(text, file: file, maxDepth: limits.maxDepth)
        if let refusal = structure.refusal { return .failure(refusal) }

        // The parser recurses once per nesting level. The structure check bounds that; a
        // shallow document parses right here, and one whose bound is high or uncertain parses
        // on a thread with a large stack, so a bound that was too generous cannot crash us.
        // An alias-free document has fewer values than twice its bytes; only alias expansion
        // can go past that, so the node limit grows with the file and never refuses real input.
        var effective = limits
        effective.maxNodes = max(limits.maxNodes, 2 * data.count)
        let scaled = effective
        // Aliases can nest values deeper than the text shows, and freeing such a tree recurses.
        if structure.certain && structure.deepest <= 64 && structure.aliases == 0 {
            return Self.compose(text, file: file, limits: scaled)
        }
        return Self.onLargeStack { Self.compose(text, file: file, limits: scaled) }
    }

    private static func compose(_ text: String, file: String, limits: Limits) -> Result<YAMLNode?, Diagnostic> {
        let root: Node?
        do {
            // The basic resolver tags every scalar as text without running regular expressions
            // (Yams resolves tags to hash keys for its duplicate check, and that dominated lint
            // time); YAMLNode resolves plain scalars itself, by YAML 1.2.
            root = try Yams.compose(yaml: text, .basic)
        } catch let error as YamlError {
            return .failure(diagnostic(for: error, in: text, file: file))
        } catch {
            return .failure(Diagnostic(.yamlSyntax, at: .start(of: file), "\(error)"))
        }
        guard let root else { return .success(nil) }
        var converter = Converter(file: file, limits: limits, lines: text.split(separator: "\n", omittingEmptySubsequences: false))
        do {
            return .success(try converter.convert(root, depth: 0))
        } catch let diagnostic as Diagnostic {
            return .failure(diagnostic)
        } catch {
            return .failure(Diagnostic(.yamlSyntax, at: .start(of: file), "\(error)"))
        }
    }

    private final class Box<T>: @unchecked Sendable {
        var value: T?
    }

    private static func onLargeStack<T: Sendable>(_ body: @escaping @Sendable () -> T) -> T {
        let box = Box<T>()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            box.value = body()
            done.signal()
        }
        thread.stackSize = 512 << 20
        thread.start()
        done.wait()
        return box.value!
    }

    // MARK: Yams errors to diagnostics

    static func diagnostic(for error: YamlError, in text: String, file: String) -> Diagnostic {
        func place(_ mark: Mark) -> SourceLocation {
            SourceLocation(file: file, line: max(mark.line, 1), column: max(mark.column, 1))
        }
        func describe(_ problem: String, _ context: YamlError.Context?, at mark: Mark) -> String {
            var message = problem
            if let context, !context.text.isEmpty, problem.hasPrefix("but ") {
                message = "\(context.text) \(problem)"
            } else if let context, !context.text.isEmpty {
                message += " (\(context.text) started at \(context.mark.line):\(context.mark.column))"
            }
            if TextScan.character(at: mark, in: text) == "\t" {
                message += "; YAML does not allow tabs for indentation, use spaces"
            }
            return message
        }
        switch error {
        case let .scanner(context, problem, mark, _),
            let .parser(context, problem, mark, _),
            let .composer(context, problem, mark, _):
            if problem.contains("Maximum nesting level") {
                return Diagnostic(.inputLimit, at: place(mark), "values nest deeper than libyaml allows; pipeline files may not")
            }
            return Diagnostic(.yamlSyntax, at: place(mark), describe(problem, context, at: mark))
        case let .duplicatedKeysInMapping(duplicates, context):
            let key = duplicates.sorted().first ?? "?"
            let first = place(context.mark)
            if let second = TextScan.repeatedKey(key, after: context.mark, in: text) {
                return Diagnostic(
                    .duplicateKey, at: SourceLocation(file: file, line: second.line, column: second.column),
                    "duplicate key \(shown(key)); it was already given at \(first.line):\(first.column)")
            }
            return Diagnostic(.duplicateKey, at: first, "duplicate key \(shown(key)) in this mapping")
        default:
            return Diagnostic(.yamlSyntax, at: .start(of: file), "\(error)")
        }
    }

    // MARK: Yams nodes to ours

    private struct Converter {
        let file: String
        let limits: Limits
        let lines: [Substring]
        var nodes = 0

        init(file: String, limits: Limits, lines: [Substring]) {
            self.file = file
            self.limits = limits
            self.lines = lines
        }

        /// Whether `text` stands as is in the file at the mark (after the opening quote).
        func standsVerbatim(_ text: String, at mark: Mark?, quoted: Bool) -> Bool {
            guard let mark, mark.line >= 1, mark.line <= lines.count, !text.utf8.contains(0x0A) else { return false }
            let skip = mark.column - 1 + (quoted ? 1 : 0)
            let line = lines[mark.line - 1].unicodeScalars
            guard skip >= 0, skip <= line.count else { return false }
            return line.dropFirst(skip).starts(with: text.unicodeScalars)
        }

        func place(_ node: Node) -> SourceLocation {
            guard let mark = node.mark else { return .start(of: file) }
            return SourceLocation(file: file, line: mark.line, column: mark.column)
        }

        mutating func convert(_ node: Node, depth: Int) throws -> YAMLNode {
            nodes += 1
            if nodes > limits.maxNodes {
                throw Diagnostic(
                    .inputLimit, at: place(node),
                    "the document expands to more than \(limits.maxNodes) values (aliases repeating aliases?); pipeline files may not")
            }
            if depth > limits.maxDepth {
                throw Diagnostic(
                    .inputLimit, at: place(node),
                    "values nest deeper than \(limits.maxDepth) levels; pipeline files may not")
            }
            switch node {
            case .scalar(let scalar):
                let quoted = scalar.style != .plain
                let verbatim =
                    (scalar.style == .plain || scalar.style == .singleQuoted || scalar.style == .doubleQuoted)
                    && standsVerbatim(scalar.string, at: scalar.mark, quoted: quoted)
                return YAMLNode(.scalar(scalar.string, quoted: quoted), at: place(node), verbatim: verbatim)
            case .alias:
                throw Diagnostic(.yamlSyntax, at: place(node), "unresolved alias")
            case .sequence(let sequence):
                var items: [YAMLNode] = []
                items.reserveCapacity(sequence.count)
                for item in sequence { items.append(try convert(item, depth: depth + 1)) }
                return YAMLNode(.sequence(items), at: place(node))
            case .mapping(let mapping):
                var pairs: [YAMLPair] = []
                var merged: [YAMLPair] = []
                for (key, value) in mapping {
                    let convertedKey = try convert(key, depth: depth + 1)
                    let convertedValue = try convert(value, depth: depth + 1)
                    if convertedKey.scalarText == "<<", !convertedKey.isQuoted {
                        merged += try mergePairs(convertedValue)
                    } else {
                        pairs.append(YAMLPair(key: convertedKey, value: convertedValue))
                    }
                }
                // `<<: *defaults` merges keys that the mapping does not set itself.
                let own = Set(pairs.compactMap { $0.key.scalarText })
                var seen = own
                for pair in merged {
                    guard let name = pair.key.scalarText, !seen.contains(name) else { continue }
                    seen.insert(name)
                    pairs.append(pair)
                }
                return YAMLNode(.mapping(pairs), at: place(node))
            }
        }

        func mergePairs(_ value: YAMLNode) throws -> [YAMLPair] {
            switch value.value {
            case .mapping(let pairs): return pairs
            case .sequence(let items):
                return try items.flatMap { item -> [YAMLPair] in
                    guard let pairs = item.mapping else {
                        throw Diagnostic(.wrongType, at: item.location, "a merge key `<<` takes mappings, not \(item.kindDescription)")
                    }
                    return pairs
                }
            case .scalar:
                throw Diagnostic(.wrongType, at: value.location, "a merge key `<<` takes a mapping, not \(value.kindDescription)")
            }
        }
    }
}

extension Diagnostic: Error {}
