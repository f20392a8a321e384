import Foundation
import SluiceModel

/// Reads a JSON array of objects element by element, never holding more than the current
/// batch: either the document itself is the array, or `items` is a JSON pointer (RFC 6901,
/// e.g. `/data` or `/result/items`) to the array inside objects. Everything around the array
/// is checked and skipped as it streams past, so a truncated or broken document fails even
/// after its last record.
///
/// Each record holds the values of the keys named by `fields` (``SourceValue/missing`` where
/// a key is absent). Errors that stop the read: broken JSON (`malformed_json`), invalid UTF-8
/// (`invalid_utf8`), an empty file (`empty_input`), no array at `items` (`missing_items`). An
/// element that is not an object is returned with an issue and becomes a bad row.
public struct JSONArrayReader: RecordReader {
    public let fields: [String]
    public var file: String { stream.input.file }
    public var bytesRead: Int { stream.input.bytesRead }

    private var stream: JSONStream
    private let matcher: FieldMatcher
    /// Objects around the array, whose remaining members are read after it.
    private var enclosingObjects = 0
    private var state = State.firstElement
    /// The last batch handed out, whose memory the next one reuses once it's released.
    private var previousBatch: RecordBatch?

    private enum State {
        case firstElement, nextElement, finished
    }

    /// Opens `path` and streams up to the first element of the array. `file` names it in
    /// messages (default: `path`); `fields` are the keys to read, usually
    /// ``RowTyper/sourceFields(schema:rename:)``; `items` points at the array (nil or "" for
    /// the whole document).
    public init(path: String, file: String? = nil, fields: [String], items: String? = nil) throws(StepFailure) {
        try self.init(input: try InputFile(path: path, file: file ?? path), fields: fields, items: items)
    }

    /// Reads `input`: a file `InputPath` opened, or a page of an HTTP API held in memory.
    init(input: InputFile, fields: [String], items: String?) throws(StepFailure) {
        self.fields = fields
        matcher = FieldMatcher(fields)
        var position = try input.skipByteOrderMark()
        var line = 1
        try JSONLinesReader.skipLeadingWhitespace(input, &position, &line, file: input.file)
        stream = JSONStream(input: input, index: position, line: line)
        try openArray(pointer: items ?? "")
    }

    /// Walks the pointer's keys down to the array and consumes its `[`.
    private mutating func openArray(pointer: String) throws(StepFailure) {
        let segments = try Self.segments(of: pointer, file: file)
        for (depth, segment) in segments.enumerated() {
            let within = "/" + segments[..<depth].map(Self.escapePointer).joined(separator: "/")
            try stream.scan { $0.skipWhitespace() }
            let objectAt = stream.location()
            let hasMembers = try stream.scan { scanner throws(JSONStop) in
                guard try scanner.peek(expecting: "an object") == UInt8(ascii: "{") else {
                    throw .malformed(
                        at: scanner.index,
                        "items is \(pointer), so \(depth == 0 ? "the document" : within) must be an object, but it is \(scanner.describe(at: scanner.index))"
                    )
                }
                scanner.index += 1
                if try scanner.peek(expecting: "a key or '}'") == UInt8(ascii: "}") {
                    scanner.index += 1
                    return false
                }
                return true
            }
            var found = false
            if hasMembers {
                while true {
                    let key = try stream.readKey()
                    if key == Array(segment.utf8) {
                        found = true
                        break
                    }
                    try stream.skipValue()
                    if try !stream.nextMember(closing: UInt8(ascii: "}")) { break }
                }
            }
            guard found else {
                throw StepFailure(
                    .missingItems, "the object here has no key '\(segment)', so there is no array at \(pointer) (items)",
                    at: objectAt)
            }
            enclosingObjects += 1
        }
        try stream.scan { scanner throws(JSONStop) in
            guard try scanner.peek(expecting: "an array") == UInt8(ascii: "[") else {
                throw .malformed(
                    at: scanner.index,
                    pointer.isEmpty
                        ? "expected a JSON array of objects, found \(scanner.describe(at: scanner.index)) (set items to the JSON pointer of the array inside it, e.g. /data)"
                        : "expected an array of objects at \(pointer) (items), found \(scanner.describe(at: scanner.index))")
            }
            scanner.index += 1
        }
    }

