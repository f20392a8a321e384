import BigInt

/// A decimal number kept exactly: an integer significand and the number of its digits after
/// the point. Cost data is decimal (invoices add up to the cent and below), so NUMERIC and
/// BIGNUMERIC values are this, never a binary double, from ingest to the published table.
///
/// Values are normalized: no trailing zeros after the point, and zero is `0`. Two spellings of
/// one number (`1.50`, `1.5`, `15e-1`) are one value with one text, `description`, which is
/// what the warehouse stores on SQLite and what PostgreSQL's `numeric` reads.
public struct ExactDecimal: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The value times 10^scale.
    public private(set) var significand: BigInt
    /// Digits after the point; never negative.
    public private(set) var scale: Int

    /// The most digits after the point a division keeps before it rounds: BIGNUMERIC's scale.
    public static let divisionScale = 38

    public init(significand: BigInt, scale: Int) {
        if scale < 0 {
            self.significand = significand * Self.power(-scale)
            self.scale = 0
        } else {
            self.significand = significand
            self.scale = scale
        }
        normalize()
    }

    public init(_ value: Int64) {
        significand = BigInt(value)
        scale = 0
    }

    public init(_ value: Int) {
        significand = BigInt(value)
        scale = 0
    }

    /// A double's shortest decimal spelling that reads back as the same double (`0.1` for the
    /// double nearest 0.1): what a value computed in floating point stands for. nil for NaN and
    /// the infinities.
    public init?(shortest value: Double) {
        guard value.isFinite else { return nil }
        self.init(String(value))
    }

    /// Reads `[+-]digits[.digits][(e|E)[+-]digits]` (digits on at least one side of the point).
    /// Nothing else: no spaces, thousands separators or currency signs.
    public init?(_ text: String) {
        var text = text
        guard let value = text.withUTF8({ Self.parse($0) }) else { return nil }
        self = value
    }

    /// `init(_:)` over UTF-8 bytes.
    public static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> ExactDecimal? {
        var index = 0
        let count = bytes.count
        var negative = false
        if index < count, bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+") {
            negative = bytes[index] == UInt8(ascii: "-")
            index += 1
        }
        // Digits go into a machine word while they fit (18 at a time), then into the BigInt.
        var significand = BigInt(0)
        var chunk: UInt64 = 0
        var chunkDigits = 0
        var digits = 0
        var fractionDigits = 0
        var seenPoint = false
        func flush() {
            guard chunkDigits > 0 else { return }
            significand = significand * ExactDecimal.power(chunkDigits) + BigInt(chunk)
            chunk = 0
            chunkDigits = 0
        }
        while index < count {
            let byte = bytes[index]
            if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                chunk = chunk * 10 + UInt64(byte - UInt8(ascii: "0"))
                chunkDigits += 1
                digits += 1
                if seenPoint { fractionDigits += 1 }
                if chunkDigits == 18 { flush() }
            } else if byte == UInt8(ascii: "."), !seenPoint {
                seenPoint = true
            } else {
                break
            }
            index += 1
        }
        guard digits > 0 else { return nil }
        flush()
        var exponent = 0
        if index < count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            var exponentNegative = false
            if index < count, bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+") {
                exponentNegative = bytes[index] == UInt8(ascii: "-")
                index += 1
            }
            var exponentDigits = 0
            while index < count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                exponent = exponent * 10 + Int(bytes[index] - UInt8(ascii: "0"))
                // An exponent far past any decimal type's range is refused, not computed.
                guard exponent <= 400 else { return nil }
                exponentDigits += 1
                index += 1
            }
            guard exponentDigits > 0 else { return nil }
            if exponentNegative { exponent = -exponent }
        }
        guard index == count else { return nil }
        return ExactDecimal(significand: negative ? -significand : significand, scale: fractionDigits - exponent)
    }

    /// 10^exponent.
    static func power(_ exponent: Int) -> BigInt {
        if exponent < powers.count { return powers[exponent] }
        return BigInt(10).power(exponent)
    }

    private static let powers: [BigInt] = {
        var values: [BigInt] = [1]
        for _ in 1...160 { values.append(values[values.count - 1] * 10) }
        return values
    }()

    private mutating func normalize() {
        if significand.isZero {
            scale = 0
            return
        }
        while scale > 0 {
            let (quotient, remainder) = significand.quotientAndRemainder(dividingBy: 10)
            guard remainder.isZero else { break }
            significand = quotient
            scale -= 1
        }
    }

    public var isZero: Bool { significand.isZero }
    public var isNegative: Bool { significand.sign == .minus && !significand.isZero }

    /// Digits before the point, leading zeros not counted (0 for a value below 1).
    public var integerDigits: Int {
        // Digits of the significand, counted against powers of ten (no text is made: ingest
        // checks every value it reads).
        let magnitude = BigInt(significand.magnitude)
        var digits = 1
        while magnitude >= Self.power(digits) { digits += 1 }
        return max(0, digits - scale)
    }

    /// The canonical text: `-12.5`, `0.001`, `100`. No exponent, no `+`, no trailing zeros.
    public var description: String {
        let digits = significand.magnitude.description
        var text = isNegative ? "-" : ""
        if scale == 0 {
            text += digits
        } else if digits.count > scale {
            let split = digits.index(digits.endIndex, offsetBy: -scale)
            text += digits[..<split] + "." + digits[split...]
        } else {
            text += "0." + String(repeating: "0", count: scale - digits.count) + digits
        }
        return text
    }

    /// The nearest double (for FLOAT64 arithmetic that mixes in a decimal).
    public var doubleValue: Double { Double(description) ?? .nan }

    // MARK: Arithmetic

    /// Both significands at the larger of the two scales.
    private static func aligned(_ lhs: ExactDecimal, _ rhs: ExactDecimal) -> (BigInt, BigInt, Int) {
        if lhs.scale == rhs.scale { return (lhs.significand, rhs.significand, lhs.scale) }
        if lhs.scale > rhs.scale { return (lhs.significand, rhs.significand * power(lhs.scale - rhs.scale), lhs.scale) }
        return (lhs.significand * power(rhs.scale - lhs.scale), rhs.significand, rhs.scale)
    }

    public static func + (lhs: ExactDecimal, rhs: ExactDecimal) -> ExactDecimal {
        let (left, right, scale) = aligned(lhs, rhs)
        return ExactDecimal(significand: left + right, scale: scale)
    }

    public static func - (lhs: ExactDecimal, rhs: ExactDecimal) -> ExactDecimal {
        let (left, right, scale) = aligned(lhs, rhs)
        return ExactDecimal(significand: left - right, scale: scale)
    }

    public static func * (lhs: ExactDecimal, rhs: ExactDecimal) -> ExactDecimal {
        ExactDecimal(significand: lhs.significand * rhs.significand, scale: lhs.scale + rhs.scale)
    }

    public static prefix func - (value: ExactDecimal) -> ExactDecimal {
        ExactDecimal(significand: -value.significand, scale: value.scale)
    }

    public var magnitude: ExactDecimal { isNegative ? -self : self }

    /// `self / divisor`, exact when the quotient ends within `scale` digits after the point,
    /// else rounded there, half away from zero. nil when `divisor` is zero.
    public func divided(by divisor: ExactDecimal, scale: Int = ExactDecimal.divisionScale) -> ExactDecimal? {
        guard !divisor.isZero else { return nil }
        // self / divisor = (a / 10^sa) / (b / 10^sb); scaled by 10^(scale+1) to round once.
        let shift = scale + 1 + divisor.scale - self.scale
        var numerator = significand
        var denominator = divisor.significand
        if shift >= 0 { numerator *= Self.power(shift) } else { denominator *= Self.power(-shift) }
        let quotient = numerator / denominator
        return ExactDecimal(significand: Self.roundLastDigit(quotient), scale: scale)
    }

    /// Rounded to `scale` digits after the point, half away from zero (as BigQuery and
    /// PostgreSQL round a value stored into a column of that scale).
    public func rounded(scale target: Int) -> ExactDecimal {
        guard scale > target else { return self }
        let dropped = scale - target
        let kept = significand / Self.power(dropped - 1)
        return ExactDecimal(significand: Self.roundLastDigit(kept), scale: target)
    }

    /// Drops the last digit of `value`, rounding half away from zero.
    private static func roundLastDigit(_ value: BigInt) -> BigInt {
        let (quotient, remainder) = value.quotientAndRemainder(dividingBy: 10)
        if remainder >= 5 { return quotient + 1 }
        if remainder <= -5 { return quotient - 1 }
        return quotient
    }

    public static func < (lhs: ExactDecimal, rhs: ExactDecimal) -> Bool {
        let (left, right, _) = aligned(lhs, rhs)
        return left < right
    }
}

