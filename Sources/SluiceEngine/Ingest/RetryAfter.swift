import Foundation

/// The `Retry-After` header of a 429 or 503 (RFC 9110, 10.2.3): either a number of seconds or an
/// HTTP date. The executor waits at least this long before the retry.
public enum RetryAfter {
    /// The wait the header asks for, or nil when it is absent, unreadable or already past.
    public static func wait(_ header: String?, now: Date = Date()) -> Duration? {
        guard let text = header?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
        if let seconds = Double(text), seconds.isFinite {
            // Some gateways send fractions; the standard says whole seconds.
            guard seconds > 0 else { return nil }
            return .milliseconds(Int64((min(seconds, 86_400 * 365) * 1000).rounded(.up)))
        }
        guard let date = httpDate(text) else { return nil }
        let seconds = date.timeIntervalSince(now)
        guard seconds > 0 else { return nil }
        return .milliseconds(Int64((seconds * 1000).rounded(.up)))
    }

    /// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), and the two obsolete forms a recipient
    /// must still accept: RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime
    /// (`Sun Nov  6 08:49:37 1994`).
    public static func httpDate(_ text: String) -> Date? {
        for format in ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"] {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = format
            let squeezed = text.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            if let date = formatter.date(from: squeezed) { return date }
        }
        return nil
    }
}
