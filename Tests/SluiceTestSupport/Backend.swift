import Foundation
import Testing

/// A storage backend a behaviour test runs on: SQLite, always; and PostgreSQL on the test
/// server (`SLUICE_TEST_POSTGRES_URL`, which `scripts/test.sh` starts) when it is set, or when
/// `SLUICE_TEST_REQUIRE_POSTGRES=1` (then a missing server fails each PostgreSQL case instead
/// of leaving it out). One suite runs on both (`@Test(arguments: Backend.all)`), never a copy
/// per backend; each test target says how it opens a backend (stores, a warehouse, a project
/// pointed at a database) in an extension of its own.
public enum Backend: String, Sendable, CaseIterable, CustomTestStringConvertible {
    case sqlite
    case postgres

    public var testDescription: String { rawValue }

    /// The backends to test on this machine.
    public static var all: [Backend] { PostgresTestDatabase.isAvailable ? [.sqlite, .postgres] : [.sqlite] }
}
