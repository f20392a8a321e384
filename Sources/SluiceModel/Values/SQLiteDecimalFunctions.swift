import Foundation
import GRDBSQLite

/// Exact decimal arithmetic for SQLite, which has no decimal type. The warehouse keeps NUMERIC
/// and BIGNUMERIC values as canonical decimal text (`ExactDecimal.description`), compared by
/// the `decimal` collation; these functions compute on them without going through a double.
/// Every connection that reads or writes a warehouse (a run's, a procedure's sandbox, a query's,
/// lint's) registers them. Names and results follow the `decimal` extension the sqlite3 shell
/// carries, so the same SQL works there on a warehouse file:
///
/// | function | result |
/// |---|---|
/// | `decimal(X)` | X as canonical decimal text |
/// | `decimal_add(X, Y)`, `decimal_sub(X, Y)`, `decimal_mul(X, Y)` | X + Y, X − Y, X × Y, exact |
/// | `decimal_div(X, Y)` | X ÷ Y, exact to 38 digits after the point, then rounded; NULL when Y is 0 |
/// | `decimal_cmp(X, Y)` | −1, 0 or 1 |
/// | `decimal_round(X, N)` | X rounded to N digits after the point, half away from zero |
/// | `decimal_sum(X)` | the exact sum (aggregate); NULL when every X is NULL |
/// | `decimal_avg(X)` | the average, exact to 38 digits after the point (aggregate) |
/// | `decimal_min(X)`, `decimal_max(X)` | the least and greatest (aggregate) |
/// | `decimal_store(X, P, S)` | X as a NUMERIC(P, S) column keeps a computed value: rounded to S digits, an error past P |
///
/// Arguments may be integers, decimal text or reals (a real stands for its shortest decimal
/// spelling); NULL gives NULL. Text that is not a decimal number is an error that names it.
public enum SQLiteDecimalFunctions {
    /// Registers the functions and the `decimal` collation on `connection`.
    public static func register(on connection: OpaquePointer?) {
        let flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC
        scalar(connection, "decimal", 1, flags) { x, _ in x }
        scalar(connection, "decimal_add", 2, flags) { x, y in y.map { x + $0 } }
        scalar(connection, "decimal_sub", 2, flags) { x, y in y.map { x - $0 } }
        scalar(connection, "decimal_mul", 2, flags) { x, y in y.map { x * $0 } }
        scalar(connection, "decimal_div", 2, flags) { x, y in y.flatMap { x.divided(by: $0) } }
        sqlite3_create_function_v2(
            connection, "decimal_cmp", 2, flags, nil,
            { context, _, values in
                guard let values, let left = SQLiteDecimalFunctions.argument(context, values[0], "decimal_cmp"),
                    let right = SQLiteDecimalFunctions.argument(context, values[1], "decimal_cmp")
                else { return }
                guard case .value(let x) = left, case .value(let y) = right else {
                    sqlite3_result_null(context)
                    return
                }
                sqlite3_result_int(context, x < y ? -1 : (x == y ? 0 : 1))
            }, nil, nil, nil)
        sqlite3_create_function_v2(
            connection, "decimal_round", 2, flags, nil,
            { context, _, values in
                guard let values, let value = SQLiteDecimalFunctions.argument(context, values[0], "decimal_round") else { return }
                guard case .value(let x) = value, sqlite3_value_type(values[1]) != SQLITE_NULL else {
                    sqlite3_result_null(context)
                    return
                }
                let digits = Int(sqlite3_value_int64(values[1]))
                guard (0...ExactDecimal.divisionScale).contains(digits) else {
                    sqlite3_result_error(context, "decimal_round: the number of digits must be 0 to 38", -1)
                    return
                }
                SQLiteDecimalFunctions.result(context, x.rounded(scale: digits))
            }, nil, nil, nil)
        sqlite3_create_function_v2(
            connection, "decimal_store", 3, flags, nil,
            { context, _, values in
                guard let values, let value = SQLiteDecimalFunctions.argument(context, values[0], "decimal_store") else { return }
                guard case .value(let x) = value else {
                    sqlite3_result_null(context)
                    return
                }
                let limits = DecimalLimits(precision: Int(sqlite3_value_int64(values[1])), scale: Int(sqlite3_value_int64(values[2])))
                // BIGNUMERIC's bounds at most: a procedure can't make it compute 10^(10^9).
                guard (1...76).contains(limits.precision), (0...limits.precision).contains(limits.scale) else {
                    sqlite3_result_error(context, "decimal_store: precision must be 1 to 76 and scale 0 to the precision", -1)
                    return
                }
                guard let stored = limits.store(x) else {
                    let message = "\(x) is out of range for NUMERIC(\(limits.precision), \(limits.scale))"
                    sqlite3_result_error(context, message, -1)
                    return
                }
                SQLiteDecimalFunctions.result(context, stored)
            }, nil, nil, nil)
        aggregate(connection, "decimal_sum", .sum)
        aggregate(connection, "decimal_avg", .average)
        aggregate(connection, "decimal_min", .minimum)
        aggregate(connection, "decimal_max", .maximum)
        sqlite3_create_collation_v2(
            connection, "decimal", SQLITE_UTF8, nil,
            { _, leftCount, left, rightCount, right in
                SQLiteDecimalFunctions.compare(
                    UnsafeBufferPointer(start: left?.assumingMemoryBound(to: UInt8.self), count: Int(leftCount)),
                    UnsafeBufferPointer(start: right?.assumingMemoryBound(to: UInt8.self), count: Int(rightCount)))
            }, nil)
    }

