import SluiceModel

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads CSV (RFC 4180) in batches with a byte-level parser over a read buffer.
///
/// - Fields may be quoted with `"`; inside quotes `""` is a quote, and delimiters and line
///   breaks (LF, CR or CRLF) are text. A quote inside an unquoted field is kept as text.
/// - Records end at LF, CR or CRLF, or at the end of the file. Empty lines are skipped.
/// - The first line names the fields (``Header/firstLine``), or the fields are named by the
///   caller and taken by position (``Header/none(fields:)``). A UTF-8 byte order mark is skipped.
/// - An unquoted empty field reads as NULL; a quoted empty field (`""`) as the empty string.
/// - A record holding a NUL byte is returned with an issue, and becomes a bad row.
/// - Errors that stop the read: an empty file (`empty_input`), a quoted field still open at the
///   end of the file (`unterminated_quote`), bytes that are not UTF-8 (`invalid_utf8`), a
///   record over 64 MiB (`record_too_large`). A record with a character after a closing quote
///   is returned with an issue, and becomes a bad row.
public struct CSVReader: RecordReader {
    /// Where the field names come from.
    public enum Header: Sendable, Hashable {
        /// The first record names the fields.
        case firstLine
        /// There is no header; the fields are these names, by position.
        case none(fields: [String])
    }

    public private(set) var fields: [String]
    public var file: String { input.file }
    public var bytesRead: Int { input.bytesRead }

    private let input: InputFile
    private let delimiter: UInt8
    /// Buffer index where the next record starts.
    private var position: Int
    /// Line where the next record starts.
    private var line = 1
    private var finished = false
    /// The last batch handed out, whose memory the next one reuses once it's released.
    private var previousBatch: RecordBatch?

    /// Opens `path` and reads the header. `file` names it in messages (default: `path`);
    /// `delimiter` is one ASCII character other than a quote or a line break.
    public init(path: String, file: String? = nil, delimiter: String = ",", header: Header = .firstLine) throws(StepFailure) {
        let byte = try Self.delimiterByte(delimiter)
        try self.init(input: try InputFile(path: path, file: file ?? path), delimiter: byte, header: header)
    }

    /// Reads `input` (a file `InputPath` opened), with a delimiter checked by `delimiterByte`.
    init(input: InputFile, delimiter: UInt8, header: Header) throws(StepFailure) {
        let file = input.file
        self.delimiter = delimiter
        self.input = input
        position = try input.skipByteOrderMark()
        switch header {
        case .none(let fields):
            self.fields = fields
            if input.count == position, input.atEnd {
                throw StepFailure(.emptyInput, "\(file) is empty", at: .start(of: file))
            }
        case .firstLine:
            fields = []
            let names = try next(limit: 1)
            guard let names = names.first else {
                throw StepFailure(
                    .emptyInput, "\(file) is empty: a CSV file needs at least a header line naming its columns",
                    at: .start(of: file))
            }
            if let issue = names.issue {
                let (line, column) = names.position(ofRawOffset: issue.offset)
                throw StepFailure(
                    .malformedCsv, "the header is malformed: \(issue.message)",
                    at: SourceLocation(file: file, line: line, column: column))
            }
            fields = names.values.map { value in
                if case .text(let text, _) = value { return text }
                return ""
            }
        }
    }

    /// The byte of a delimiter: one ASCII character other than a quote or a line break.
    static func delimiterByte(_ delimiter: String) throws(StepFailure) -> UInt8 {
        guard delimiter.utf8.count == 1, let byte = delimiter.utf8.first, byte < 0x80,
            byte != 0x22, byte != 0x0A, byte != 0x0D
        else {
            throw StepFailure.config("the CSV delimiter must be one ASCII character other than a quote or a line break, not '\(delimiter)'")
        }
        return byte
    }

