import Foundation

/// What one step may consume before it stops with `budget_exceeded`: rows and bytes read from
/// its source, and HTTP requests sent. A step's `limits:` and its org's `limits` in
/// `sluice.yml` both apply; the lower of the two wins, so a pipeline can tighten what the
/// operator allows an org but never loosen it.
public struct StepLimits: Sendable, Hashable {
    /// Rows a step may read from its source (`ingest`), per attempt.
    public var maxRows: Int?
    /// Bytes a step may read from its source (a file's, or every page's), per attempt.
    public var maxBytes: Int64?
    /// HTTP requests a step may send (ingest pages, validator checks, notifications), over all
    /// its attempts.
    public var maxRequests: Int?

    public init(maxRows: Int? = nil, maxBytes: Int64? = nil, maxRequests: Int? = nil) {
        self.maxRows = maxRows
        self.maxBytes = maxBytes
        self.maxRequests = maxRequests
    }

    public var isEmpty: Bool { maxRows == nil && maxBytes == nil && maxRequests == nil }

    /// Each limit the lower of the two.
    public func tightened(by other: StepLimits) -> StepLimits {
        func lower<T: Comparable>(_ a: T?, _ b: T?) -> T? {
            switch (a, b) {
            case (let a?, let b?): Swift.min(a, b)
            default: a ?? b
            }
        }
        return StepLimits(
            maxRows: lower(maxRows, other.maxRows), maxBytes: lower(maxBytes, other.maxBytes),
            maxRequests: lower(maxRequests, other.maxRequests))
    }

    /// Reads `{ max_rows, max_bytes, max_requests }` (already checked by lint or settings).
    public init(node: YAMLNode?) {
        self.init(
            maxRows: node?["max_rows"]?.int, maxBytes: node?["max_bytes"]?.scalarText.flatMap { try? ByteCount.parse($0) },
            maxRequests: node?["max_requests"]?.int)
    }

    /// The fields of `limits:`, for the pipeline format and `sluice.yml`.
    public static let fields: [FieldSpec] = [
        FieldSpec("max_rows", .integer(0...Int.max), description: "Rows the step may read from its source (per attempt).", example: "5000000"),
        FieldSpec(
            "max_bytes", .byteCount, description: "Bytes the step may read from its source, like 500MB or 2GiB (per attempt).",
            example: "2GB"),
        FieldSpec(
            "max_requests", .integer(0...Int.max),
            description: "HTTP requests the step may send: pages, checks, notifications, retries included.", example: "1000"),
    ]
}

/// A size in bytes: a whole number, or one with a unit, `500MB`, `2GiB` (kB, MB, GB, TB are
/// powers of 1000; KiB, MiB, GiB, TiB powers of 1024).
public enum ByteCount {
    public struct Problem: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    static let units: [(String, Int64)] = [
        ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("TiB", 1 << 40),
        ("kB", 1_000), ("KB", 1_000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("TB", 1_000_000_000_000), ("B", 1),
    ]

    public static func parse(_ text: String) throws(Problem) -> Int64 {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        var number = Substring(trimmed), scale: Int64 = 1
        for (unit, factor) in units where trimmed.hasSuffix(unit) {
            number = trimmed.dropLast(unit.count).drop { $0 == " " }
            number = Substring(number.trimmingCharacters(in: .whitespaces))
            scale = factor
            break
        }
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int64(number) else {
            throw Problem(description: "\(shown(text)) is not a size; write bytes, or a number and a unit like 500MB or 2GiB")
        }
        let (product, overflow) = value.multipliedReportingOverflow(by: scale)
        guard !overflow else { throw Problem(description: "\(shown(text)) is too large") }
        return product
    }

    /// `2.0 GB`-style text for messages, exact below 10 kB.
    public static func format(_ bytes: Int64) -> String {
        bytes < 10_000 ? "\(bytes) bytes" : String(format: "%.1f MB", Double(bytes) / 1_000_000)
    }
}