    /// Text that is a decimal compares as a number; other text compares after every number,
    /// byte by byte, so the order is total.
    static func compare(_ left: UnsafeBufferPointer<UInt8>, _ right: UnsafeBufferPointer<UInt8>) -> Int32 {
        // What tables hold is canonical text, which orders without being parsed: every sort,
        // index lookup and comparison of a decimal column comes through here.
        if let order = canonicalOrder(left, right) { return order }
        switch (ExactDecimal.parse(left), ExactDecimal.parse(right)) {
        case (let x?, let y?): return x < y ? -1 : (x == y ? 0 : 1)
        case (.some, nil): return -1
        case (nil, .some): return 1
        case (nil, nil):
            let common = min(left.count, right.count)
            if common > 0, let a = left.baseAddress, let b = right.baseAddress {
                let order = memcmp(a, b, common)
                if order != 0 { return order < 0 ? -1 : 1 }
            }
            return left.count == right.count ? 0 : (left.count < right.count ? -1 : 1)
        }
    }

    /// The order of two canonical decimal texts (`ExactDecimal.description`), nil when either is
    /// not one. Canonical texts have no leading or trailing zeros, so for two of one sign the
    /// one with more digits before the point is further from zero, and with as many the bytes
    /// order them.
    static func canonicalOrder(_ left: UnsafeBufferPointer<UInt8>, _ right: UnsafeBufferPointer<UInt8>) -> Int32? {
        guard let a = canonicalShape(left), let b = canonicalShape(right) else { return nil }
        if a.negative != b.negative { return a.negative ? -1 : 1 }
        var order: Int32
        if a.integerDigits != b.integerDigits {
            order = a.integerDigits < b.integerDigits ? -1 : 1
        } else {
            order = 0
            let common = min(left.count, right.count)
            var index = 0
            while index < common, order == 0 {
                if left[index] != right[index] { order = left[index] < right[index] ? -1 : 1 }
                index += 1
            }
            if order == 0, left.count != right.count { order = left.count < right.count ? -1 : 1 }
        }
        return a.negative ? -order : order
    }

    /// Sign and digits before the point of canonical decimal text; nil for anything else.
    private static func canonicalShape(_ bytes: UnsafeBufferPointer<UInt8>) -> (negative: Bool, integerDigits: Int)? {
        var index = 0
        let negative = bytes.first == UInt8(ascii: "-")
        if negative { index = 1 }
        let start = index
        while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") { index += 1 }
        let integerDigits = index - start
        guard integerDigits > 0, integerDigits == 1 || bytes[start] != UInt8(ascii: "0") else { return nil }
        // A value below one (`0`, `0.5`) counts no digits before the point, so it orders below 1.
        let belowOne = integerDigits == 1 && bytes[start] == UInt8(ascii: "0")
        let whole = belowOne ? 0 : integerDigits
        if index == bytes.count {
            return negative && belowOne ? nil : (negative, whole)  // "-0" is not canonical
        }
        guard bytes[index] == UInt8(ascii: "."), index + 1 < bytes.count, bytes[bytes.count - 1] != UInt8(ascii: "0") else { return nil }
        for byte in bytes[(index + 1)...] where byte < UInt8(ascii: "0") || byte > UInt8(ascii: "9") { return nil }
        return (negative, whole)
    }

    /// A function argument: a decimal, or NULL.
    enum Argument {
        case value(ExactDecimal)
        case null
    }

    /// Reads one argument; on text that is not a number, sets the error and returns nil.
    static func argument(_ context: OpaquePointer?, _ value: OpaquePointer?, _ function: String) -> Argument? {
        switch sqlite3_value_type(value) {
        case SQLITE_NULL:
            return .null
        case SQLITE_INTEGER:
            return .value(ExactDecimal(sqlite3_value_int64(value)))
        case SQLITE_FLOAT:
            if let decimal = ExactDecimal(shortest: sqlite3_value_double(value)) { return .value(decimal) }
            sqlite3_result_error(context, "\(function): \(sqlite3_value_double(value)) is not a decimal number", -1)
            return nil
        default:
            let count = Int(sqlite3_value_bytes(value))
            let bytes = UnsafeBufferPointer(start: sqlite3_value_text(value), count: count)
            if let decimal = ExactDecimal.parse(bytes) { return .value(decimal) }
            let shown = String(decoding: bytes.prefix(40), as: UTF8.self)
            sqlite3_result_error(context, "\(function): '\(shown)' is not a decimal number", -1)
            return nil
        }
    }

