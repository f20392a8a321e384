import SluiceModel

/// Reads records from a file in batches. Memory is bounded by the batch (and the largest
/// record), never by the file: the file is read in 1 MiB chunks, each batch holds only its own
/// records' bytes, and a batch's memory is reused for the next once its records are released.
/// A reader holds an open file: use it from one task at a time (records and batches, though,
/// are `Sendable`).
///
/// Malformed input (an unterminated quote, invalid UTF-8, broken JSON, an empty file, a file
/// that can't be read) throws a ``StepFailure`` whose location is the file, line and column of
/// the problem. A record that is well-formed but doesn't fit (too few fields, a JSON value that
/// isn't an object) is returned, and ``RowTyper`` turns it into a ``BadRow``.
public protocol RecordReader {
    /// Source field names, in the order of each record's fields: a CSV header (or the names
    /// given for a headerless CSV), or the keys a JSON reader was asked to pick out.
    var fields: [String] { get }

    /// The file as it is named in messages.
    var file: String { get }

    /// The next batch of at most `limit` records (fewer when the batch's bytes grow past
    /// 32 MiB); an empty array once the input is exhausted.
    mutating func next(limit: Int) throws(StepFailure) -> [RawRecord]

    /// Bytes read from the file so far.
    var bytesRead: Int { get }
}

/// One source value, as the file spelt it.
public enum SourceValue: Sendable, Hashable {
    /// An unquoted empty CSV field, or JSON `null`.
    case null
    /// A JSON key that the object doesn't have.
    case missing
    /// Text; `quoted` when it was written in quotes (a quoted CSV field or a JSON string).
    case text(String, quoted: Bool)
    /// A JSON number, as written.
    case number(String)
    case bool(Bool)
    /// A JSON object or array, as written.
    case json(String)
}

/// A record read from a source: its fields' values aligned to the reader's `fields`, where it
/// starts, and its raw text (for quarantine). Records share their batch's storage, so holding
/// one keeps that batch's bytes alive (and keeps the reader from reusing them).
public struct RawRecord: Sendable {
    let batch: RecordBatch
    let index: Int

    var head: RecordHead { batch.heads[index] }

    /// 1-based physical line where the record starts.
    public var line: Int { head.line }

    /// Number of fields the record has. CSV records can have fewer or more than the header;
    /// JSON records always have one per reader field (`missing` where the key is absent).
    public var fieldCount: Int { Int(head.fieldCount) }

    /// The record as written in the file, without its line terminator.
    public var raw: String {
        let head = head
        return ValueSyntax.text(batch.bytes.buffer(Int(head.rawStart)..<Int(head.rawEnd)))
    }

    /// The fields' values, in the order of the reader's `fields`.
    public var values: [SourceValue] {
        let head = head
        return (0..<Int(head.fieldCount)).map { index in
            let span = batch.fields[Int(head.firstField) + index]
            let text = { ValueSyntax.text(self.batch.bytes.buffer(Int(span.start)..<Int(span.end))) }
            switch span.kind {
            case .missing: return .missing
            case .null: return .null
            case .plain: return span.start == span.end ? .null : .text(text(), quoted: false)
            case .quoted, .string: return .text(text(), quoted: true)
            case .number: return .number(text())
            case .boolTrue: return .bool(true)
            case .boolFalse: return .bool(false)
            case .container: return .json(text())
            }
        }
    }

    /// Line and column (1-based, in characters) where field `index` starts in the file. For an
    /// index past the record's last field, the place just after the record's last character.
    public func position(ofField index: Int) -> (line: Int, column: Int) {
        let head = head
        if index < head.fieldCount {
            return position(ofRawOffset: Int(batch.fields[Int(head.firstField) + index].rawOffset))
        }
        return position(ofRawOffset: Int(head.rawEnd - head.rawStart))
    }

