#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a JSON scan stopped before the end of what it was scanning.
enum JSONStop: Error {
    /// The buffer ends before the token does, and more input may follow: refill and retry.
    case needMore
    case malformed(at: Int, String)
    case invalidUTF8(at: Int, byte: UInt8)
}

/// A byte-level JSON scanner (RFC 8259) over `text[index..<end]`. It validates as it goes
/// (strings' escapes and UTF-8, numbers' grammar, nesting) and reports where values lie; it
/// builds no values itself. When `isFinal` is false, running off `end` means "more bytes may
/// come" (``JSONStop/needMore``); when true, it is an error.
struct JSONScanner {
    /// Objects and arrays nest at most this deep, so that skipping a value can't exhaust the stack.
    static let maxDepth = 512

    let text: UnsafePointer<UInt8>
    let end: Int
    let isFinal: Bool
    /// What ends at `end` when it is final, for messages: "file" or "line".
    let endName: String
    var index: Int
    /// Line breaks passed since the scan started, and the index where the last one ended.
    var lineBreaks = 0
    var lineStart = 0

    init(text: UnsafePointer<UInt8>, end: Int, isFinal: Bool, endName: String, index: Int) {
        self.text = text
        self.end = end
        self.isFinal = isFinal
        self.endName = endName
        self.index = index
    }

    // MARK: Tokens

    mutating func skipWhitespace() {
        while index < end {
            let byte = text[index]
            if byte == 0x20 || byte == 0x09 || byte == 0x0D {
                index += 1
            } else if byte == 0x0A {
                index += 1
                lineBreaks += 1
                lineStart = index
            } else {
                return
            }
        }
    }

    /// The next byte after whitespace, not consumed.
    mutating func peek(expecting expected: String) throws(JSONStop) -> UInt8 {
        skipWhitespace()
        guard index < end else { throw ranOut(expecting: expected) }
        return text[index]
    }

    /// Consumes `byte` after whitespace, or fails saying what was expected.
    mutating func expect(_ byte: UInt8, _ expected: String) throws(JSONStop) {
        let found = try peek(expecting: expected)
        guard found == byte else { throw unexpected(expected: expected) }
        index += 1
    }

    func ranOut(expecting expected: String) -> JSONStop {
        isFinal ? .malformed(at: index, "the \(endName) ends where \(expected) was expected") : .needMore
    }

    /// The error for the byte at `index` when something else was expected.
    func unexpected(expected: String) -> JSONStop {
        let byte = text[index]
        if byte >= 0x80, TextPosition.sequenceLength(text + index, available: end - index) == 0 {
            if !isFinal, TextPosition.couldContinue(text + index, available: end - index) { return .needMore }
            return .invalidUTF8(at: index, byte: byte)
        }
        return .malformed(at: index, "expected \(expected), found \(describe(at: index))")
    }

    /// Names the token starting at `at` for a message.
    func describe(at position: Int) -> String {
        switch text[position] {
        case UInt8(ascii: "{"): return "an object"
        case UInt8(ascii: "["): return "an array"
        case UInt8(ascii: "\""): return "a string"
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return "a number"
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return "a boolean"
        case UInt8(ascii: "n"): return "null"
        case 0x21...0x7E: return "'\(Character(Unicode.Scalar(text[position])))'"
        case let byte where byte >= 0x80:
            let length = TextPosition.sequenceLength(text + position, available: end - position)
            if length > 0 {
                return "'\(String(decoding: UnsafeBufferPointer(start: text + position, count: length), as: UTF8.self))'"
            }
            return "byte 0x\(String(byte, radix: 16, uppercase: true))"
        case let byte: return "byte 0x\(byte < 0x10 ? "0" : "")\(String(byte, radix: 16, uppercase: true))"
        }
    }

