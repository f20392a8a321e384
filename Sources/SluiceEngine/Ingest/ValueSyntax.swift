import Foundation
import SluiceModel

/// Parsers from a value's UTF-8 bytes to what the warehouse stores, one per column type. They
/// read bytes in place and allocate only the result.
enum ValueSyntax {
    enum Parsed<Value> {
        case value(Value)
        /// Not of the type's syntax.
        case invalid
        /// Of the right syntax but too large (or, for floats, not finite).
        case outOfRange
    }

    static func text(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        String(decoding: bytes, as: UTF8.self)
    }

    /// `[+-]digits`, within Int64.
    static func int64(_ bytes: UnsafeBufferPointer<UInt8>) -> Parsed<Int64> {
        var index = 0
        var negative = false
        if let first = bytes.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
            negative = first == UInt8(ascii: "-")
            index = 1
        }
        guard index < bytes.count else { return .invalid }
        var magnitude: UInt64 = 0
        var overflow = false
        while index < bytes.count {
            let digit = bytes[index] &- 0x30
            guard digit < 10 else { return .invalid }
            let (times10, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(digit))
            overflow = overflow || o1 || o2
            magnitude = sum
            index += 1
        }
        if overflow { return .outOfRange }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { return .outOfRange }
            return .value(magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude))
        }
        guard magnitude <= UInt64(Int64.max) else { return .outOfRange }
        return .value(Int64(magnitude))
    }

    private static let powersOf10: [Double] = (0...22).map { pow(10, Double($0)) }

    /// A decimal number, `[+-](digits[.digits]|.digits)[e[+-]digits]`, finite. Exact and fast
    /// for up to 15 significant digits and small exponents; otherwise through the standard
    /// library's correctly rounded conversion.
    static func double(_ bytes: UnsafeBufferPointer<UInt8>) -> Parsed<Double> {
        var index = 0
        var negative = false
        if let first = bytes.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
            negative = first == UInt8(ascii: "-")
            index = 1
        }
        var mantissa: UInt64 = 0
        var digits = 0
        var scale = 0
        while index < bytes.count, bytes[index] &- 0x30 < 10 {
            mantissa = mantissa &* 10 &+ UInt64(bytes[index] &- 0x30)
            digits += 1
            index += 1
        }
        var fractionDigits = 0
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            while index < bytes.count, bytes[index] &- 0x30 < 10 {
                mantissa = mantissa &* 10 &+ UInt64(bytes[index] &- 0x30)
                fractionDigits += 1
                index += 1
            }
            scale = -fractionDigits
        }
        guard digits + fractionDigits > 0 else { return .invalid }
        var exponent = 0
        if index < bytes.count, bytes[index] | 0x20 == UInt8(ascii: "e") {
            index += 1
            var exponentNegative = false
            if index < bytes.count, bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+") {
                exponentNegative = bytes[index] == UInt8(ascii: "-")
                index += 1
            }
            let exponentStart = index
            while index < bytes.count, bytes[index] &- 0x30 < 10 {
                exponent = min(exponent * 10 + Int(bytes[index] &- 0x30), 100_000)
                index += 1
            }
            guard index > exponentStart else { return .invalid }
            if exponentNegative { exponent = -exponent }
        }
        guard index == bytes.count else { return .invalid }
        scale += exponent
        let value: Double
        if digits + fractionDigits <= 15, abs(scale) <= 22 {
            // Both operands are exact doubles, so one IEEE operation rounds correctly.
            let exact = Double(mantissa)
            value = scale < 0 ? exact / powersOf10[-scale] : exact * powersOf10[scale]
            return .value(negative ? -value : value)
        }
        guard let parsed = Double(text(bytes)) else { return .invalid }
        return parsed.isFinite ? .value(parsed) : .outOfRange
    }

    /// true/false (any case), t/f, 1/0.
    static func bool(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool? {
        switch bytes.count {
        case 1:
            switch bytes[0] | 0x20 {
            case UInt8(ascii: "1"), UInt8(ascii: "t"): return true
            case UInt8(ascii: "0"), UInt8(ascii: "f"): return false
            default: return nil
            }
        case 4 where matchesLowercased(bytes, "true"): return true
        case 5 where matchesLowercased(bytes, "false"): return false
        default: return nil
        }
    }

    private static func matchesLowercased(_ bytes: UnsafeBufferPointer<UInt8>, _ word: StaticString) -> Bool {
        for index in 0..<bytes.count where bytes[index] | 0x20 != word.utf8Start[index] {
            return false
        }
        return true
    }

    @inline(__always)
    private static func twoDigits(_ bytes: UnsafeBufferPointer<UInt8>, _ at: Int) -> Int? {
        let tens = bytes[at] &- 0x30, ones = bytes[at + 1] &- 0x30
        guard tens < 10, ones < 10 else { return nil }
        return Int(tens) * 10 + Int(ones)
    }

    /// `YYYY-MM-DD` at `at`, a real day of years 0001–9999.
    @inline(__always)
    private static func date(_ bytes: UnsafeBufferPointer<UInt8>, at: Int) -> CalendarDate? {
        guard bytes.count >= at + 10, bytes[at + 4] == UInt8(ascii: "-"), bytes[at + 7] == UInt8(ascii: "-"),
            let century = twoDigits(bytes, at), let yearInCentury = twoDigits(bytes, at + 2),
            let month = twoDigits(bytes, at + 5), let day = twoDigits(bytes, at + 8)
        else { return nil }
        let year = century * 100 + yearInCentury
        guard year >= 1, (1...12).contains(month), (1...31).contains(day) else { return nil }
        let date = CalendarDate(year: year, month: month, day: day)
        // Every month has 28 days; past that, a day beyond the month's end (Feb 30) comes back
        // from the day count as another date.
        guard day <= 28 || CalendarDate(daysSinceEpoch: date.daysSinceEpoch) == date else { return nil }
        return date
    }

    /// `YYYY-MM-DD`, a real date; stored as written.
    static func date(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        bytes.count == 10 && date(bytes, at: 0) != nil
    }

    /// `HH:MM:SS` at `at`, then an optional fraction of 1–9 digits (kept to microseconds).
    @inline(__always)
    private static func time(_ bytes: UnsafeBufferPointer<UInt8>, at: Int) -> (seconds: Int, micros: Int, end: Int)? {
        guard bytes.count >= at + 8, bytes[at + 2] == UInt8(ascii: ":"), bytes[at + 5] == UInt8(ascii: ":"),
            let hour = twoDigits(bytes, at), let minute = twoDigits(bytes, at + 3), let second = twoDigits(bytes, at + 6),
            hour < 24, minute < 60, second < 60
        else { return nil }
        var index = at + 8
        var micros = 0
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            let start = index
            while index < bytes.count, bytes[index] &- 0x30 < 10, index - start < 9 {
                if index - start < 6 { micros = micros * 10 + Int(bytes[index] &- 0x30) }
                index += 1
            }
            guard index > start else { return nil }
            for _ in min(index - start, 6)..<6 { micros *= 10 }
        }
        return (hour * 3600 + minute * 60 + second, micros, index)
    }

    /// A TIMESTAMP (`zoned`) or DATETIME: `YYYY-MM-DD`, `T` or a space, `HH:MM:SS`, an
    /// optional fraction; a TIMESTAMP may end in `Z`, `UTC` or an offset `±HH:MM` (`±HHMM`,
    /// `±HH`), optionally after a space, and without one is UTC. Returns the canonical text
    /// `YYYY-MM-DDTHH:MM:SS.ffffff` with `Z` for a TIMESTAMP, converted to UTC. The fraction
    /// is always six digits, so canonical values sort as text in time order (`05Z` would sort
    /// after `05.25Z`), which latest-wins merges rely on.
    static func timestamp(_ bytes: UnsafeBufferPointer<UInt8>, zoned: Bool) -> Parsed<String> {
        // The common case: only the fraction is missing.
        if zoned, bytes.count == 20, bytes[10] == UInt8(ascii: "T"), bytes[19] == UInt8(ascii: "Z"),
            date(bytes, at: 0) != nil, let time = time(bytes, at: 11), time.end == 19
        {
            return .value(text(UnsafeBufferPointer(rebasing: bytes[0..<19])) + ".000000Z")
        }
        guard bytes.count >= 19, let day = date(bytes, at: 0),
            bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: " ") || bytes[10] == UInt8(ascii: "t"),
            let time = time(bytes, at: 11)
        else { return .invalid }
        var index = time.end
        var offset = 0
        if index < bytes.count {
            guard zoned else { return .invalid }
            if bytes[index] == UInt8(ascii: " "), index + 1 < bytes.count { index += 1 }
            let rest = bytes.count - index
            let first = bytes[index]
            if rest == 1, first | 0x20 == UInt8(ascii: "z") {
                // UTC
            } else if rest == 3, matchesLowercased(UnsafeBufferPointer(rebasing: bytes[index...]), "utc") {
                // UTC
            } else if first == UInt8(ascii: "+") || first == UInt8(ascii: "-") {
                guard rest >= 3, let hours = twoDigits(bytes, index + 1), hours < 24 else { return .invalid }
                var minutes = 0
                switch rest {
                case 3: break
                case 5: guard let value = twoDigits(bytes, index + 3) else { return .invalid }; minutes = value
                case 6:
                    guard bytes[index + 3] == UInt8(ascii: ":"), let value = twoDigits(bytes, index + 4) else { return .invalid }
                    minutes = value
                default: return .invalid
                }
                guard minutes < 60 else { return .invalid }
                offset = (hours * 60 + minutes) * 60 * (first == UInt8(ascii: "-") ? -1 : 1)
            } else {
                return .invalid
            }
        }
        var date = day
        var seconds = time.seconds - offset
        if seconds < 0 || seconds >= 86_400 {
            let days = seconds < 0 ? -1 : 1
            seconds -= days * 86_400
            date = day.adding(days: days)
            guard (1...9999).contains(date.year) else { return .outOfRange }
        }
        return .value(canonical(date: date, seconds: seconds, micros: time.micros, zone: zoned ? "Z" : ""))
    }

    /// `HH:MM:SS` with an optional fraction; canonical `HH:MM:SS[.ffffff]`.
    static func time(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        guard let time = time(bytes, at: 0), time.end == bytes.count else { return nil }
        if bytes.count == 8 { return text(bytes) }
        return clock(seconds: time.seconds, micros: time.micros)
    }

    /// `YYYY-MM-DD`.
    static func canonical(date: CalendarDate) -> String {
        String(canonical(date: date, seconds: 0, micros: 0, zone: "").prefix(10))
    }

    static func canonical(date: CalendarDate, seconds: Int, micros: Int, zone: String) -> String {
        let year = date.year, month = date.month, day = date.day
        var result = ""
        result.reserveCapacity(27)
        result += String(year / 1000) + String(year / 100 % 10) + String(year / 10 % 10) + String(year % 10)
        result += month < 10 ? "-0\(month)" : "-\(month)"
        result += day < 10 ? "-0\(day)T" : "-\(day)T"
        result += clock(seconds: seconds, micros: micros, alwaysFraction: true)
        result += zone
        return result
    }

    private static func clock(seconds: Int, micros: Int, alwaysFraction: Bool = false) -> String {
        func pad(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        var result = "\(pad(seconds / 3600)):\(pad(seconds / 60 % 60)):\(pad(seconds % 60))"
        if micros > 0 || alwaysFraction {
            let digits = String(micros)
            result += "." + String(repeating: "0", count: 6 - digits.count) + digits
        }
        return result
    }

    /// One complete JSON value, possibly surrounded by whitespace.
    static func isJSON(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress else { return false }
        var scanner = JSONScanner(text: base, end: bytes.count, isFinal: true, endName: "value", index: 0)
        do throws(JSONStop) {
            _ = try scanner.skipValue()
            scanner.skipWhitespace()
            return scanner.index == bytes.count
        } catch {
            return false
        }
    }

    /// Standard base64 with padding.
    static func base64(_ bytes: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        guard let data = Data(base64Encoded: text(bytes)) else { return nil }
        return [UInt8](data)
    }
}