    /// Line and column of the byte `offset` bytes into the record's raw text.
    func position(ofRawOffset offset: Int) -> (line: Int, column: Int) {
        let head = head
        return TextPosition.advance(
            line: head.line, column: Int(head.column),
            over: batch.bytes.buffer(Int(head.rawStart)..<Int(head.rawEnd)), upTo: offset)
    }

    /// A problem with the record's shape found while reading it, if any.
    var issue: RecordIssue? {
        let head = head
        return head.issue < 0 ? nil : batch.issues[Int(head.issue)]
    }
}

/// What the reader found wrong with a record's shape (not its values).
struct RecordIssue: Sendable {
    /// Bytes into the record's raw text.
    var offset: Int
    var message: String
}

/// Where one field's value lies in a batch's bytes, and how it was written.
struct FieldSpan: Sendable, BitwiseCopyable {
    enum Kind: UInt8, Sendable, BitwiseCopyable {
        /// A JSON key the object lacks.
        case missing
        /// JSON `null`.
        case null
        /// An unquoted CSV field (empty means NULL).
        case plain
        /// A quoted CSV field.
        case quoted
        /// A JSON string.
        case string
        /// A JSON number.
        case number
        case boolTrue, boolFalse
        /// A JSON object or array, as written.
        case container
    }

    /// The value's bytes (unescaped) in the batch.
    var start: UInt32
    var end: UInt32
    /// Where the value starts in the record's raw text (bytes from the record's start).
    var rawOffset: UInt32
    var kind: Kind
    /// The value's bytes in the batch are still escaped (CSV `""`, JSON `\n`), to be resolved
    /// once the record is complete.
    var escaped: Bool = false

    static let missing = FieldSpan(start: 0, end: 0, rawOffset: 0, kind: .missing)
}

struct RecordHead: Sendable, BitwiseCopyable {
    var rawStart: UInt32
    var rawEnd: UInt32
    var firstField: UInt32
    var fieldCount: UInt32
    var line: Int
    var column: Int
    /// Index into the batch's issues, or -1.
    var issue: Int32
}

/// An array of plain values in memory this type manages, so appending in the readers' inner
/// loops is a store, without the checks an `Array` makes.
struct ByteBuffer<Element: BitwiseCopyable> {
    private(set) var base: UnsafeMutablePointer<Element>
    private(set) var count = 0
    private(set) var capacity: Int

    init(capacity: Int = 64) {
        self.capacity = max(capacity, 16)
        base = .allocate(capacity: self.capacity)
    }

    /// Frees the memory; the buffer must not be used afterwards.
    func deallocate() { base.deallocate() }

    subscript(index: Int) -> Element {
        get { base[index] }
        nonmutating set { base[index] = newValue }
    }

    func buffer(_ range: Range<Int>) -> UnsafeBufferPointer<Element> {
        UnsafeBufferPointer(start: base + range.lowerBound, count: range.count)
    }

    mutating func reserve(_ needed: Int) {
        guard needed > capacity else { return }
        let grown = UnsafeMutablePointer<Element>.allocate(capacity: max(needed, capacity * 2))
        grown.initialize(from: base, count: count)
        base.deallocate()
        base = grown
        capacity = max(needed, capacity * 2)
    }

    @inline(__always)
    mutating func append(_ element: Element) {
        if count == capacity { reserve(count + 1) }
        (base + count).initialize(to: element)
        count += 1
    }

    mutating func append(_ elements: UnsafePointer<Element>, count added: Int) {
        reserve(count + added)
        (base + count).initialize(from: elements, count: added)
        count += added
    }

    mutating func append(repeating element: Element, count added: Int) {
        reserve(count + added)
        (base + count).initialize(repeating: element, count: added)
        count += added
    }

    mutating func removeLast(_ removed: Int) { count -= removed }

    mutating func removeAll() { count = 0 }
}

