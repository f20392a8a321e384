import Foundation

/// The one check of timezone names, for pipeline files and the command line: an IANA name
/// that Foundation knows, with a "did you mean" when the name is close to one.
public enum TimeZoneName {
    public struct UnknownError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    private static let known = Set(TimeZone.knownTimeZoneIdentifiers)

    /// The zone called `name` (`UTC`, `Europe/Berlin`, `America/New_York`).
    public static func zone(named name: String) throws(UnknownError) -> TimeZone {
        guard let zone = TimeZone(identifier: name) else {
            throw UnknownError(
                description:
                    "\(shown(name)) is not an IANA timezone\(Suggestion.hint(for: name, in: known)) (e.g. UTC, Europe/Berlin, America/New_York)")
        }
        return zone
    }
}
