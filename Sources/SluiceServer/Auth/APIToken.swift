import Crypto
import Foundation

/// An API token: `slc_` + a 12-hex-digit public id + `_` + 32 random bytes in base64url
/// (43 characters). The id finds the stored record; the whole token's SHA-256 is what is
/// stored and compared (in constant time). Shown once, when created.
public struct APIToken: Sendable {
    public static let prefix = "slc_"
    static let idLength = 12
    static let secretLength = 43
    static let length = prefix.utf8.count + idLength + 1 + secretLength

    public let id: String
    let secret: String

    /// A new token from the system's secure random source.
    public static func generate() -> APIToken {
        var generator = SystemRandomNumberGenerator()
        let idBytes = (0..<6).map { _ in UInt8.random(in: 0 ... .max, using: &generator) }
        let secretBytes = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
        let id = idBytes.map { String(format: "%02x", $0) }.joined()
        let secret = secretBytes.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        return APIToken(id: id, secret: secret)
    }

    private init(id: String, secret: String) {
        self.id = id
        self.secret = secret
    }

    /// A token in its text form; nil for anything with another shape.
    public init?(parsing text: String) {
        let bytes = Array(text.utf8)
        let prefix = Array(Self.prefix.utf8)
        guard bytes.count == Self.length, bytes.starts(with: prefix) else { return nil }
        let idBytes = bytes[prefix.count..<prefix.count + Self.idLength]
        guard idBytes.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }),
            bytes[prefix.count + Self.idLength] == UInt8(ascii: "_")
        else { return nil }
        let secretBytes = bytes[(prefix.count + Self.idLength + 1)...]
        guard
            secretBytes.allSatisfy({
                (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0)
                    || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_")
            })
        else { return nil }
        self.init(id: String(decoding: idBytes, as: UTF8.self), secret: String(decoding: secretBytes, as: UTF8.self))
    }

    /// The text to hand to the user, once.
    public var text: String { "\(Self.prefix)\(id)_\(secret)" }

    /// SHA-256 of the text: what the store keeps.
    public var hash: Data { Data(SHA256.hash(data: Data(text.utf8))) }

    /// Compares two hashes without an early exit, so the time taken says nothing about
    /// how much of a guess was right.
    static func constantTimeEqual(_ lhs: Data, _ rhs: Data) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for (left, right) in zip(lhs, rhs) { difference |= left ^ right }
        return difference == 0
    }
}
