import SluiceModel

/// A record that doesn't fit the schema, with what a person needs to fix it: where the
/// offending value is, why it doesn't fit, and the record as written (what quarantine keeps).
public struct BadRow: Error, Sendable, Hashable, CustomStringConvertible {
    /// Line where the record starts.
    public var line: Int
    /// File, line and column of the offending value (or of where a missing one was expected).
    public var location: SourceLocation
    /// Names the column and what was expected: `column input_tokens: 'abc' is not an INT64`.
    public var reason: String
    /// The record as written in the file, without its line terminator.
    public var raw: String

    public init(line: Int, location: SourceLocation, reason: String, raw: String) {
        self.line = line
        self.location = location
        self.reason = reason
        self.raw = raw
    }

    public var description: String { "\(location): \(reason)" }

    /// The step failure for `on_bad_row: fail`: permanent, code `bad_row`.
    public var failure: StepFailure {
        StepFailure(.badRow, reason, at: location)
    }
}
