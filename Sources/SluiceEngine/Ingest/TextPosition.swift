/// Line and column arithmetic over UTF-8 bytes, and UTF-8 validation. Columns count
/// characters (Unicode scalars), 1-based, as editors and the YAML positions do.
enum TextPosition {
    /// The line and column reached after the first `offset` bytes of `text`, which starts at
    /// `line`:`column`. LF, CR and CRLF each end a line.
    static func advance(line: Int, column: Int, over text: UnsafeBufferPointer<UInt8>, upTo offset: Int) -> (line: Int, column: Int) {
        var line = line
        var column = column
        var index = 0
        let limit = min(offset, text.count)
        while index < limit {
            let byte = text[index]
            if byte == 0x0A {
                line += 1
                column = 1
            } else if byte == 0x0D {
                if index + 1 < text.count, text[index + 1] == 0x0A {
                    index += 1
                    if index >= limit { break }
                }
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                column += 1
            }
            index += 1
        }
        return (line, column)
    }

    /// Characters (Unicode scalars) in `count` bytes from `start`: every byte that doesn't
    /// continue a multi-byte sequence starts one.
    static func scalars(_ start: UnsafePointer<UInt8>, count: Int) -> Int {
        var total = 0
        for index in 0..<max(count, 0) where start[index] & 0xC0 != 0x80 {
            total += 1
        }
        return total
    }

    /// Whether all `count` bytes from `start` are ASCII, eight at a time.
    static func isASCII(_ start: UnsafePointer<UInt8>, count: Int) -> Bool {
        let raw = UnsafeRawPointer(start)
        var bits: UInt64 = 0
        var index = 0
        while index + 8 <= count {
            bits |= raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            index += 8
        }
        while index < count {
            bits |= UInt64(start[index])
            index += 1
        }
        return bits & 0x8080_8080_8080_8080 == 0
    }

    /// Offset of the first byte in `count` bytes from `start` that is not well-formed UTF-8,
    /// or nil when all of it is. A sequence cut off by `count` counts as invalid.
    static func firstInvalidUTF8(_ start: UnsafePointer<UInt8>, count: Int) -> Int? {
        var index = 0
        while index < count {
            let byte = start[index]
            if byte < 0x80 {
                index += 1
                continue
            }
            let length = sequenceLength(start + index, available: count - index)
            if length == 0 { return index }
            index += length
        }
        return nil
    }

    /// Length of the well-formed UTF-8 sequence starting at `start` (a byte ≥ 0x80), or 0 when
    /// it is malformed or cut off within `available` bytes. Overlong forms and surrogates are
    /// malformed (RFC 3629).
    static func sequenceLength(_ start: UnsafePointer<UInt8>, available: Int) -> Int {
        let lead = start[0]
        let length: Int
        var low: UInt8 = 0x80
        var high: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; high = 0x9F
        case 0xF0: length = 4; low = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; high = 0x8F
        default: return 0
        }
        guard available >= length else { return 0 }
        guard start[1] >= low, start[1] <= high else { return 0 }
        for index in 2..<length where start[index] & 0xC0 != 0x80 {
            return 0
        }
        return length
    }

    /// Whether a truncated sequence at the end of the available bytes could still become
    /// valid with more bytes.
    static func couldContinue(_ start: UnsafePointer<UInt8>, available: Int) -> Bool {
        let lead = start[0]
        let needed: Int
        switch lead {
        case 0xC2...0xDF: needed = 2
        case 0xE0...0xEF: needed = 3
        case 0xF0...0xF4: needed = 4
        default: return false
        }
        guard available < needed else { return false }
        for index in 1..<available where start[index] & 0xC0 != 0x80 {
            return false
        }
        return true
    }
}
