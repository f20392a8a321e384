import Foundation
import Synchronization

/// Masks secrets in text before it leaves the process: log lines, stored step errors and
/// reasons, outputs, notifications, HTTP responses, values quoted in messages (before they are
/// cut short) and text that ingest stores. It masks three things:
/// - every value a run holds in its vault (and the forms a value takes inside URLs, JSON
///   and HTTP Basic credentials), for as long as the run is registered, and any piece of one
///   that is `pieceLength` bytes or longer (a provider that echoes part of a key, a message
///   cut in the middle of one);
/// - the value of an `Authorization` header or `authorization=` pair, whatever it is;
/// - anything that looks like a credential (`CredentialDetector`): provider keys, bearer
///   tokens, private keys, and passwords inside URLs and connection strings.
public final class SecretRedactor: Sendable {
    /// The one the log handler, the executor and the server share.
    public static let shared = SecretRedactor()

    public static let mask = "[redacted]"

    /// Live values by owner (a run id), and all of them longest first, kept sorted as values
    /// come and go rather than on every line redacted.
    private struct Live {
        var byOwner: [String: [String]] = [:]
        var longestFirst: [String] = []
        /// Every `pieceLength`-byte window of every value.
        var pieces: Set<Piece> = []

        mutating func resort() {
            longestFirst = byOwner.values.flatMap { $0 }.sorted { $0.utf8.count > $1.utf8.count }
            pieces = []
            for value in longestFirst {
                let bytes = Array(value.utf8)
                guard bytes.count >= SecretRedactor.pieceLength else { continue }
                for start in 0...(bytes.count - SecretRedactor.pieceLength) { pieces.insert(Piece(bytes, at: start)) }
            }
        }
    }

    /// The shortest piece of a live value that is masked wherever it appears.
    public static let pieceLength = 12

    /// `pieceLength` bytes, packed.
    private struct Piece: Hashable {
        var head: UInt64
        var tail: UInt32

        init(_ bytes: UnsafeBufferPointer<UInt8>, at start: Int) {
            var head: UInt64 = 0
            for offset in 0..<8 { head = head << 8 | UInt64(bytes[start + offset]) }
            var tail: UInt32 = 0
            for offset in 8..<12 { tail = tail << 8 | UInt32(bytes[start + offset]) }
            self.head = head
            self.tail = tail
        }

        init(_ bytes: [UInt8], at start: Int) {
            self = bytes.withUnsafeBufferPointer { Piece($0, at: start) }
        }
    }

    private let live = Mutex(Live())

    public init() {}

    /// Starts masking `value` (and its encodings) for `owner`. Values shorter than 4 bytes
    /// would mask ordinary words, so they are refused earlier (kms_decrypt checks formats).
    public func register(_ value: String, owner: String) {
        guard value.utf8.count >= 4 else { return }
        var forms = [value]
        if let encoded = value.addingPercentEncoding(withAllowedCharacters: .alphanumerics), encoded != value { forms.append(encoded) }
        if let json = try? JSONEncoder().encode(value), case let quoted = String(decoding: json, as: UTF8.self),
            quoted.count > 2, case let escaped = String(quoted.dropFirst().dropLast()), escaped != value
        {
            forms.append(escaped)
        }
        forms.append(Data(value.utf8).base64EncodedString())
        live.withLock {
            $0.byOwner[owner, default: []].append(contentsOf: forms)
            $0.resort()
        }
    }

    /// Stops masking the values of `owner` (at the end of its run, once they are cleared).
    public func forget(owner: String) {
        live.withLock {
            $0.byOwner.removeValue(forKey: owner)
            $0.resort()
        }
    }

    /// Whether any value is registered (for tests).
    public var isEmpty: Bool { live.withLock { $0.longestFirst.isEmpty } }

