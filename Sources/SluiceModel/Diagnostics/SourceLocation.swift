import Foundation

/// A place in a file that a person can open: 1-based line and column (column counted in
/// Unicode scalars, as editors and Yams do).
public struct SourceLocation: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    /// The start of a file, for problems that belong to the file as a whole.
    /// The line and column (in Unicode scalars) of a byte offset in a file's text.
    public init(ofByte offset: Int, in text: Data, file: String) {
        self = TextScan.location(ofByte: offset, in: text, file: file)
    }

    public static func start(of file: String) -> SourceLocation {
        SourceLocation(file: file, line: 1, column: 1)
    }

    public var description: String { "\(file):\(line):\(column)" }

    public static func < (lhs: SourceLocation, rhs: SourceLocation) -> Bool {
        (lhs.file, lhs.line, lhs.column) < (rhs.file, rhs.line, rhs.column)
    }
}