    public mutating func next(limit: Int) throws(StepFailure) -> [RawRecord] {
        var builder = BatchBuilder(reusing: &previousBatch)
        while builder.recordCount < max(limit, 1), !builder.isFull, state != .finished {
            let first = state == .firstElement
            let more = try stream.scan { scanner throws(JSONStop) in
                let byte = try scanner.peek(expecting: first ? "an object or ']'" : "',' or ']'")
                if byte == UInt8(ascii: "]") {
                    scanner.index += 1
                    return false
                }
                if !first {
                    guard byte == UInt8(ascii: ",") else { throw scanner.unexpected(expected: "',' or ']' after an element of the array") }
                    scanner.index += 1
                    scanner.skipWhitespace()
                }
                return true
            }
            guard more else {
                try finishDocument()
                state = .finished
                break
            }
            state = .nextElement
            try readElement(into: &builder)
        }
        let (records, batch) = builder.finish()
        previousBatch = batch
        return records
    }

    /// Reads one element (its start is where the stream stands, past whitespace) as a record.
    private mutating func readElement(into builder: inout BatchBuilder) throws(StepFailure) {
        let (line, column) = stream.lineAndColumn()
        let firstField = builder.fields.count
        let fieldCount = fields.count
        let matcher = self.matcher
        let (start, issue) = try stream.scan { scanner throws(JSONStop) -> (Int, RecordIssue?) in
            builder.fields.removeLast(builder.fields.count - firstField)
            builder.fields.append(repeating: .missing, count: fieldCount)
            _ = try scanner.peek(expecting: "an object")
            let start = scanner.index
            if scanner.text[start] == UInt8(ascii: "{") {
                try scanner.scanRecord(
                    fields: matcher, firstField: firstField, recordStart: start, base: builder.bytes.count,
                    into: &builder)
                return (start, nil)
            }
            let kind = try scanner.skipValue()
            return (start, RecordIssue(offset: 0, message: "expected a JSON object, found \(kind.name)"))
        }
        builder.addRecord(
            text: stream.input.base, start: start, end: stream.index, firstField: firstField, line: line,
            column: column, issue: issue ?? JSONScanner.nulIssue(stream.input.base, from: start, to: stream.index),
            unescape: JSONScanner.unescape)
    }

    /// Reads what follows the array: the rest of the objects around it, then nothing but
    /// whitespace.
    private mutating func finishDocument() throws(StepFailure) {
        for _ in 0..<enclosingObjects {
            while try stream.nextMember(closing: UInt8(ascii: "}")) {
                _ = try stream.readKey()
                try stream.skipValue()
            }
        }
        enclosingObjects = 0
        try stream.expectEnd()
    }

    /// The keys of a JSON pointer, unescaped (`~1` is `/`, `~0` is `~`).
    static func segments(of pointer: String, file: String) throws(StepFailure) -> [String] {
        guard !pointer.isEmpty else { return [] }
        guard pointer.hasPrefix("/") else {
            throw StepFailure.config("items must be a JSON pointer starting with '/', like /data, not '\(pointer)'")
        }
        return pointer.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map {
            $0.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
        }
    }

    static func escapePointer(_ key: String) -> String {
        key.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
    }
}

/// A JSON document read token by token through a refilled buffer: each scan runs from the last
/// committed index, and when it runs off the buffer the buffer is refilled (keeping the bytes
/// from that index) and the scan starts over. Only the token or record being scanned stays in
/// memory.
struct JSONStream {
    let input: InputFile
    /// Where the next scan starts.
    private(set) var index: Int
    /// Line of `index`, and the buffer index where that line starts (negative once the start
    /// has been dropped from the buffer).
    private var line: Int
    private var lineStart: Int
    /// Characters from `lineStart` up to `columnIndex` (≥ `lineStart`, inside the buffer): the
    /// column of any later index on the line is counted from there, so columns cost O(1)
    /// amortized even on a one-line document.
    private var columnIndex: Int
    private var columnCount = 0

    init(input: InputFile, index: Int, line: Int) {
        self.input = input
        self.index = index
        self.line = line
        lineStart = index
        columnIndex = index
    }

    /// Runs `body` on a scanner at `index`; on success the scanner's position is committed.
    mutating func scan<T>(_ body: (inout JSONScanner) throws(JSONStop) -> T) throws(StepFailure) -> T {
        while true {
            var scanner = JSONScanner(text: input.base, end: input.count, isFinal: input.atEnd, endName: "file", index: index)
            do throws(JSONStop) {
                let result = try body(&scanner)
                commit(scanner)
                return result
            } catch {
                switch error {
                case .needMore:
                    try refill()
                case .malformed(let at, let message):
                    throw StepFailure(.malformedJson, message, at: location(of: at, in: scanner))
                case .invalidUTF8(let at, let byte):
                    throw StepFailure(
                        .invalidUTF8, "byte 0x\(String(byte, radix: 16, uppercase: true)) is not valid UTF-8 (the file must be UTF-8 text)",
                        at: location(of: at, in: scanner))
                }
            }
        }
    }

