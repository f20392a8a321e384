import Foundation

extension WarehouseValue {
    /// The value as a JSON value: an integer or real as a number, NULL as `null`, text as a
    /// string, a blob as a base64 string. A real that is not finite (SQLite keeps ±infinity)
    /// has no JSON number, so it is the string `"Infinity"`, `"-Infinity"` or `"NaN"`.
    public var jsonText: String {
        switch self {
        case .null: "null"
        case .integer(let value): String(value)
        case .real(let value) where value.isNaN: "\"NaN\""
        case .real(let value) where value.isInfinite: value < 0 ? "\"-Infinity\"" : "\"Infinity\""
        case .real(let value): String(value)
        case .text(let value): Self.jsonString(value)
        case .blob(let bytes): "\"\(Data(bytes).base64EncodedString())\""
        }
    }

    /// `text` as a JSON string: quoted, with quotes, backslashes and control characters
    /// escaped, and everything else as it is.
    public static func jsonString(_ text: String) -> String {
        var bytes: [UInt8] = [0x22]
        bytes.reserveCapacity(text.utf8.count + 2)
        let hex = Array("0123456789abcdef".utf8)
        for byte in text.utf8 {
            switch byte {
            case 0x22: bytes += [0x5C, 0x22]
            case 0x5C: bytes += [0x5C, 0x5C]
            case 0x0A: bytes += [0x5C, 0x6E]
            case 0x0D: bytes += [0x5C, 0x72]
            case 0x09: bytes += [0x5C, 0x74]
            case 0..<0x20: bytes += [0x5C, 0x75, 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            default: bytes.append(byte)
            }
        }
        bytes.append(0x22)
        return String(decoding: bytes, as: UTF8.self)
    }
}