    public mutating func next(limit: Int) throws(StepFailure) -> [RawRecord] {
        var builder = BatchBuilder(reusing: &previousBatch)
        while builder.recordCount < max(limit, 1), !builder.isFull, !finished {
            let firstField = builder.fields.count
            switch try scanRecord(from: position, into: &builder) {
            case .record(let end, let next, let lineBreaks, let issue):
                builder.addRecord(
                    text: input.base, start: position, end: end, firstField: firstField, line: line, column: 1,
                    issue: issue, unescape: Self.unescapeQuotes)
                line += lineBreaks
                position = next
            case .blank(let next):
                line += 1
                position = next
            case .needMore:
                builder.fields.removeLast(builder.fields.count - firstField)
                guard try input.refill(keeping: position) else {
                    throw StepFailure(
                        .recordTooLarge,
                        "the record starting here is longer than \(InputFile.maxRecordBytes >> 20) MiB (is a quote left open?)",
                        at: SourceLocation(file: file, line: line, column: 1))
                }
                position = 0
            case .endOfInput:
                finished = true
            }
        }
        let (records, batch) = builder.finish()
        previousBatch = batch
        return records
    }

    private enum Scan {
        /// A record whose text ends at `end` (before its line break); the next starts at `next`.
        case record(end: Int, next: Int, lineBreaks: Int, issue: RecordIssue?)
        case blank(next: Int)
        case needMore
        case endOfInput
    }

    /// Scans the record starting at `start`, appending its fields' spans to `builder`
    /// (relative to where its bytes will land there). On `needMore` the caller drops the spans
    /// appended, refills and scans again from the record's start.
    private func scanRecord(from start: Int, into builder: inout BatchBuilder) throws(StepFailure) -> Scan {
        let text = UnsafePointer(input.base)
        let end = input.count
        let atEnd = input.atEnd
        let delimiter = self.delimiter
        let quote: UInt8 = 0x22, lf: UInt8 = 0x0A, cr: UInt8 = 0x0D
        // Spans are offsets into the batch's bytes, where this record's text will start at `base`.
        let shift = builder.bytes.count - start

        guard start < end else { return atEnd ? .endOfInput : .needMore }
        if text[start] == lf { return .blank(next: start + 1) }
        if text[start] == cr {
            if start + 1 == end { return atEnd ? .blank(next: end) : .needMore }
            return .blank(next: text[start + 1] == lf ? start + 2 : start + 1)
        }

        var index = start
        var lineBreaks = 0
        var issue: RecordIssue?
        while true {
            let fieldStart = index
            if index < end, text[index] == quote {
                index += 1
                var escaped = false
                while true {
                    guard index < end else {
                        if !atEnd { return .needMore }
                        throw failure(
                            at: fieldStart, recordStart: start, code: "unterminated_quote",
                            "the quoted field opened here is not closed before the file ends (a truncated file, or a stray quote?)")
                    }
                    let byte = text[index]
                    if byte == quote {
                        if index + 1 < end {
                            if text[index + 1] != quote { break }
                            escaped = true
                            index += 2
                            continue
                        }
                        if !atEnd { return .needMore }
                        break
                    }
                    if byte == lf {
                        lineBreaks += 1
                    } else if byte == cr {
                        if index + 1 == end, !atEnd { return .needMore }
                        if index + 1 == end || text[index + 1] != lf { lineBreaks += 1 }
                    }
                    index += 1
                }
                builder.fields.append(
                    FieldSpan(
                        start: UInt32(fieldStart + 1 + shift), end: UInt32(index + shift),
                        rawOffset: UInt32(fieldStart - start), kind: .quoted, escaped: escaped))
                index += 1
                if index < end, text[index] != delimiter, text[index] != lf, text[index] != cr {
                    if issue == nil {
                        issue = RecordIssue(
                            offset: index - start,
                            message: "unexpected text after the closing quote of a field (a quote inside a quoted field is written \"\")")
                    }
                    index = Self.endOfPlainField(text, from: index, to: end, delimiter: delimiter)
                }
            } else {
                index = Self.endOfPlainField(text, from: index, to: end, delimiter: delimiter)
                builder.fields.append(
                    FieldSpan(
                        start: UInt32(fieldStart + shift), end: UInt32(index + shift),
                        rawOffset: UInt32(fieldStart - start), kind: .plain))
            }
            if index == end {
                if !atEnd { return .needMore }
                try validateUTF8(start, end)
                return .record(end: end, next: end, lineBreaks: lineBreaks, issue: issue ?? Self.nulIssue(text, start, end))
            }
            let byte = text[index]
            if byte == delimiter {
                index += 1
                continue
            }
            let recordEnd = index
            if byte == cr {
                if index + 1 == end, !atEnd { return .needMore }
                index += index + 1 < end && text[index + 1] == lf ? 2 : 1
            } else {
                index += 1
            }
            try validateUTF8(start, recordEnd)
            return .record(end: recordEnd, next: index, lineBreaks: lineBreaks + 1, issue: issue ?? Self.nulIssue(text, start, recordEnd))
        }
    }