    private mutating func commit(_ scanner: JSONScanner) {
        index = scanner.index
        if scanner.lineBreaks > 0 {
            line += scanner.lineBreaks
            lineStart = scanner.lineStart
            columnIndex = lineStart
            columnCount = 0
        }
    }

    private mutating func refill() throws(StepFailure) {
        if columnIndex < index {
            columnCount += TextPosition.scalars(input.base + columnIndex, count: index - columnIndex)
            columnIndex = index
        }
        let keep = index
        guard try input.refill(keeping: keep) else {
            throw StepFailure(
                .recordTooLarge, "the value starting here is longer than \(InputFile.maxRecordBytes >> 20) MiB",
                at: location())
        }
        index -= keep
        lineStart -= keep
        columnIndex -= keep
    }

    /// Line and column of `index`.
    mutating func lineAndColumn() -> (line: Int, column: Int) {
        columnCount += TextPosition.scalars(input.base + columnIndex, count: index - columnIndex)
        columnIndex = index
        return (line, 1 + columnCount)
    }

    mutating func location() -> SourceLocation {
        let (line, column) = lineAndColumn()
        return SourceLocation(file: input.file, line: line, column: column)
    }

    /// The location of buffer index `at`, found by `scanner` (which may have passed lines).
    private func location(of at: Int, in scanner: JSONScanner) -> SourceLocation {
        if scanner.lineBreaks > 0, at >= scanner.lineStart {
            let column = 1 + TextPosition.scalars(input.base + scanner.lineStart, count: at - scanner.lineStart)
            return SourceLocation(file: input.file, line: line + scanner.lineBreaks, column: column)
        }
        let column =
            at >= columnIndex
            ? 1 + columnCount + TextPosition.scalars(input.base + columnIndex, count: at - columnIndex)
            : 1 + columnCount - TextPosition.scalars(input.base + at, count: columnIndex - at)
        return SourceLocation(file: input.file, line: line, column: column)
    }

    /// Reads `"key":` and returns the key, unescaped.
    mutating func readKey() throws(StepFailure) -> [UInt8] {
        try scan { scanner throws(JSONStop) in
            let key = try scanner.scanKey()
            let content = UnsafeBufferPointer(start: scanner.text + key.start, count: key.end - key.start)
            guard key.escaped else { return Array(content) }
            return JSONScanner.unescaped(content)
        }
    }

    /// After a member or element: consumes `,` (true: another follows) or `closing` (false).
    mutating func nextMember(closing: UInt8) throws(StepFailure) -> Bool {
        try scan { scanner throws(JSONStop) in
            let expected = closing == UInt8(ascii: "}") ? "',' or '}'" : "',' or ']'"
            let byte = try scanner.peek(expecting: expected)
            guard byte == UInt8(ascii: ",") || byte == closing else { throw scanner.unexpected(expected: expected) }
            scanner.index += 1
            return byte == UInt8(ascii: ",")
        }
    }

    /// Skips one value of any size token by token, checking it, so that only one token at a
    /// time is held.
    mutating func skipValue() throws(StepFailure) {
        // Each open container and whether it is an object.
        var open: [Bool] = []
        repeat {
            let opened: Bool? = try scan { scanner throws(JSONStop) in
                let byte = try scanner.peek(expecting: "a value")
                guard byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") else {
                    _ = try scanner.skipValue()
                    return nil
                }
                scanner.index += 1
                return byte == UInt8(ascii: "{")
            }
            if let isObject = opened {
                guard open.count < JSONScanner.maxDepth else {
                    throw StepFailure(.malformedJson, "values nest more than \(JSONScanner.maxDepth) levels deep", at: location())
                }
                let empty = try scan { scanner throws(JSONStop) in
                    let closing = isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")
                    guard try scanner.peek(expecting: isObject ? "a key or '}'" : "a value or ']'") == closing else { return false }
                    scanner.index += 1
                    return true
                }
                if !empty {
                    open.append(isObject)
                    if isObject { _ = try readKey() }
                    continue
                }
            }
            // A value ended: close the containers it ends, then go on to the next value.
            while let isObject = open.last {
                if try nextMember(closing: isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                    if isObject { _ = try readKey() }
                    break
                }
                open.removeLast()
            }
        } while !open.isEmpty
    }

    /// Checks nothing but whitespace follows.
    mutating func expectEnd() throws(StepFailure) {
        while true {
            let done = try scan { scanner throws(JSONStop) in
                scanner.skipWhitespace()
                if scanner.index < scanner.end {
                    throw .malformed(
                        at: scanner.index, "expected the end of the file after the JSON document, found \(scanner.describe(at: scanner.index))")
                }
                return scanner.isFinal
            }
            if done { return }
            try refill()
        }
    }
}