/// How a decimal column type bounds its values: BigQuery's NUMERIC (38 digits, 9 after the
/// point) and BIGNUMERIC (76 digits, 38 after the point), or a parameterized `NUMERIC(P, S)`.
public struct DecimalLimits: Sendable, Hashable {
    public var precision: Int
    public var scale: Int

    public init(precision: Int, scale: Int) {
        self.precision = precision
        self.scale = scale
    }

    public static let numeric = DecimalLimits(precision: 38, scale: 9)
    public static let bigNumeric = DecimalLimits(precision: 76, scale: 38)

    public enum Fit: Sendable, Equatable {
        case fits(ExactDecimal)
        /// More digits after the point than the scale keeps: rounding would change the value.
        case tooManyFractionDigits
        /// More digits before the point than precision − scale.
        case outOfRange
    }

    /// Whether `value` is kept exactly. Nothing is rounded: a value the type can't hold as it
    /// is is refused (a bad row), so no cost changes silently on its way in.
    public func check(_ value: ExactDecimal) -> Fit {
        if value.integerDigits > precision - scale { return .outOfRange }
        if value.scale > scale { return .tooManyFractionDigits }
        return .fits(value)
    }

    /// `value` as a column of this type stores a computed result: rounded to the scale, nil
    /// when it is out of range even then.
    public func store(_ value: ExactDecimal) -> ExactDecimal? {
        let rounded = value.rounded(scale: scale)
        return rounded.integerDigits > precision - scale ? nil : rounded
    }
}
