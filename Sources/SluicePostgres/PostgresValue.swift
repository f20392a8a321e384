import Foundation
import NIOCore
import PostgresNIO
import SluiceModel
import SluiceStorage

/// How warehouse values travel to and from PostgreSQL, so that a value read from a PostgreSQL
/// warehouse is the same `WarehouseValue` the SQLite warehouse gives for it and the engine's
/// SQL and tests work on both: BOOL is 1 or 0; DATE, TIMESTAMP, DATETIME and TIME are the
/// canonical text ingest writes (`2024-05-01`, `2024-05-01T12:00:00.000000Z`); JSON is its text;
/// NUMERIC is an integer when it is whole and fits, else its canonical decimal text (what SQLite
/// keeps in a decimal column), never a double.
enum PostgresValue {
    /// The PostgreSQL type of a column type: faithful, so analysts and BI tools see real types.
    static func sqlType(_ type: ColumnType) -> String {
        switch type {
        case .string: "text"
        case .int64: "bigint"
        case .float64: "double precision"
        case .numeric: "numeric(38,9)"
        case .bigNumeric: "numeric(76,38)"
        case .bool: "boolean"
        case .date: "date"
        case .timestamp: "timestamp with time zone"
        case .datetime: "timestamp without time zone"
        case .time: "time without time zone"
        case .bytes: "bytea"
        // `json` keeps the text as written (as SQLite does); `jsonb` would reorder its keys.
        case .json: "json"
        }
    }

    /// The column type of a PostgreSQL type as `format_type` spells it; text for anything else.
    static func columnType(_ sqlType: String) -> ColumnType {
        let base = sqlType.prefix { $0 != "(" }.trimmingCharacters(in: .whitespaces)
        switch base {
        case "bigint", "integer", "smallint": return .int64
        case "double precision", "real": return .float64
        case "numeric": return sqlType.hasPrefix("numeric(76,38)") ? .bigNumeric : .numeric
        case "boolean": return .bool
        case "date": return .date
        case "timestamp with time zone": return .timestamp
        case "timestamp without time zone": return .datetime
        case "time without time zone": return .time
        case "bytea": return .bytes
        case "json", "jsonb": return .json
        default: return .string
        }
    }

    /// The column type of a result column, from its type and modifier (`numeric(76,38)`'s is
    /// `(76 << 16 | 38) + 4`); nil for a type the engine has no column type for.
    static func columnType(_ type: PostgresDataType, modifier: Int32) -> ColumnType? {
        switch type {
        case .int2, .int4, .int8: return .int64
        case .float4, .float8: return .float64
        case .numeric: return modifier >= 4 && (modifier - 4) >> 16 > 38 ? .bigNumeric : .numeric
        case .bool: return .bool
        case .date: return .date
        case .timestamptz: return .timestamp
        case .timestamp: return .datetime
        case .time: return .time
        case .bytea: return .bytes
        case .json, .jsonb: return .json
        case .text, .varchar, .bpchar, .name: return .string
        default: return nil
        }
    }

    // MARK: Binding

    /// Bound parameters for `values`. Text goes untyped, so PostgreSQL reads it as the type the
    /// statement needs (a timestamp compared with `'2024-05-01'`, a date inserted from text), as
    /// SQLite's loose typing lets the engine's SQL do.
    static func bindings(_ values: [WarehouseValue]) -> PostgresBindings {
        var bindings = PostgresBindings(capacity: values.count)
        for value in values {
            switch value {
            case .null: bindings.appendNull()
            case .integer(let number): bindings.append(number)
            case .real(let number): bindings.append(number)
            case .text(let text): bindings.append(UntypedText(text: text))
            case .blob(let bytes): bindings.append(ByteBuffer(bytes: bytes))
            }
        }
        return bindings
    }

    /// Text whose type the server infers from where it is used.
    struct UntypedText: PostgresDynamicTypeEncodable {
        var text: String
        var psqlType: PostgresDataType { .null }
        var psqlFormat: PostgresFormat { .text }

        func encode<JSONEncoder: PostgresJSONEncoder>(into byteBuffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
            byteBuffer.writeString(text)
        }
    }

    // MARK: COPY

