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

    /// Line and column of the n-th Character of a string.
    static func location(ofCharacter offset: Int, in text: String, file: String) -> SourceLocation {
        var line = 1
        var column = 1
        for (index, character) in text.enumerated() {
            if index >= offset { break }
            if character == "\n" || character == "\r\n" {
                line += 1
                column = 1
            } else {
                column += character.unicodeScalars.count
            }
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
            for candidate in [key, "\"\(key)\"", "'\(key)'"] where rest.hasPrefix(candidate) {
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
                            failure = Diagnostic(.yamlSyntax, at: SourceLocation(file: file, line: line, column: column),
                                "NUL byte: this is a binary file, not YAML text")
                            return
                        }
                        if (byte < 0x20 && byte != 0x09 && byte != 0x0D) || byte == 0x7F {
                            failure = Diagnostic(.yamlSyntax, at: SourceLocation(file: file, line: line, column: column),
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
                    failure = Diagnostic(.yamlSyntax, at: SourceLocation(file: file, line: line, column: column),
                        String(format: "byte 0x%02X is not valid UTF-8; pipeline files must be UTF-8 text", byte))
                    return
                }
                if (0x80...0x9F).contains(scalar) && scalar != 0x85 {
                    failure = Diagnostic(.yamlSyntax, at: SourceLocation(file: file, line: line, column: column),
                        String(format: "control character U+%04X is not allowed in YAML", scalar))
                    return
                }
                column += 1
                index += length
            }
        }
        if let failure { return .failure(failure) }
        return .success(String(decoding: data, as: UTF8.self))
    }

    // MARK: Structure

    /// An upper bound on nesting (indentation levels, `- ` and `? ` indicators, open flow
    /// brackets) checked against `maxDepth`, and a refusal of aliases used as mapping keys,
    /// which would make the parser hash an expanded alias tree. Block scalars (`|`, `>`)
    /// are skipped, since their lines are text.
    static func checkStructure(_ text: String, file: String, maxDepth: Int) -> Diagnostic? {
        var indents: [Int] = []
        var flowDepth = 0
        var quote: Unicode.Scalar?
        // For each open flow collection: whether an alias appears inside it.
        var aliasInOpenFlow: [Bool] = []
        var blockScalarParentIndent: Int?
        var lineNumber = 0

        func at(_ column: Int) -> SourceLocation {
            SourceLocation(file: file, line: lineNumber, column: column + 1)
        }
        func isBlank(_ scalar: Unicode.Scalar) -> Bool { scalar == " " || scalar == "\t" || scalar == "\r" }

        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let scalars = Array(line.unicodeScalars)
            var indent = 0
            while indent < scalars.count, scalars[indent] == " " { indent += 1 }
            let isEmpty = indent == scalars.count || scalars[indent] == "\r" || scalars[indent] == "#"

            if let parent = blockScalarParentIndent {
                if isEmpty || indent > parent { continue }
                blockScalarParentIndent = nil
            }
            if isEmpty { continue }

            if quote == nil && flowDepth == 0 {
                while let last = indents.last, last > indent { indents.removeLast() }
                if indents.last != indent { indents.append(indent) }
            }
            var index = indent
            var compact = 0
            while index + 1 < scalars.count, scalars[index] == "-" || scalars[index] == "?", isBlank(scalars[index + 1]) {
                if scalars[index] == "?" && quote == nil {
                    return Diagnostic(.yamlSyntax, at: at(index),
                        "explicit mapping keys (`? `) are not supported in pipeline files; write `key: value`")
                }
                compact += 1
                index += 2
                while index < scalars.count, scalars[index] == " " { index += 1 }
            }
            if indents.count + compact + flowDepth > maxDepth {
                return Diagnostic(.inputLimit, at: at(indent),
                    "values nest deeper than \(maxDepth) levels; pipeline files may not")
            }

            var previous: Unicode.Scalar = " "
            while index < scalars.count {
                let scalar = scalars[index]
                if let open = quote {
                    if open == "\"" && scalar == "\\" {
                        index += 2
                        continue
                    }
                    if scalar == open {
                        if open == "'", index + 1 < scalars.count, scalars[index + 1] == "'" {
                            index += 2
                            continue
                        }
                        quote = nil
                    }
                    previous = scalar
                    index += 1
                    continue
                }
                let atTokenStart = isBlank(previous) || "[{,".unicodeScalars.contains(previous)
                    || (previous == ":" && flowDepth > 0)
                switch scalar {
                case "#" where isBlank(previous):
                    index = scalars.count
                    continue
                case "\"" where atTokenStart, "'" where atTokenStart:
                    quote = scalar
                case "[" where atTokenStart, "{" where atTokenStart:
                    flowDepth += 1
                    aliasInOpenFlow.append(false)
                    if indents.count + compact + flowDepth > maxDepth {
                        return Diagnostic(.inputLimit, at: at(index),
                            "values nest deeper than \(maxDepth) levels; pipeline files may not")
                    }
                case "]" where flowDepth > 0, "}" where flowDepth > 0:
                    flowDepth -= 1
                    let heldAlias = aliasInOpenFlow.popLast() ?? false
                    if heldAlias {
                        var next = index + 1
                        while next < scalars.count, isBlank(scalars[next]) { next += 1 }
                        if next < scalars.count, scalars[next] == ":" {
                            return Diagnostic(.yamlSyntax, at: at(index),
                                "a collection holding an alias is used as a mapping key; pipeline files use plain keys")
                        }
                        if !aliasInOpenFlow.isEmpty { aliasInOpenFlow[aliasInOpenFlow.count - 1] = true }
                    }
                case "*" where atTokenStart:
                    var next = index + 1
                    // libyaml's anchor names: letters, digits, `-` and `_`.
                    while next < scalars.count, scalars[next].properties.isAlphabetic || ("0"..."9").contains(scalars[next])
                            || scalars[next] == "-" || scalars[next] == "_" {
                        next += 1
                    }
                    var after = next
                    while after < scalars.count, isBlank(scalars[after]) { after += 1 }
                    if after < scalars.count, scalars[after] == ":" {
                        return Diagnostic(.yamlSyntax, at: at(index),
                            "an alias is used as a mapping key; pipeline files use plain keys")
                    }
                    if !aliasInOpenFlow.isEmpty { aliasInOpenFlow[aliasInOpenFlow.count - 1] = true }
                default:
                    break
                }
                previous = scalar
                index += 1
            }
            // `key: |`, `- >-`, `key: |2+` start a block scalar: the lines indented deeper are text.
            if quote == nil, flowDepth == 0, endsWithBlockScalarHeader(scalars) {
                blockScalarParentIndent = indent
            }
        }
        return nil
    }

    /// Whether a line ends with a block scalar indicator (`|` or `>` with optional chomping and
    /// indentation indicators), ignoring a trailing comment.
    private static func endsWithBlockScalarHeader(_ scalars: [Unicode.Scalar]) -> Bool {
        var end = scalars.count
        // Drop a trailing comment: ` #...`.
        var index = 0
        while index < scalars.count {
            if scalars[index] == "#", index > 0, scalars[index - 1] == " " || scalars[index - 1] == "\t" {
                end = index
                break
            }
            index += 1
        }
        var tokenEnd = end
        while tokenEnd > 0, scalars[tokenEnd - 1] == " " || scalars[tokenEnd - 1] == "\t" || scalars[tokenEnd - 1] == "\r" {
            tokenEnd -= 1
        }
        var tokenStart = tokenEnd
        while tokenStart > 0, scalars[tokenStart - 1] != " " && scalars[tokenStart - 1] != "\t" { tokenStart -= 1 }
        guard tokenStart < tokenEnd else { return false }
        let token = scalars[tokenStart..<tokenEnd]
        guard let first = token.first, first == "|" || first == ">" else { return false }
        guard token.dropFirst().allSatisfy({ $0 == "-" || $0 == "+" || ("1"..."9").contains($0) }) else { return false }
        // The indicator must follow `key:` or `- ` (or start the line).
        let before = scalars[..<tokenStart].reversed().first { $0 != " " && $0 != "\t" }
        return before == nil || before == ":" || before == "-"
    }
}