    /// Scans a string at `index` (its opening quote) and returns where its content lies and
    /// whether it holds escapes.
    mutating func scanString() throws(JSONStop) -> (start: Int, end: Int, escaped: Bool) {
        let open = index
        index += 1
        let start = index
        var escaped = false
        let raw = UnsafeRawPointer(text)
        while true {
            // Eight bytes at a time up to the first quote, backslash, control or non-ASCII byte.
            while index + 8 <= end {
                let word = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: index, as: UInt64.self))
                let low7: UInt64 = 0x7F7F_7F7F_7F7F_7F7F, high: UInt64 = 0x8080_8080_8080_8080
                let quotes = word ^ 0x2222_2222_2222_2222, backslashes = word ^ 0x5C5C_5C5C_5C5C_5C5C
                // The high bit of each byte that is zero, below 0x20, or not ASCII; the lowest is exact.
                let special =
                    ~(((quotes & low7) &+ low7) | quotes | low7) | ~(((backslashes & low7) &+ low7) | backslashes | low7)
                    | ((word &- 0x2020_2020_2020_2020) & ~word & high) | (word & high)
                if special != 0 {
                    index += special.trailingZeroBitCount >> 3
                    break
                }
                index += 8
            }
            while index < end {
                let byte = text[index]
                if byte == 0x22 || byte == 0x5C || byte < 0x20 || byte >= 0x80 { break }
                index += 1
            }
            guard index < end else {
                throw isFinal ? .malformed(at: open, "a string starting here is not closed before the \(endName) ends") : .needMore
            }
            let byte = text[index]
            if byte == 0x22 {
                index += 1
                return (start, index - 1, escaped)
            }
            if byte == 0x5C {
                escaped = true
                guard index + 1 < end else { throw ranOut(expecting: "an escape") }
                switch text[index + 1] {
                case 0x22, 0x5C, 0x2F, UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    index += 2
                case UInt8(ascii: "u"):
                    for offset in 2..<6 {
                        guard index + offset < end else { throw ranOut(expecting: "4 hex digits after \\u") }
                        guard Self.hexValue(text[index + offset]) != nil else {
                            throw .malformed(at: index, "\\u must be followed by 4 hex digits")
                        }
                    }
                    index += 6
                default:
                    throw .malformed(at: index, "invalid escape in a string: \\ followed by \(describe(at: index + 1))")
                }
            } else if byte < 0x20 {
                throw .malformed(
                    at: index,
                    byte == 0x0A || byte == 0x0D
                        ? "a line break inside a string (write it as \\n)"
                        : "control character 0x\(String(byte, radix: 16, uppercase: true)) inside a string must be escaped")
            } else {
                let length = TextPosition.sequenceLength(text + index, available: end - index)
                if length == 0 {
                    if !isFinal, TextPosition.couldContinue(text + index, available: end - index) { throw .needMore }
                    throw .invalidUTF8(at: index, byte: byte)
                }
                index += length
            }
        }
    }

    /// Scans a number at `index` and returns where it ends.
    mutating func scanNumber() throws(JSONStop) -> Int {
        if text[index] == UInt8(ascii: "-") { index += 1 }
        guard index < end else { throw ranOut(expecting: "a digit") }
        if text[index] == UInt8(ascii: "0") {
            index += 1
        } else {
            try digits()
        }
        if index < end, text[index] == UInt8(ascii: ".") {
            index += 1
            try digits()
        }
        if index < end, text[index] | 0x20 == UInt8(ascii: "e") {
            index += 1
            if index < end, text[index] == UInt8(ascii: "+") || text[index] == UInt8(ascii: "-") { index += 1 }
            try digits()
        }
        // The number could go on in the next chunk.
        if index == end, !isFinal { throw .needMore }
        return index
    }

    private mutating func digits() throws(JSONStop) {
        guard index < end else { throw ranOut(expecting: "a digit") }
        guard text[index] &- 0x30 < 10 else { throw unexpected(expected: "a digit") }
        while index < end, text[index] &- 0x30 < 10 { index += 1 }
    }

    /// Scans `true`, `false` or `null` at `index`.
    mutating func scanLiteral() throws(JSONStop) -> FieldSpan.Kind {
        let (word, kind): (StaticString, FieldSpan.Kind) =
            switch text[index] {
            case UInt8(ascii: "t"): ("true", .boolTrue)
            case UInt8(ascii: "f"): ("false", .boolFalse)
            default: ("null", .null)
            }
        let start = index
        for offset in 0..<word.utf8CodeUnitCount {
            guard start + offset < end else { throw ranOut(expecting: "'\(word)'") }
            guard text[start + offset] == word.utf8Start[offset] else {
                throw .malformed(at: start, "expected a value (a string, number, object, array, true, false or null)")
            }
        }
        index = start + word.utf8CodeUnitCount
        return kind
    }

    /// Scans any value at `index` (after whitespace) and says what it was.
    mutating func skipValue(depth: Int = 0) throws(JSONStop) -> FieldSpan.Kind {
        let byte = try peek(expecting: "a value")
        switch byte {
        case 0x22:
            _ = try scanString()
            return .quoted
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            _ = try scanNumber()
            return .number
        case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
            return try scanLiteral()
        case UInt8(ascii: "{"):
            guard depth < Self.maxDepth else { throw .malformed(at: index, "values nest more than \(Self.maxDepth) levels deep") }
            index += 1
            if try peek(expecting: "a key or '}'") == UInt8(ascii: "}") {
                index += 1
                return .container
            }
            while true {
                try scanKey()
                _ = try skipValue(depth: depth + 1)
                let next = try peek(expecting: "',' or '}'")
                guard next == UInt8(ascii: ",") || next == UInt8(ascii: "}") else { throw unexpected(expected: "',' or '}'") }
                index += 1
                if next == UInt8(ascii: "}") { return .container }
            }
        case UInt8(ascii: "["):
            guard depth < Self.maxDepth else { throw .malformed(at: index, "values nest more than \(Self.maxDepth) levels deep") }
            index += 1
            if try peek(expecting: "a value or ']'") == UInt8(ascii: "]") {
                index += 1
                return .container
            }
            while true {
                _ = try skipValue(depth: depth + 1)
                let next = try peek(expecting: "',' or ']'")
                guard next == UInt8(ascii: ",") || next == UInt8(ascii: "]") else { throw unexpected(expected: "',' or ']'") }
                index += 1
                if next == UInt8(ascii: "]") { return .container }
            }
        default:
            throw unexpected(expected: "a value (a string, number, object, array, true, false or null)")
        }
    }

    /// Scans `"key" :` and returns where the key's content lies.
    @discardableResult
    mutating func scanKey() throws(JSONStop) -> (start: Int, end: Int, escaped: Bool) {
        guard try peek(expecting: "a key") == 0x22 else { throw unexpected(expected: "a key in double quotes") }
        let key = try scanString()
        try expect(UInt8(ascii: ":"), "':' after the key")
        return key
    }

    // MARK: Records

    /// Scans the object at `index` as one record: the values of the keys `fields` knows are
    /// written over the record's spans `builder.fields[firstField...]` (already there, as
    /// missing), relative to where the record's raw bytes will land (`base`); other keys are
    /// skipped. A key given twice keeps its last value.
    mutating func scanRecord(
        fields: FieldMatcher, firstField: Int, recordStart: Int, base: Int,
        into builder: inout BatchBuilder
    ) throws(JSONStop) {
        index += 1
        if try peek(expecting: "a key or '}'") == UInt8(ascii: "}") {
            index += 1
            return
        }
        var hint = 0
        while true {
            let key = try scanKey()
            let found = fields.index(
                of: UnsafeBufferPointer(start: text + key.start, count: key.end - key.start),
                escaped: key.escaped, hint: hint)
            let first = try peek(expecting: "a value")
            let start = index
            if let found {
                hint = found + 1
                var span = FieldSpan(start: 0, end: 0, rawOffset: UInt32(start - recordStart), kind: .quoted)
                let valueEnd: Int
                var contentStart = start
                if first == 0x22 {
                    let string = try scanString()
                    contentStart = string.start
                    valueEnd = string.end
                    span.escaped = string.escaped
                    span.kind = .string
                } else {
                    span.kind = try skipValue(depth: 1)
                    valueEnd = index
                }
                span.start = UInt32(base + contentStart - recordStart)
                span.end = UInt32(base + valueEnd - recordStart)
                builder.fields[firstField + found] = span
            } else {
                _ = try skipValue(depth: 1)
            }
            let next = try peek(expecting: "',' or '}'")
            guard next == UInt8(ascii: ",") || next == UInt8(ascii: "}") else { throw unexpected(expected: "',' or '}'") }
            index += 1
            if next == UInt8(ascii: "}") { return }
        }
    }

    // MARK: Unescaping

    /// A `\u0000` escape in a scanned (so well-formed) record makes it a bad row: no text
    /// holds a NUL, and the warehouse would keep only what comes before it. Backslashes occur
    /// only inside strings, each starting an escape.
    static func nulIssue(_ text: UnsafePointer<UInt8>, from start: Int, to end: Int) -> RecordIssue? {
        var index = start
        while index < end {
            guard let found = memchr(text + index, 0x5C, end - index) else { return nil }
            let at = UnsafePointer<UInt8>(found.assumingMemoryBound(to: UInt8.self)) - text
            if at + 5 < end, text[at + 1] == UInt8(ascii: "u"), (2...5).allSatisfy({ text[at + $0] == UInt8(ascii: "0") }) {
                return RecordIssue(offset: at - start, message: "a NUL character (\\u0000), which no text holds")
            }
            index = at + 2
        }
        return nil
    }

    /// A scanned string's content with its escapes resolved.
    static func unescaped(_ content: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var buffer = ByteBuffer<UInt8>(capacity: content.count)
        defer { buffer.deallocate() }
        unescape(content, into: &buffer)
        return Array(buffer.buffer(0..<buffer.count))
    }

    static func hexValue(_ byte: UInt8) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    /// Appends the content of a scanned (so well-formed) string with its escapes resolved. A
    /// `\u` escape of a lone surrogate, which UTF-8 can't hold, becomes U+FFFD.
    static func unescape(_ content: UnsafeBufferPointer<UInt8>, into output: inout ByteBuffer<UInt8>) {
        var index = 0
        func hex4(_ at: Int) -> UInt32 {
            (0..<4).reduce(0) { $0 << 4 | (hexValue(content[at + $1]) ?? 0) }
        }
        while index < content.count {
            let byte = content[index]
            guard byte == 0x5C else {
                output.append(byte)
                index += 1
                continue
            }
            let escape = content[index + 1]
            index += 2
            switch escape {
            case UInt8(ascii: "b"): output.append(0x08)
            case UInt8(ascii: "f"): output.append(0x0C)
            case UInt8(ascii: "n"): output.append(0x0A)
            case UInt8(ascii: "r"): output.append(0x0D)
            case UInt8(ascii: "t"): output.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = hex4(index)
                index += 4
                if (0xD800...0xDBFF).contains(scalar), index + 6 <= content.count,
                    content[index] == 0x5C, content[index + 1] == UInt8(ascii: "u")
                {
                    let low = hex4(index + 2)
                    if (0xDC00...0xDFFF).contains(low) {
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        index += 6
                    }
                }
                for byte in String(Unicode.Scalar(scalar) ?? "\u{FFFD}").utf8 { output.append(byte) }
            default: output.append(escape)
            }
        }
    }
}

/// Finds a JSON key among the fields a reader picks out, by its bytes.
struct FieldMatcher: Sendable {
    private let names: [[UInt8]]

    init(_ fields: [String]) {
        names = fields.map { Array($0.utf8) }
    }

    /// The field whose name is `key`; `hint` is where to look first (keys tend to come in the
    /// same order in every record).
    func index(of key: UnsafeBufferPointer<UInt8>, escaped: Bool, hint: Int) -> Int? {
        if escaped {
            return JSONScanner.unescaped(key).withUnsafeBufferPointer { index(of: $0, escaped: false, hint: hint) }
        }
        if hint < names.count, matches(names[hint], key) { return hint }
        for (index, name) in names.enumerated() where matches(name, key) {
            return index
        }
        return nil
    }

    private func matches(_ name: [UInt8], _ key: UnsafeBufferPointer<UInt8>) -> Bool {
        guard name.count == key.count else { return false }
        return name.withUnsafeBufferPointer { name in
            for index in 0..<name.count where name[index] != key[index] {
                return false
            }
            return true
        }
    }
}
