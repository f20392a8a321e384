import Foundation
import Yams

/// Cheap passes over raw pipeline text that run before the YAML parser, so that input which
/// would crash or stall a parser is refused with a position instead.
enum TextScan {
    // MARK: Positions

    /// Line and column (in Unicode scalars) of a byte offset.
    static func location(ofByte offset: Int, in data: Data, file: String) -> SourceLocation {
        var line = 1
        var column = 1
        var index = data.startIndex
        let end = data.index(data.startIndex, offsetBy: min(offset, data.count))
        while index < end {
            let byte = data[index]
            if byte == 0x0A {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                column += 1
            }
            index += 1
        }
        return SourceLocation(file: file, line: line, column: column)
    }

    static func character(at mark: Mark, in text: String) -> Unicode.Scalar? {
        var line = 1
        var column = 1
        for scalar in text.unicodeScalars {
            if line == mark.line && column == mark.column { return scalar }
            if line > mark.line { return nil }
            if scalar == "\n" {
                line += 1
                column = 1
            } else {
                column += 1
            }
        }
        return nil
    }

    /// Where a key that Yams reported as duplicated appears again: the first later line that
    /// has the same key at the same column.
    static func repeatedKey(_ key: String, after first: Mark, in text: String) -> (line: Int, column: Int)? {
        var lineNumber = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            guard lineNumber > first.line else { continue }
            let scalars = Array(line.unicodeScalars)
            let start = first.column - 1
            guard start >= 0, start < scalars.count else { continue }
            let prefixIsBlank = scalars[..<start].allSatisfy { $0 == " " || $0 == "-" }
            guard prefixIsBlank else { continue }
            let rest = String(String.UnicodeScalarView(scalars[start...]))
            for candidate in [key, "\"\(key)\"", "\(shown(key))"] where rest.hasPrefix(candidate) {
                let after = rest.dropFirst(candidate.count).drop { $0 == " " }
                if after.hasPrefix(":") {
                    return (lineNumber, first.column)
                }
            }
        }
        return nil
    }

    // MARK: Text

    /// Decodes UTF-8, refusing NUL bytes, control characters YAML forbids, and invalid UTF-8,
    /// each with the position of the first offending byte.
    static func checkText(_ data: Data, file: String) -> Result<String, Diagnostic> {
        var line = 1
        var column = 1
        var failure: Diagnostic?
        data.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) in
            let bytes = buffer.bindMemory(to: UInt8.self)
            var index = 0
            // A byte-order mark at the very start is allowed.
            if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { index = 3 }
            while index < bytes.count {
                let byte = bytes[index]
                if byte < 0x80 {
                    if byte == 0x0A {
                        line += 1
                        column = 1
                    } else {
                        if byte == 0 {
                            failure = Diagnostic(
                                .yamlSyntax, at: SourceLocation(file: file, line: line, column: column),
                                "NUL byte: this is a binary file, not YAML text")
                            return
                        }
                        if (byte < 0x20 && byte != 0x09 && byte != 0x0D) || byte == 0x7F {
                            failure = Diagnostic(
                                .yamlSyntax, at: SourceLocation(file: file, line: line, column: column),
                                String(format: "control character U+%04X is not allowed in YAML", byte))
                            return
                        }
                        column += 1
                    }
                    index += 1
                    continue
                }
                let length: Int
                let minimum: UInt32
                var scalar: UInt32
                switch byte {
                case 0xC2...0xDF: length = 2; minimum = 0x80; scalar = UInt32(byte & 0x1F)
                case 0xE0...0xEF: length = 3; minimum = 0x800; scalar = UInt32(byte & 0x0F)
                case 0xF0...0xF4: length = 4; minimum = 0x10000; scalar = UInt32(byte & 0x07)
                default: length = 0; minimum = 0; scalar = 0
                }
                var valid = length > 0 && index + length <= bytes.count
                if valid {
                    for offset in 1..<length {
                        let next = bytes[index + offset]
                        if next & 0xC0 != 0x80 { valid = false; break }
                        scalar = scalar << 6 | UInt32(next & 0x3F)
                    }
                }
                if valid, scalar < minimum || scalar > 0x10FFFF || (0xD800...0xDFFF).contains(scalar) { valid = false }
                if !valid {
                    failure = Diagnostic(
                        .yamlSyntax, at: SourceLocation(file: file, line: line, column: column),
                        String(format: "byte 0x%02X is not valid UTF-8; pipeline files must be UTF-8 text", byte))
                    return
                }
                if scalar == 0x85 || scalar == 0x2028 || scalar == 0x2029 {
                    failure = Diagnostic(
                        .yamlSyntax, at: SourceLocation(file: file, line: line, column: column),
                        String(format: "U+%04X is a line break to YAML but not to editors, so positions would be off; use a plain newline", scalar))
                    return
                }
                if (0x80...0x9F).contains(scalar) {
                    failure = Diagnostic(
                        .yamlSyntax, at: SourceLocation(file: file, line: line, column: column),
                        String(format: "control character U+%04X is not allowed in YAML", scalar))
                    return
                }
                column += 1
                index += length
            }
        }
        if let failure { return .failure(failure) }
        // Decoding from contiguous bytes takes the standard library's fast path.
        return .success(data.withUnsafeBytes { String(decoding: $0.bindMemory(to: UInt8.self), as: UTF8.self) })
    }

    // MARK: Structure

    /// What the structure pass learned: a refusal, or how deep the document can nest.
    struct Structure {
        var refusal: Diagnostic?
        /// An upper bound on the nesting depth, when `certain`.
        var deepest: Int
        /// False when a quoted string seemed to run across lines, where the bound may be off.
        var certain: Bool
        /// Aliases (`*name`) seen; they can nest values deeper than the text shows.
        var aliases = 0
    }

    /// More aliases than any pipeline needs: a document built to expand or nest through them.
    static let maxAliases = 1_000

    /// An upper bound on nesting (indentation levels, `- ` indicators, open flow brackets)
    /// checked against `maxDepth`, and a refusal of aliases used as mapping keys, which would
    /// make the parser hash an expanded alias tree. Block scalars (`|`, `>`) are skipped,
    /// since their lines are text. Works on UTF-8 bytes: everything structural is ASCII.
    static func checkStructure(_ text: String, file: String, maxDepth: Int) -> Structure {
        var text = text
        return text.withUTF8 { bytes in scanStructure(bytes, file: file, maxDepth: maxDepth) }
    }

    private static func scanStructure(_ bytes: UnsafeBufferPointer<UInt8>, file: String, maxDepth: Int) -> Structure {
        let space = UInt8(ascii: " "), tab = UInt8(ascii: "\t"), cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n")
        let hash = UInt8(ascii: "#"), dash = UInt8(ascii: "-"), question = UInt8(ascii: "?"), colon = UInt8(ascii: ":")
        let doubleQuote = UInt8(ascii: "\""), singleQuote = UInt8(ascii: "'"), backslash = UInt8(ascii: "\\")
        let openSquare = UInt8(ascii: "["), openCurly = UInt8(ascii: "{"), closeSquare = UInt8(ascii: "]")
        let closeCurly = UInt8(ascii: "}"), comma = UInt8(ascii: ","), star = UInt8(ascii: "*")

        var indents: [Int] = []
        var flowDepth = 0
        var quote: UInt8 = 0
        var certain = true
        var deepest = 0
        // For each open flow collection: whether an alias appears inside it.
        var aliasInOpenFlow: [Bool] = []
        var blockScalarParentIndent: Int?
        var lineNumber = 0
        var lineStart = 0
        var aliases = 0

        func isBlank(_ byte: UInt8) -> Bool { byte == space || byte == tab || byte == cr }
        func isAnchorCharacter(_ byte: UInt8) -> Bool {
            byte >= 0x80 || (byte >= 0x30 && byte <= 0x39) || (byte | 0x20 >= 0x61 && byte | 0x20 <= 0x7A) || byte == dash || byte == 0x5F
        }

        while lineStart <= bytes.count {
            lineNumber += 1
            var lineEnd = lineStart
            while lineEnd < bytes.count, bytes[lineEnd] != lf { lineEnd += 1 }
            defer { lineStart = lineEnd + 1 }
            if lineStart == bytes.count && lineStart == lineEnd { break }

            func at(_ index: Int) -> SourceLocation {
                // Columns count Unicode scalars: every byte that does not continue a sequence.
                var column = 1
                var position = lineStart
                while position < index {
                    if bytes[position] & 0xC0 != 0x80 { column += 1 }
                    position += 1
                }
                return SourceLocation(file: file, line: lineNumber, column: column)
            }

            var indent = 0
            while lineStart + indent < lineEnd, bytes[lineStart + indent] == space { indent += 1 }
            let first = lineStart + indent
            let isEmpty = first == lineEnd || bytes[first] == cr || bytes[first] == hash

            if let parent = blockScalarParentIndent {
                if isEmpty || indent > parent { continue }
                blockScalarParentIndent = nil
            }
            if isEmpty { continue }

            if quote == 0 && flowDepth == 0 {
                while let last = indents.last, last > indent { indents.removeLast() }
                if indents.last != indent { indents.append(indent) }
            } else if quote != 0 {
                certain = false
            }
            var index = first
            var compact = 0
            while index + 1 < lineEnd, bytes[index] == dash || bytes[index] == question, isBlank(bytes[index + 1]) {
                if bytes[index] == question && quote == 0 {
                    return Structure(
                        refusal: Diagnostic(
                            .yamlSyntax, at: at(index),
                            "explicit mapping keys (`? `) are not supported in pipeline files; write `key: value`"), deepest: deepest,
                        certain: certain)
                }
                compact += 1
                index += 2
                while index < lineEnd, bytes[index] == space { index += 1 }
            }
            func tooDeep(_ depth: Int, _ position: Int) -> Structure? {
                deepest = max(deepest, depth)
                guard depth > maxDepth else { return nil }
                return Structure(
                    refusal: Diagnostic(
                        .inputLimit, at: at(position),
                        "values nest deeper than \(maxDepth) levels; pipeline files may not"), deepest: depth, certain: certain)
            }
            if let refusal = tooDeep(indents.count + compact + flowDepth, first) { return refusal }

            // Quotes, brackets and aliases mean something only where a value starts: at the
            // start of the line's content, after `: `, or after `[`, `{` and `,` in flow
            // context. Elsewhere (`sum(a * b)`, `it's`) they are text of a plain scalar.
            var expectingNode = true
            var previous = space
            while index < lineEnd {
                let byte = bytes[index]
                if quote != 0 {
                    if quote == doubleQuote && byte == backslash {
                        index += 2
                        continue
                    }
                    if byte == quote {
                        if quote == singleQuote, index + 1 < lineEnd, bytes[index + 1] == singleQuote {
                            index += 2
                            continue
                        }
                        quote = 0
                        expectingNode = false
                    }
                    previous = byte
                    index += 1
                    continue
                }
                if byte == hash && isBlank(previous) { break }
                if isBlank(byte) {
                    previous = byte
                    index += 1
                    continue
                }
                let startsNode = expectingNode
                expectingNode = false
                if (byte == doubleQuote || byte == singleQuote) && startsNode {
                    quote = byte
                } else if (byte == openSquare || byte == openCurly) && startsNode {
                    flowDepth += 1
                    aliasInOpenFlow.append(false)
                    expectingNode = true
                    if let refusal = tooDeep(indents.count + compact + flowDepth, index) { return refusal }
                } else if (byte == closeSquare || byte == closeCurly) && flowDepth > 0 {
                    flowDepth -= 1
                    if aliasInOpenFlow.popLast() ?? false {
                        var next = index + 1
                        while next < lineEnd, isBlank(bytes[next]) { next += 1 }
                        if next < lineEnd, bytes[next] == colon {
                            return Structure(
                                refusal: Diagnostic(
                                    .yamlSyntax, at: at(index),
                                    "a collection holding an alias is used as a mapping key; pipeline files use plain keys"),
                                deepest: deepest, certain: certain)
                        }
                        if !aliasInOpenFlow.isEmpty { aliasInOpenFlow[aliasInOpenFlow.count - 1] = true }
                    }
                } else if byte == comma && flowDepth > 0 {
                    expectingNode = true
                } else if byte == colon && (flowDepth > 0 || index + 1 == lineEnd || isBlank(bytes[index + 1])) {
                    expectingNode = true
                } else if byte == star && startsNode {
                    aliases += 1
                    if aliases > maxAliases {
                        return Structure(
                            refusal: Diagnostic(
                                .inputLimit, at: at(index),
                                "more than \(maxAliases) aliases; pipeline files may not use that many"), deepest: deepest, certain: certain)
                    }
                    // libyaml's anchor names: letters, digits, `-` and `_`.
                    var next = index + 1
                    while next < lineEnd, isAnchorCharacter(bytes[next]) { next += 1 }
                    while next < lineEnd, isBlank(bytes[next]) { next += 1 }
                    if next < lineEnd, bytes[next] == colon {
                        return Structure(
                            refusal: Diagnostic(
                                .yamlSyntax, at: at(index),
                                "an alias is used as a mapping key; pipeline files use plain keys"), deepest: deepest, certain: certain)
                    }
                    if !aliasInOpenFlow.isEmpty { aliasInOpenFlow[aliasInOpenFlow.count - 1] = true }
                } else if byte == 0x26 && startsNode {
                    // `&anchor value`: the value after the anchor starts a node too.
                    var next = index + 1
                    while next < lineEnd, isAnchorCharacter(bytes[next]) { next += 1 }
                    index = next
                    previous = space
                    expectingNode = true
                    continue
                }
                previous = byte
                index += 1
            }
            // `key: |`, `- >-`, `key: |2+` start a block scalar: the lines indented deeper are text.
            if quote == 0, flowDepth == 0, endsWithBlockScalarHeader(bytes, from: first, to: lineEnd) {
                blockScalarParentIndent = indent
            }
        }
        if quote != 0 { certain = false }
        return Structure(refusal: nil, deepest: deepest, certain: certain, aliases: aliases)
    }

    /// Whether a line ends with a block scalar indicator (`|` or `>` with optional chomping and
    /// indentation indicators) after `key:` or `- `, ignoring a trailing comment.
    private static func endsWithBlockScalarHeader(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int) -> Bool {
        func isBlank(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0D }
        var stop = end
        var index = start
        while index < end {
            if bytes[index] == UInt8(ascii: "#"), index > start, bytes[index - 1] == 0x20 || bytes[index - 1] == 0x09 {
                stop = index
                break
            }
            index += 1
        }
        var tokenEnd = stop
        while tokenEnd > start, isBlank(bytes[tokenEnd - 1]) { tokenEnd -= 1 }
        var tokenStart = tokenEnd
        while tokenStart > start, !isBlank(bytes[tokenStart - 1]) { tokenStart -= 1 }
        guard tokenStart < tokenEnd, bytes[tokenStart] == UInt8(ascii: "|") || bytes[tokenStart] == UInt8(ascii: ">") else { return false }
        for position in (tokenStart + 1)..<tokenEnd {
            let byte = bytes[position]
            guard byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+") || (0x31...0x39).contains(byte) else { return false }
        }
        var before = tokenStart - 1
        while before >= start, isBlank(bytes[before]) { before -= 1 }
        return before < start || bytes[before] == UInt8(ascii: ":") || bytes[before] == UInt8(ascii: "-")
    }
}