    static func result(_ context: OpaquePointer?, _ value: ExactDecimal) {
        value.withCanonicalText { bytes in
            sqlite3_result_text(context, UnsafeRawPointer(bytes.baseAddress)?.assumingMemoryBound(to: CChar.self), Int32(bytes.count), transient)
        }
    }

    /// SQLITE_TRANSIENT: SQLite copies the text before the call returns.
    static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    /// The computation of a scalar function of one or two decimals (`y` is nil for one),
    /// reached through the function's user data.
    private final class Scalar {
        let name: String
        let compute: (ExactDecimal, ExactDecimal?) -> ExactDecimal?
        init(name: String, compute: @escaping (ExactDecimal, ExactDecimal?) -> ExactDecimal?) {
            self.name = name
            self.compute = compute
        }
    }

    private static func scalar(
        _ connection: OpaquePointer?, _ name: String, _ arity: Int32, _ flags: Int32,
        _ compute: @escaping (ExactDecimal, ExactDecimal?) -> ExactDecimal?
    ) {
        let box = Unmanaged.passRetained(Scalar(name: name, compute: compute)).toOpaque()
        sqlite3_create_function_v2(
            connection, name, arity, flags, box,
            { context, count, values in
                let scalar = Unmanaged<Scalar>.fromOpaque(sqlite3_user_data(context)).takeUnretainedValue()
                guard let values, let first = SQLiteDecimalFunctions.argument(context, values[0], scalar.name) else { return }
                var second: Argument?
                if count > 1 {
                    guard let argument = SQLiteDecimalFunctions.argument(context, values[1], scalar.name) else { return }
                    second = argument
                }
                // NULL in, NULL out.
                guard case .value(let x) = first else { return sqlite3_result_null(context) }
                var y: ExactDecimal?
                if let second {
                    guard case .value(let value) = second else { return sqlite3_result_null(context) }
                    y = value
                }
                if let value = scalar.compute(x, y) { SQLiteDecimalFunctions.result(context, value) } else { sqlite3_result_null(context) }
            }, nil, nil,
            { box in if let box { Unmanaged<Scalar>.fromOpaque(box).release() } })
    }

    private enum Fold: Int {
        case sum, average, minimum, maximum
    }

    /// What an aggregate has seen so far.
    private final class Accumulator {
        var total: ExactDecimal?
        var count = 0
    }

    private static func aggregate(_ connection: OpaquePointer?, _ name: String, _ fold: Fold) {
        sqlite3_create_function_v2(
            connection, name, 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, UnsafeMutableRawPointer(bitPattern: fold.rawValue + 1), nil,
            { context, _, values in
                let fold = Fold(rawValue: Int(bitPattern: sqlite3_user_data(context)) - 1) ?? .sum
                guard let argument = SQLiteDecimalFunctions.argument(context, values?[0], SQLiteDecimalFunctions.functionName(fold)) else { return }
                guard case .value(let value) = argument else { return }
                guard let slot = sqlite3_aggregate_context(context, Int32(MemoryLayout<UnsafeMutableRawPointer?>.size)) else {
                    sqlite3_result_error_nomem(context)
                    return
                }
                let pointer = slot.assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
                let accumulator: Accumulator
                if let existing = pointer.pointee {
                    accumulator = Unmanaged<Accumulator>.fromOpaque(existing).takeUnretainedValue()
                } else {
                    accumulator = Accumulator()
                    pointer.pointee = Unmanaged.passRetained(accumulator).toOpaque()
                }
                accumulator.count += 1
                guard let total = accumulator.total else {
                    accumulator.total = value
                    return
                }
                switch fold {
                case .sum, .average: accumulator.total = total + value
                case .minimum: if value < total { accumulator.total = value }
                case .maximum: if value > total { accumulator.total = value }
                }
            },
            { context in
                let fold = Fold(rawValue: Int(bitPattern: sqlite3_user_data(context)) - 1) ?? .sum
                let slot = sqlite3_aggregate_context(context, 0)
                guard let existing = slot?.assumingMemoryBound(to: UnsafeMutableRawPointer?.self).pointee else {
                    sqlite3_result_null(context)
                    return
                }
                let accumulator = Unmanaged<Accumulator>.fromOpaque(existing).takeRetainedValue()
                guard let total = accumulator.total else {
                    sqlite3_result_null(context)
                    return
                }
                if fold == .average, let average = total.divided(by: ExactDecimal(accumulator.count)) {
                    SQLiteDecimalFunctions.result(context, average)
                } else {
                    SQLiteDecimalFunctions.result(context, total)
                }
            }, nil)
    }

    private static func functionName(_ fold: Fold) -> String {
        switch fold {
        case .sum: "decimal_sum"
        case .average: "decimal_avg"
        case .minimum: "decimal_min"
        case .maximum: "decimal_max"
        }
    }
}