    /// Where an unquoted field that starts at `index` ends: at a delimiter, a line break or `end`.
    /// Looks at eight bytes at a time.
    @inline(__always)
    private static func endOfPlainField(_ text: UnsafePointer<UInt8>, from index: Int, to end: Int, delimiter: UInt8) -> Int {
        var index = index
        let raw = UnsafeRawPointer(text)
        let delimiters = UInt64(delimiter) &* 0x0101_0101_0101_0101
        while index + 8 <= end {
            let word = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: index, as: UInt64.self))
            let found = zeroBytes(word ^ delimiters) | zeroBytes(word ^ 0x0A0A_0A0A_0A0A_0A0A) | zeroBytes(word ^ 0x0D0D_0D0D_0D0D_0D0D)
            if found != 0 { return index + found.trailingZeroBitCount >> 3 }
            index += 8
        }
        while index < end {
            let byte = text[index]
            if byte == delimiter || byte == 0x0A || byte == 0x0D { break }
            index += 1
        }
        return index
    }

    /// The high bit of each byte of `word` that is zero, and no other bit.
    @inline(__always)
    private static func zeroBytes(_ word: UInt64) -> UInt64 {
        let low7: UInt64 = 0x7F7F_7F7F_7F7F_7F7F
        return ~(((word & low7) &+ low7) | word | low7)
    }

    /// A NUL byte in a record makes it a bad row: no text holds one, and the warehouse would
    /// keep only what comes before it.
    @inline(__always)
    private static func nulIssue(_ text: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> RecordIssue? {
        guard end > start, let found = memchr(text + start, 0, end - start) else { return nil }
        return RecordIssue(
            offset: UnsafePointer<UInt8>(found.assumingMemoryBound(to: UInt8.self)) - (text + start),
            message: "a NUL byte (0x00), which no text holds")
    }

    /// Checks a record's bytes are UTF-8 (a quick pass when they are all ASCII).
    private func validateUTF8(_ start: Int, _ end: Int) throws(StepFailure) {
        guard !TextPosition.isASCII(input.base + start, count: end - start),
            let offset = TextPosition.firstInvalidUTF8(input.base + start, count: end - start)
        else { return }
        let byte = input.base[start + offset]
        throw failure(
            at: start + offset, recordStart: start, code: "invalid_utf8",
            "byte 0x\(String(byte, radix: 16, uppercase: true)) is not valid UTF-8 (the file must be UTF-8 text)")
    }

    /// A failure located at buffer index `at` inside the record starting at `recordStart`.
    private func failure(at index: Int, recordStart: Int, code: FailureCode, _ message: String) -> StepFailure {
        let (line, column) = TextPosition.advance(
            line: line, column: 1,
            over: UnsafeBufferPointer(start: input.base + recordStart, count: index - recordStart),
            upTo: index - recordStart)
        return StepFailure(code, message, at: SourceLocation(file: file, line: line, column: column))
    }

    /// Resolves `""` to `"` in a quoted field's content.
    static func unescapeQuotes(_ content: UnsafeBufferPointer<UInt8>, into output: inout ByteBuffer<UInt8>) {
        var index = 0
        while index < content.count {
            let byte = content[index]
            output.append(byte)
            index += byte == 0x22 ? 2 : 1
        }
    }
}
