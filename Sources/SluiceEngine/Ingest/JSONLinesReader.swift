import SluiceModel

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads JSON Lines: one JSON object per line (LF or CRLF), blank lines skipped. Each record
/// holds the values of the keys named by `fields` (``SourceValue/missing`` where a key is
/// absent); other keys are checked and skipped.
///
/// Broken JSON on a line stops the read (`malformed_json`, at the line and column of the
/// problem), as do invalid UTF-8 (`invalid_utf8`) and an empty file (`empty_input`). A line
/// that holds valid JSON but not an object is returned with an issue and becomes a bad row.
public struct JSONLinesReader: RecordReader {
    public let fields: [String]
    public var file: String { input.file }
    public var bytesRead: Int { input.bytesRead }

    private let input: InputFile
    private let matcher: FieldMatcher
    private var position: Int
    private var line = 1
    private var finished = false
    /// The last batch handed out, whose memory the next one reuses once it's released.
    private var previousBatch: RecordBatch?

    /// Opens `path`; `file` names it in messages (default: `path`). `fields` are the keys to
    /// read, usually ``RowTyper/sourceFields(schema:rename:)``.
    public init(path: String, file: String? = nil, fields: [String]) throws(StepFailure) {
        try self.init(input: try InputFile(path: path, file: file ?? path), fields: fields)
    }

    /// Reads `input` (a file `InputPath` opened); its first line is numbered `firstLine` (a
    /// later part of a longer text).
    init(input: InputFile, fields: [String], firstLine: Int = 1) throws(StepFailure) {
        self.fields = fields
        matcher = FieldMatcher(fields)
        self.input = input
        line = firstLine
        position = try input.skipByteOrderMark()
        try JSONLinesReader.skipLeadingWhitespace(input, &position, &line, file: input.file)
    }

    /// Moves past whitespace before the first value, failing with `empty_input` when there is
    /// nothing else; a blank prefix counts lines.
    static func skipLeadingWhitespace(_ input: InputFile, _ position: inout Int, _ line: inout Int, file: String) throws(StepFailure) {
        while true {
            while position < input.count {
                let byte = input.base[position]
                guard byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0A else { return }
                if byte == 0x0A { line += 1 }
                position += 1
            }
            if input.atEnd {
                throw StepFailure(.emptyInput, "\(file) is empty: it holds no JSON", at: .start(of: file))
            }
            // Everything in the buffer was whitespace; the line counted so far stays right.
            _ = try input.refill(keeping: position)
            position = 0
        }
    }

    public mutating func next(limit: Int) throws(StepFailure) -> [RawRecord] {
        var builder = BatchBuilder(reusing: &previousBatch)
        while builder.recordCount < max(limit, 1), !builder.isFull, !finished {
            let lineEnd: Int
            let next: Int
            if let found = memchr(input.base + position, 0x0A, input.count - position) {
                lineEnd = UnsafeMutablePointer<UInt8>(found.assumingMemoryBound(to: UInt8.self)) - input.base
                next = lineEnd + 1
            } else if !input.atEnd {
                guard try input.refill(keeping: position) else {
                    throw StepFailure(
                        .recordTooLarge, "the line is longer than \(InputFile.maxRecordBytes >> 20) MiB",
                        at: SourceLocation(file: file, line: line, column: 1))
                }
                position = 0
                continue
            } else if position == input.count {
                finished = true
                break
            } else {
                lineEnd = input.count
                next = input.count
            }
            var contentEnd = lineEnd
            if contentEnd > position, input.base[contentEnd - 1] == 0x0D { contentEnd -= 1 }
            try scanLine(from: position, to: contentEnd, into: &builder)
            line += 1
            position = next
        }
        let (records, batch) = builder.finish()
        previousBatch = batch
        return records
    }

    /// Scans one line holding one JSON value into `builder` (nothing for a blank line).
    private func scanLine(from start: Int, to end: Int, into builder: inout BatchBuilder) throws(StepFailure) {
        var scanner = JSONScanner(text: input.base, end: end, isFinal: true, endName: "line", index: start)
        let firstField = builder.fields.count
        var issue: RecordIssue?
        do throws(JSONStop) {
            scanner.skipWhitespace()
            if scanner.index == end { return }
            builder.fields.append(repeating: .missing, count: fields.count)
            if input.base[scanner.index] == UInt8(ascii: "{") {
                try scanner.scanRecord(
                    fields: matcher, firstField: firstField, recordStart: start, base: builder.bytes.count,
                    into: &builder)
            } else {
                let valueStart = scanner.index
                let kind = try scanner.skipValue()
                issue = RecordIssue(offset: valueStart - start, message: "expected a JSON object, found \(kind.name)")
            }
            scanner.skipWhitespace()
            if scanner.index < end {
                throw .malformed(
                    at: scanner.index,
                    "expected the end of the line after the object, found \(scanner.describe(at: scanner.index)) (JSON Lines holds one object per line)"
                )
            }
        } catch {
            throw failure(error, lineStart: start)
        }
        builder.addRecord(
            text: input.base, start: start, end: end, firstField: firstField, line: line, column: 1,
            issue: issue ?? JSONScanner.nulIssue(input.base, from: start, to: end), unescape: JSONScanner.unescape)
    }

    private func failure(_ stop: JSONStop, lineStart: Int) -> StepFailure {
        let (index, code, message): (Int, String, String) =
            switch stop {
            case .needMore: (lineStart, "malformed_json", "the line ends early")
            case .malformed(let at, let message): (at, "malformed_json", message)
            case .invalidUTF8(let at, let byte):
                (at, "invalid_utf8", "byte 0x\(String(byte, radix: 16, uppercase: true)) is not valid UTF-8 (the file must be UTF-8 text)")
            }
        let column = 1 + TextPosition.scalars(input.base + lineStart, count: index - lineStart)
        return StepFailure(FailureCode(code), message, at: SourceLocation(file: file, line: line, column: column))
    }
}

extension FieldSpan.Kind {
    /// The kind of JSON value, for messages: "an array", "a number".
    var name: String {
        switch self {
        case .missing: "nothing"
        case .null: "null"
        case .plain, .quoted, .string: "a string"
        case .number: "a number"
        case .boolTrue: "true"
        case .boolFalse: "false"
        case .container: "an array"
        }
    }
}
