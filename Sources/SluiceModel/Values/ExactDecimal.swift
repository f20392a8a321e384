import BigInt

/// A decimal number kept exactly: an integer significand and the number of its digits after
/// the point. Cost data is decimal (invoices add up to the cent and below), so NUMERIC and
/// BIGNUMERIC values are this, never a binary double, from ingest to the published table.
///
/// Values are normalized: no trailing zeros after the point, and zero is `0`. Two spellings of
/// one number (`1.50`, `1.5`, `15e-1`) are one value with one text, `description`, which is
/// what the warehouse stores on SQLite and what PostgreSQL's `numeric` reads.
public struct ExactDecimal: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The value times 10^scale: in 128 bits when it fits (every NUMERIC does, and costs and
    /// prices are NUMERIC), else a BigInt. Never `.big` for a value `.small` holds, so two
    /// equal values are equal here too.
    private enum Significand: Sendable, Hashable {
        case small(Int128)
        case big(BigInt)
    }

    private var storage: Significand
    /// Digits after the point; never negative.
    public private(set) var scale: Int

    /// The most digits after the point a division keeps before it rounds: BIGNUMERIC's scale.
    public static let divisionScale = 38

    /// The value times 10^scale.
    public var significand: BigInt {
        switch storage {
        case .small(let value): Self.big(value)
        case .big(let value): value
        }
    }

    // BigInt's generic conversions take a negative Int128 2^64 off (its words are read as
    // 64-bit two's complement pieces): convert through sign and magnitude instead.

    private static func big(_ value: Int128) -> BigInt {
        BigInt(sign: value < 0 ? .minus : .plus, magnitude: BigUInt(value.magnitude))
    }

    private static func small(_ value: BigInt) -> Int128? {
        guard let magnitude = UInt128(exactly: value.magnitude) else { return nil }
        if value.sign == .minus {
            return magnitude <= UInt128(Int128.max) + 1 ? Int128(truncatingIfNeeded: 0 &- magnitude) : nil
        }
        return Int128(exactly: magnitude)
    }

    public init(significand: BigInt, scale: Int) {
        if scale < 0 {
            self.init(big: significand * Self.bigPower(-scale), scale: 0)
        } else {
            self.init(big: significand, scale: scale)
        }
    }

    public init(_ value: Int64) {
        storage = .small(Int128(value))
        scale = 0
    }

    public init(_ value: Int) {
        storage = .small(Int128(value))
        scale = 0
    }

    /// From a 128-bit significand, normalized.
    private init(small value: Int128, scale: Int) {
        var value = value
        var scale = scale
        if value == 0 {
            scale = 0
        } else {
            while scale > 0, value % 10 == 0 {
                value /= 10
                scale -= 1
            }
        }
        storage = .small(value)
        self.scale = scale
    }

    /// From a BigInt significand and a scale of at least 0, normalized, in 128 bits if it fits.
    private init(big value: BigInt, scale: Int) {
        var value = value
        var scale = scale
        if value.isZero {
            scale = 0
        } else {
            // Zeros go 16 at a time while they can, then in halving steps.
            var chunk = 16
            while scale > 0, chunk > 0 {
                let step = min(chunk, scale)
                let (quotient, remainder) = value.quotientAndRemainder(dividingBy: Self.bigPower(step))
                if remainder.isZero {
                    value = quotient
                    scale -= step
                } else {
                    chunk = step / 2
                }
            }
        }
        storage = Self.small(value).map(Significand.small) ?? .big(value)
        self.scale = scale
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
        // Digits go into 128 bits; past 38 of them, into a BigInt, 18 at a time.
        var small: Int128 = 0
        var big: BigInt?
        var chunk: UInt64 = 0
        var chunkDigits = 0
        var digits = 0
        var fractionDigits = 0
        var seenPoint = false
        while index < count {
            let byte = bytes[index]
            if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                let digit = byte - UInt8(ascii: "0")
                if big == nil, digits < 38 {
                    small = small * 10 + Int128(digit)
                } else {
                    if big == nil { big = Self.big(small) }
                    chunk = chunk * 10 + UInt64(digit)
                    chunkDigits += 1
                    if chunkDigits == 18 {
                        big = big! * bigPower(18) + BigInt(chunk)
                        chunk = 0
                        chunkDigits = 0
                    }
                }
                digits += 1
                if seenPoint { fractionDigits += 1 }
            } else if byte == UInt8(ascii: "."), !seenPoint {
                seenPoint = true
            } else {
                break
            }
            index += 1
        }
        guard digits > 0 else { return nil }
        if let value = big, chunkDigits > 0 { big = value * bigPower(chunkDigits) + BigInt(chunk) }
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
        let scale = fractionDigits - exponent
        if let big { return ExactDecimal(significand: negative ? -big : big, scale: scale) }
        if scale >= 0 { return ExactDecimal(small: negative ? -small : small, scale: scale) }
        if let whole = scaled(small, by: -scale) { return ExactDecimal(small: negative ? -whole : whole, scale: 0) }
        return ExactDecimal(significand: Self.big(negative ? -small : small), scale: scale)
    }

    /// 10^exponent in 128 bits, for exponent 0...38.
    private static let smallPowers: [Int128] = {
        var values: [Int128] = [1]
        for _ in 1...38 { values.append(values[values.count - 1] * 10) }
        return values
    }()

    /// 10^exponent.
    static func bigPower(_ exponent: Int) -> BigInt {
        if exponent < bigPowers.count { return bigPowers[exponent] }
        return BigInt(10).power(exponent)
    }

    private static let bigPowers: [BigInt] = {
        var values: [BigInt] = [1]
        for _ in 1...160 { values.append(values[values.count - 1] * 10) }
        return values
    }()

    /// `value × 10^exponent` in 128 bits; nil when it doesn't fit.
    private static func scaled(_ value: Int128, by exponent: Int) -> Int128? {
        guard exponent < smallPowers.count else { return value == 0 ? 0 : nil }
        let (product, overflow) = value.multipliedReportingOverflow(by: smallPowers[exponent])
        return overflow ? nil : product
    }

    public var isZero: Bool {
        switch storage {
        case .small(let value): value == 0
        case .big(let value): value.isZero
        }
    }

    public var isNegative: Bool {
        switch storage {
        case .small(let value): value < 0
        case .big(let value): value.sign == .minus && !value.isZero
        }
    }

    /// Digits before the point, leading zeros not counted (0 for a value below 1).
    public var integerDigits: Int {
        var digits = 1
        switch storage {
        case .small(let value):
            let magnitude = value.magnitude
            while digits < Self.smallPowers.count, magnitude >= UInt128(Self.smallPowers[digits]) { digits += 1 }
        case .big(let value):
            let magnitude = BigInt(value.magnitude)
            while magnitude >= Self.bigPower(digits) { digits += 1 }
        }
        return max(0, digits - scale)
    }

    /// The canonical text (`description`) as UTF-8, without making a String when the value fits
    /// 128 bits: what SQLite's decimal functions hand back for every row.
    public func withCanonicalText<Result>(_ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
        guard case .small(let value) = storage, scale <= 40 else {
            var text = description
            return text.withUTF8(body)
        }
        // Sign, up to 39 digits, a point and up to 40 zeros after it: 82 bytes at most.
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 96) { buffer in
            var end = buffer.count
            var magnitude = value.magnitude
            var written = 0
            func put(_ byte: UInt8) {
                end -= 1
                buffer[end] = byte
            }
            repeat {
                if written == scale, scale > 0 { put(UInt8(ascii: ".")) }
                put(UInt8(ascii: "0") + UInt8(magnitude % 10))
                magnitude /= 10
                written += 1
            } while magnitude > 0 || written <= scale
            if value < 0 { put(UInt8(ascii: "-")) }
            return body(UnsafeBufferPointer(rebasing: buffer[end...]))
        }
    }

    /// The canonical text: `-12.5`, `0.001`, `100`. No exponent, no `+`, no trailing zeros.
    public var description: String {
        let digits =
            switch storage {
            case .small(let value): String(value.magnitude)
            case .big(let value): value.magnitude.description
            }
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

    /// Both significands in 128 bits at the larger of the two scales, when they fit.
    private static func alignedSmall(_ lhs: ExactDecimal, _ rhs: ExactDecimal) -> (Int128, Int128, Int)? {
        guard case .small(let left) = lhs.storage, case .small(let right) = rhs.storage else { return nil }
        if lhs.scale == rhs.scale { return (left, right, lhs.scale) }
        if lhs.scale > rhs.scale { return scaled(right, by: lhs.scale - rhs.scale).map { (left, $0, lhs.scale) } }
        return scaled(left, by: rhs.scale - lhs.scale).map { ($0, right, rhs.scale) }
    }

    /// Both significands at the larger of the two scales.
    private static func aligned(_ lhs: ExactDecimal, _ rhs: ExactDecimal) -> (BigInt, BigInt, Int) {
        let (left, right) = (lhs.significand, rhs.significand)
        if lhs.scale == rhs.scale { return (left, right, lhs.scale) }
        if lhs.scale > rhs.scale { return (left, right * bigPower(lhs.scale - rhs.scale), lhs.scale) }
        return (left * bigPower(rhs.scale - lhs.scale), right, rhs.scale)
    }

    public static func + (lhs: ExactDecimal, rhs: ExactDecimal) -> ExactDecimal {
        if let (left, right, scale) = alignedSmall(lhs, rhs) {
            let (sum, overflow) = left.addingReportingOverflow(right)
            if !overflow { return ExactDecimal(small: sum, scale: scale) }
        }
        let (left, right, scale) = aligned(lhs, rhs)
        return ExactDecimal(significand: left + right, scale: scale)
    }

    public static func - (lhs: ExactDecimal, rhs: ExactDecimal) -> ExactDecimal {
        lhs + -rhs
    }

    public static func * (lhs: ExactDecimal, rhs: ExactDecimal) -> ExactDecimal {
        if case .small(let left) = lhs.storage, case .small(let right) = rhs.storage {
            let (product, overflow) = left.multipliedReportingOverflow(by: right)
            if !overflow { return ExactDecimal(small: product, scale: lhs.scale + rhs.scale) }
        }
        return ExactDecimal(significand: lhs.significand * rhs.significand, scale: lhs.scale + rhs.scale)
    }

    public static prefix func - (value: ExactDecimal) -> ExactDecimal {
        // -Int128.min doesn't fit: that one goes the BigInt way.
        if case .small(let significand) = value.storage, significand != .min {
            return ExactDecimal(small: -significand, scale: value.scale)
        }
        return ExactDecimal(significand: -value.significand, scale: value.scale)
    }

    public var magnitude: ExactDecimal { isNegative ? -self : self }

    /// `self / divisor`, exact when the quotient ends within `scale` digits after the point,
    /// else rounded there, half away from zero. nil when `divisor` is zero.
    public func divided(by divisor: ExactDecimal, scale: Int = ExactDecimal.divisionScale) -> ExactDecimal? {
        guard !divisor.isZero else { return nil }
        if let quotient = smallQuotient(divisor, scale: scale) { return quotient }
        // self / divisor = (a / 10^sa) / (b / 10^sb); scaled by 10^(scale+1) to round once.
        let shift = scale + 1 + divisor.scale - self.scale
        var numerator = significand
        var denominator = divisor.significand
        if shift >= 0 { numerator *= Self.bigPower(shift) } else { denominator *= Self.bigPower(-shift) }
        return ExactDecimal(significand: Self.roundLastDigit(numerator / denominator), scale: scale)
    }

    /// `divided(by:scale:)` by long division in 128 bits, which stops as soon as the quotient
    /// ends (a price divided by 1e6 takes six digits, not 38); nil when the operands or the
    /// quotient outgrow 128 bits, for the general way to answer.
    private func smallQuotient(_ divisor: ExactDecimal, scale limit: Int) -> ExactDecimal? {
        guard case .small(let a) = storage, case .small(let b) = divisor.storage, a != .min, b != .min,
            b.magnitude <= UInt128(Self.smallPowers[37])
        else { return nil }
        // self / divisor = (a / b) × 10^-shift; a / b needs `limit - shift` digits after the point.
        let shift = self.scale - divisor.scale
        // By a power of ten (`/ 1e6`, prices per million): the point moves, nothing is divided.
        if let power = Self.smallPowers.firstIndex(of: Int128(b.magnitude)), shift + power >= 0, shift + power <= limit {
            return ExactDecimal(small: b < 0 ? -a : a, scale: shift + power)
        }
        let digitsWanted = limit - shift
        guard digitsWanted >= 0 else { return nil }
        let denominator = b.magnitude
        var remainder = a.magnitude
        var quotient = remainder / denominator
        remainder %= denominator
        var digits = 0
        while remainder != 0, digits < digitsWanted {
            let (tenfold, overflow) = quotient.multipliedReportingOverflow(by: 10)
            guard !overflow else { return nil }
            remainder *= 10
            quotient = tenfold + remainder / denominator
            remainder %= denominator
            digits += 1
        }
        // Rounded half away from zero on the first digit not kept.
        if remainder != 0, remainder * 10 / denominator >= 5 {
            let (rounded, overflow) = quotient.addingReportingOverflow(1)
            guard !overflow else { return nil }
            quotient = rounded
        }
        guard let magnitude = Int128(exactly: quotient) else { return nil }
        let signed = (a < 0) != (b < 0) ? -magnitude : magnitude
        let scale = digits + shift
        return scale >= 0 ? ExactDecimal(small: signed, scale: scale) : ExactDecimal(significand: Self.big(signed), scale: scale)
    }

    /// Rounded to `scale` digits after the point, half away from zero (as BigQuery and
    /// PostgreSQL round a value stored into a column of that scale).
    public func rounded(scale target: Int) -> ExactDecimal {
        guard scale > target else { return self }
        let dropped = scale - target
        if case .small(let value) = storage, dropped - 1 < Self.smallPowers.count {
            let kept = value / Self.smallPowers[dropped - 1]
            let (quotient, remainder) = kept.quotientAndRemainder(dividingBy: 10)
            let rounded = remainder >= 5 ? quotient + 1 : (remainder <= -5 ? quotient - 1 : quotient)
            return target >= 0 ? ExactDecimal(small: rounded, scale: target) : ExactDecimal(significand: Self.big(rounded), scale: target)
        }
        let kept = significand / Self.bigPower(dropped - 1)
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
        if let (left, right, _) = alignedSmall(lhs, rhs) { return left < right }
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