    /// `text` with every secret masked.
    public func redact(_ text: String) -> String {
        var result = text
        let (values, pieces) = live.withLock { ($0.longestFirst, $0.pieces) }
        for value in values where result.contains(value) {
            result = result.replacingOccurrences(of: value, with: Self.mask)
        }
        result = Self.maskPieces(result, pieces)
        result = Self.maskAuthorization(result)
        let ranges = CredentialDetector.secretRanges(in: result).map(\.bytes).sorted { $0.lowerBound > $1.lowerBound }
        if !ranges.isEmpty {
            var bytes = Array(result.utf8)
            var lastStart = Int.max
            for range in ranges where range.upperBound <= lastStart {
                bytes.replaceSubrange(range, with: Self.mask.utf8)
                lastStart = range.lowerBound
            }
            result = String(decoding: bytes, as: UTF8.self)
        }
        return result
    }

    /// `text` with live values masked, and their pieces, but not what merely looks like a
    /// credential: for data that ingest stores, where a token-shaped value may be the data.
    public func redactLiveValues(_ text: String) -> String {
        let (values, pieces) = live.withLock { ($0.longestFirst, $0.pieces) }
        guard !values.isEmpty else { return text }
        var result = text
        for value in values where result.contains(value) {
            result = result.replacingOccurrences(of: value, with: Self.mask)
        }
        return Self.maskPieces(result, pieces)
    }

    /// Whether no live value is registered: nothing of a run's can be in text then, and the
    /// per-value work can be skipped.
    public var holdsNoLiveValues: Bool { live.withLock { $0.longestFirst.isEmpty } }

    /// Masks every run of bytes made of `pieceLength`-byte windows that are pieces of live
    /// values (the longest such runs, each replaced by one mask), widened to whole characters.
    private static func maskPieces(_ text: String, _ pieces: Set<Piece>) -> String {
        guard !pieces.isEmpty, text.utf8.count >= pieceLength else { return text }
        let bytes = Array(text.utf8)
        var masked: [Range<Int>] = []
        bytes.withUnsafeBufferPointer { buffer in
            var start = 0
            while start <= buffer.count - pieceLength {
                guard pieces.contains(Piece(buffer, at: start)) else {
                    start += 1
                    continue
                }
                var end = start + pieceLength
                while end < buffer.count, pieces.contains(Piece(buffer, at: end - pieceLength + 1)) { end += 1 }
                if let last = masked.last, last.upperBound >= start {
                    masked[masked.count - 1] = last.lowerBound..<end
                } else {
                    masked.append(start..<end)
                }
                start = end - pieceLength + 1
            }
        }
        guard !masked.isEmpty else { return text }
        var result: [UInt8] = []
        result.reserveCapacity(bytes.count)
        var position = 0
        for var range in masked {
            // Never split a UTF-8 sequence: a continuation byte belongs to the character before.
            while range.lowerBound > position, bytes[range.lowerBound] & 0xC0 == 0x80 { range = (range.lowerBound - 1)..<range.upperBound }
            var upper = range.upperBound
            while upper < bytes.count, bytes[upper] & 0xC0 == 0x80 { upper += 1 }
            guard range.lowerBound >= position else { continue }
            result.append(contentsOf: bytes[position..<range.lowerBound])
            result.append(contentsOf: mask.utf8)
            position = upper
        }
        result.append(contentsOf: bytes[position...])
        return String(decoding: result, as: UTF8.self)
    }

    /// `Authorization: <anything>` up to the end of the line, and `authorization=<value>`.
    private static func maskAuthorization(_ text: String) -> String {
        guard text.range(of: "authorization", options: .caseInsensitive) != nil else { return text }
        var result = ""
        var rest = Substring(text)
        while let found = rest.range(of: "authorization", options: .caseInsensitive) {
            result += rest[..<found.upperBound]
            rest = rest[found.upperBound...]
            // The separator: `: `, `=`, `":"` (JSON), with spaces or quotes around it.
            let separator = rest.prefix { $0 == ":" || $0 == "=" || $0 == " " || $0 == "\"" || $0 == "'" }
            guard separator.contains(where: { $0 == ":" || $0 == "=" }) else { continue }
            result += separator
            rest = rest[separator.endIndex...]
            let value = rest.prefix { $0 != "\n" && $0 != "\r" && $0 != "\"" && $0 != "'" && $0 != "," && $0 != "}" && $0 != ")" && $0 != "&" }
            if !value.isEmpty { result += mask }
            rest = rest[value.endIndex...]
        }
        return result + rest
    }
}