/// The bytes, field spans and record heads of one batch, shared by its records and only read
/// once built (from any thread). When the records are all gone, the reader takes the memory
/// back for its next batch.
final class RecordBatch: @unchecked Sendable {
    let bytes: ByteBuffer<UInt8>
    let fields: ByteBuffer<FieldSpan>
    let heads: ByteBuffer<RecordHead>
    let issues: [RecordIssue]
    private var ownsMemory = true

    init(bytes: ByteBuffer<UInt8>, fields: ByteBuffer<FieldSpan>, heads: ByteBuffer<RecordHead>, issues: [RecordIssue]) {
        self.bytes = bytes
        self.fields = fields
        self.heads = heads
        self.issues = issues
    }

    /// Hands the memory to a builder; call only while nothing else refers to the batch.
    func relinquish() {
        ownsMemory = false
    }

    deinit {
        guard ownsMemory else { return }
        bytes.deallocate()
        fields.deallocate()
        heads.deallocate()
    }
}

/// Collects a batch's records as a reader finds them, in the memory of the reader's previous
/// batch when the caller has let go of all its records.
struct BatchBuilder {
    /// A batch stops growing past this many bytes, whatever its record limit.
    static let byteBudget = 32 << 20

    var bytes: ByteBuffer<UInt8>
    var fields: ByteBuffer<FieldSpan>
    private var heads: ByteBuffer<RecordHead>
    private var issues: [RecordIssue] = []

    /// Starts a batch, reusing `previous`'s memory if no record of it is left.
    init(reusing previous: inout RecordBatch?) {
        var candidate = previous
        previous = nil
        if isKnownUniquelyReferenced(&candidate), let batch = candidate {
            batch.relinquish()
            bytes = batch.bytes
            fields = batch.fields
            heads = batch.heads
            bytes.removeAll()
            fields.removeAll()
            heads.removeAll()
        } else {
            bytes = ByteBuffer(capacity: 1 << 20)
            fields = ByteBuffer(capacity: 1 << 14)
            heads = ByteBuffer(capacity: 1 << 11)
        }
    }

    var isFull: Bool { bytes.count >= Self.byteBudget }
    var recordCount: Int { heads.count }

    /// Copies a complete record's raw bytes (`text[start..<end]` of the read buffer), whose
    /// fields were appended from `firstField` with `start`/`end` relative to `bytes.count` at
    /// the time, resolving escaped values with `unescape`.
    mutating func addRecord(
        text: UnsafePointer<UInt8>, start: Int, end: Int, firstField: Int, line: Int, column: Int,
        issue: RecordIssue?, unescape: (UnsafeBufferPointer<UInt8>, inout ByteBuffer<UInt8>) -> Void
    ) {
        let base = bytes.count
        bytes.append(text + start, count: end - start)
        for index in firstField..<fields.count where fields[index].escaped {
            var span = fields[index]
            let escapedStart = start + Int(span.start) - base
            let escapedEnd = start + Int(span.end) - base
            span.start = UInt32(bytes.count)
            unescape(UnsafeBufferPointer(start: text + escapedStart, count: escapedEnd - escapedStart), &bytes)
            span.end = UInt32(bytes.count)
            span.escaped = false
            fields[index] = span
        }
        var issueIndex: Int32 = -1
        if let issue {
            issueIndex = Int32(issues.count)
            issues.append(issue)
        }
        heads.append(
            RecordHead(
                rawStart: UInt32(base), rawEnd: UInt32(base + end - start), firstField: UInt32(firstField),
                fieldCount: UInt32(fields.count - firstField), line: line, column: column,
                issue: issueIndex))
    }

    /// The batch's records, and the batch (for the reader to reuse later).
    consuming func finish() -> ([RawRecord], RecordBatch) {
        let batch = RecordBatch(bytes: bytes, fields: fields, heads: heads, issues: issues)
        return ((0..<batch.heads.count).map { RawRecord(batch: batch, index: $0) }, batch)
    }
}