    /// Appends `value` as a field of COPY's text format: `\N` for null, backslash escapes for
    /// the characters that delimit fields and rows, a bytea in hex.
    static func appendCopyField(_ value: WarehouseValue, to buffer: inout ByteBuffer) {
        switch value {
        case .null:
            buffer.writeStaticString("\\N")
        case .integer(let number):
            appendDecimal(number, to: &buffer)
        case .real(let number):
            buffer.writeString(realText(number))
        case .text(let text):
            var text = text
            text.withUTF8 { bytes in
                var start = 0
                for (index, byte) in bytes.enumerated() {
                    let escape: UInt8? =
                        switch byte {
                        case 0x5C: 0x5C
                        case 0x09: UInt8(ascii: "t")
                        case 0x0A: UInt8(ascii: "n")
                        case 0x0D: UInt8(ascii: "r")
                        default: nil
                        }
                    guard let escape else { continue }
                    buffer.writeBytes(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[start..<index]))
                    buffer.writeBytes([0x5C, escape])
                    start = index + 1
                }
                buffer.writeBytes(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[start...]))
            }
        case .blob(let bytes):
            // `\x…` once COPY has read its own escape.
            buffer.writeStaticString("\\\\x")
            let hex = Array("0123456789abcdef".utf8)
            for byte in bytes { buffer.writeBytes([hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]) }
        }
    }

    /// Writes `number` in decimal digits, without making a String of it first (a load writes
    /// millions of them).
    static func appendDecimal(_ number: Int64, to buffer: inout ByteBuffer) {
        if number < 0 { buffer.writeInteger(UInt8(ascii: "-")) }
        var magnitude = number.magnitude
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: room for UInt64's 20 digits
        withUnsafeMutableBytes(of: &digits) { scratch in
            var start = scratch.count
            repeat {
                start -= 1
                scratch[start] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: scratch[start...]))
        }
    }

    /// A double as PostgreSQL reads it back exactly (its own words for the values without digits).
    static func realText(_ number: Double) -> String {
        if number.isNaN { return "NaN" }
        if number.isInfinite { return number < 0 ? "-Infinity" : "Infinity" }
        return String(number)
    }

    // MARK: Reading

    /// A cell of a result (postgres-nio reads results in binary) as a warehouse value.
    static func value(_ cell: PostgresCell) -> WarehouseValue {
        guard var bytes = cell.bytes else { return .null }
        if cell.format == .text {
            return .text(bytes.readString(length: bytes.readableBytes) ?? "")
        }
        switch cell.dataType {
        case .bool:
            return .integer(bytes.readInteger(as: UInt8.self) == 0 ? 0 : 1)
        case .int2:
            return bytes.readInteger(as: Int16.self).map { .integer(Int64($0)) } ?? .null
        case .int4, .oid:
            return bytes.readInteger(as: Int32.self).map { .integer(Int64($0)) } ?? .null
        case .int8:
            return bytes.readInteger(as: Int64.self).map { .integer($0) } ?? .null
        case .float4:
            return bytes.readInteger(as: UInt32.self).map { .real(Double(Float(bitPattern: $0))) } ?? .null
        case .float8:
            return bytes.readInteger(as: UInt64.self).map { .real(Double(bitPattern: $0)) } ?? .null
        case .numeric:
            return numeric(&bytes).map(canonicalNumeric) ?? .null
        case .bytea:
            return .blob(bytes.readBytes(length: bytes.readableBytes) ?? [])
        case .date:
            guard let days = bytes.readInteger(as: Int32.self) else { return .null }
            if days == Int32.max { return .text("infinity") }
            if days == Int32.min { return .text("-infinity") }
            return .text(dateText(daysSince2000: Int(days)))
        case .timestamptz, .timestamp:
            guard let micros = bytes.readInteger(as: Int64.self) else { return .null }
            if micros == Int64.max { return .text("infinity") }
            if micros == Int64.min { return .text("-infinity") }
            return .text(timestampText(microsSince2000: micros, zone: cell.dataType == .timestamptz ? "Z" : ""))
        case .time:
            guard let micros = bytes.readInteger(as: Int64.self) else { return .null }
            return .text(clockText(micros: micros, alwaysFraction: false))
        case .jsonb:
            // A version byte (1), then the text.
            _ = bytes.readInteger(as: UInt8.self)
            return .text(bytes.readString(length: bytes.readableBytes) ?? "")
        case .uuid:
            guard let raw = bytes.readBytes(length: 16) else { return .null }
            let hex = raw.map { String(format: "%02x", $0) }.joined()
            let parts = [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { range in
                String(hex[hex.index(hex.startIndex, offsetBy: range.lowerBound)..<hex.index(hex.startIndex, offsetBy: range.upperBound)])
            }
            return .text(parts.joined(separator: "-"))
        case .void:
            return .null
        default:
            // text, varchar, name, bpchar, json and others whose binary form is their text.
            return .text(bytes.readString(length: bytes.readableBytes) ?? "")
        }
    }

    /// `YYYY-MM-DD` of a day counted from 2000-01-01, PostgreSQL's epoch.
    static func dateText(daysSince2000 days: Int) -> String {
        let date = CalendarDate(daysSinceEpoch: days + 10_957)
        return pad(date.year, 4) + "-" + pad(date.month, 2) + "-" + pad(date.day, 2)
    }

    /// `YYYY-MM-DDTHH:MM:SS.ffffff` and `zone`, of an instant counted in microseconds from
    /// 2000-01-01 00:00 (UTC for a timestamptz).
    static func timestampText(microsSince2000 micros: Int64, zone: String) -> String {
        let perDay: Int64 = 86_400_000_000
        var days = micros / perDay
        var rest = micros % perDay
        if rest < 0 {
            rest += perDay
            days -= 1
        }
        return dateText(daysSince2000: Int(days)) + "T" + clockText(micros: rest, alwaysFraction: true) + zone
    }

    /// `HH:MM:SS` with `.ffffff` when asked or when there is a fraction, as ingest writes times.
    static func clockText(micros: Int64, alwaysFraction: Bool) -> String {
        let seconds = Int(micros / 1_000_000)
        let fraction = Int(micros % 1_000_000)
        var text = pad(seconds / 3600, 2) + ":" + pad(seconds / 60 % 60, 2) + ":" + pad(seconds % 60, 2)
        if alwaysFraction || fraction > 0 { text += "." + pad(fraction, 6) }
        return text
    }

    private static func pad(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }

    /// The exact decimal text of a binary numeric: sign, digits in base 10000 with a weight,
    /// and a display scale.
    static func numeric(_ bytes: inout ByteBuffer) -> String? {
        guard let count = bytes.readInteger(as: Int16.self), let weight = bytes.readInteger(as: Int16.self),
            let sign = bytes.readInteger(as: UInt16.self), let scale = bytes.readInteger(as: Int16.self)
        else { return nil }
        switch sign {
        case 0xC000: return "NaN"
        case 0xD000: return "Infinity"
        case 0xF000: return "-Infinity"
        default: break
        }
        var groups: [Int] = []
        for _ in 0..<max(0, Int(count)) {
            guard let group = bytes.readInteger(as: Int16.self) else { return nil }
            groups.append(Int(group))
        }
        // Group i stands for group * 10000^(weight - i).
        var integer = ""
        if weight >= 0 {
            for index in 0...Int(weight) {
                let group = index < groups.count ? groups[index] : 0
                integer += index == 0 ? String(group) : pad(group, 4)
            }
        } else {
            integer = "0"
        }
        var fraction = ""
        if scale > 0 {
            var index = Int(weight) + 1
            while fraction.count < Int(scale) {
                let group = index >= 0 && index < groups.count ? groups[index] : 0
                fraction += pad(group, 4)
                index += 1
            }
            fraction = String(fraction.prefix(Int(scale)))
        }
        let text = fraction.isEmpty ? integer : integer + "." + fraction
        return sign == 0x4000 ? "-" + text : text
    }

    /// A numeric as the engine reads it on every warehouse: a whole number that fits as an
    /// integer (a sum of integers, a count), anything else as its canonical decimal text, exact.
    static func canonicalNumeric(_ text: String) -> WarehouseValue {
        switch text {
        case "NaN": return .real(.nan)
        case "Infinity": return .real(.infinity)
        case "-Infinity": return .real(-.infinity)
        default: break
        }
        guard let decimal = ExactDecimal(text) else { return .text(text) }
        if decimal.scale == 0, let integer = Int64(decimal.description) { return .integer(integer) }
        return .text(decimal.description)
    }
}
