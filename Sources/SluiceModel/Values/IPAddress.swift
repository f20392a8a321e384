/// An IPv4 or IPv6 address, and what kind of network it belongs to: the check that keeps a URL
/// chosen by a run's caller off loopback, private, link-local and other non-public addresses
/// (invariant 10), and the entries of `network.allow` in sluice.yml.
///
/// Parsing is strict: IPv4 in dotted decimal (`127.0.0.1`), IPv6 in RFC 4291 text (`::1`,
/// `::ffff:127.0.0.1`), optionally in brackets. The other spellings some resolvers accept
/// (`2130706433`, `0x7f.1`, `0177.0.0.1`) are not parsed here: a URL's host is checked by
/// what the system resolver turns it into, the same resolver the HTTP client connects with.
public struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    /// 4 bytes for IPv4, 16 for IPv6, network order.
    public let bytes: [UInt8]

    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    public var isIPv4: Bool { bytes.count == 4 }

    /// Parses dotted-decimal IPv4 or IPv6 text; brackets around IPv6 are accepted.
    public init?(_ text: String) {
        var text = Substring(text)
        if text.hasPrefix("["), text.hasSuffix("]") { text = text.dropFirst().dropLast() }
        if let v4 = Self.parseIPv4(text) {
            bytes = v4
        } else if let v6 = Self.parseIPv6(text) {
            bytes = v6
        } else {
            return nil
        }
    }

    private static func parseIPv4(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var result: [UInt8] = []
        for part in parts {
            // No leading zeros: `010` is octal to some parsers and decimal to others.
            guard (1...3).contains(part.count), part.allSatisfy({ $0.isASCII && $0.isNumber }),
                part.count == 1 || part.first != "0", let value = UInt8(part)
            else { return nil }
            result.append(value)
        }
        return result
    }

    private static func parseIPv6(_ text: Substring) -> [UInt8]? {
        guard text.contains(":"), text.count <= 45 else { return nil }
        func groups(_ part: Substring) -> [UInt16]? {
            if part.isEmpty { return [] }
            var result: [UInt16] = []
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, piece) in pieces.enumerated() {
                if index == pieces.count - 1, piece.contains(".") {
                    guard let v4 = parseIPv4(piece) else { return nil }
                    result.append(UInt16(v4[0]) << 8 | UInt16(v4[1]))
                    result.append(UInt16(v4[2]) << 8 | UInt16(v4[3]))
                    continue
                }
                guard (1...4).contains(piece.count), let value = UInt16(piece, radix: 16) else { return nil }
                result.append(value)
            }
            return result
        }
        let halves = text.components(separatedBy: "::")
        var words: [UInt16]
        switch halves.count {
        case 1:
            guard let all = groups(text), all.count == 8 else { return nil }
            words = all
        case 2:
            guard let head = groups(Substring(halves[0])), let tail = groups(Substring(halves[1])), head.count + tail.count <= 7 else {
                return nil
            }
            // An embedded IPv4 address may only end the address.
            if halves[0].contains(".") { return nil }
            words = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        default:
            return nil
        }
        return words.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }

    /// Dotted decimal, or RFC 5952 IPv6 text (lower case, the longest run of zeros as `::`).
    public var description: String {
        if isIPv4 { return bytes.map(String.init).joined(separator: ".") }
        let words = stride(from: 0, to: 16, by: 2).map { UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]) }
        var best = (start: -1, length: 0), current = (start: -1, length: 0)
        for (index, word) in words.enumerated() {
            if word == 0 {
                current = current.start < 0 ? (index, 1) : (current.start, current.length + 1)
                if current.length > best.length { best = current }
            } else {
                current = (-1, 0)
            }
        }
        func hex(_ slice: ArraySlice<UInt16>) -> String { slice.map { String($0, radix: 16) }.joined(separator: ":") }
        guard best.length >= 2 else { return hex(words[...]) }
        return hex(words[..<best.start]) + "::" + hex(words[(best.start + best.length)...])
    }

    /// The IPv4 address this IPv6 address stands for when a packet to it reaches that IPv4
    /// address: IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`), IPv4-translated
    /// (`::ffff:0:a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`) and 6to4 (`2002:AABB:CCDD::`).
    public var embeddedIPv4: IPAddress? {
        guard !isIPv4 else { return nil }
        let prefix = bytes[0..<12]
        let zeros = [UInt8](repeating: 0, count: 10)
        if prefix.elementsEqual(zeros + [0xFF, 0xFF]) || prefix.elementsEqual([UInt8](repeating: 0, count: 12))
            || prefix.elementsEqual(zeros[0..<8] + [0xFF, 0xFF, 0, 0])
            || prefix.elementsEqual([0x00, 0x64, 0xFF, 0x9B] + [UInt8](repeating: 0, count: 8))
        {
            // `::` and `::1` are themselves, not 0.0.0.0 and 0.0.0.1.
            if prefix.allSatisfy({ $0 == 0 }), bytes[12..<15].allSatisfy({ $0 == 0 }) { return nil }
            return IPAddress(bytes: Array(bytes[12..<16]))
        }
        if bytes[0] == 0x20, bytes[1] == 0x02 { return IPAddress(bytes: Array(bytes[2..<6])) }
        return nil
    }

    /// The kind of non-public address this is ("loopback", "private", "link-local", …), or nil
    /// for a public unicast address. An IPv6 address that carries an IPv4 one is what that
    /// IPv4 address is.
    public var restrictedKind: String? {
        if let v4 = embeddedIPv4 { return v4.restrictedKind }
        let ranges = isIPv4 ? Self.restrictedIPv4 : Self.restrictedIPv6
        if let match = ranges.first(where: { $0.range.contains(self) }) { return match.kind }
        // IPv6 outside 2000::/3 is not global unicast (today's allocations are all inside it).
        if !isIPv4, !IPAddressRange.globalUnicast.contains(self) { return "reserved" }
        return nil
    }

    private static func ranges(_ list: [(String, String)]) -> [(range: IPAddressRange, kind: String)] {
        list.map { (IPAddressRange($0.0)!, $0.1) }
    }

    /// IANA's IPv4 special-purpose registry, the ranges no request chosen by a caller may reach.
    static let restrictedIPv4 = ranges([
        ("0.0.0.0/8", "this-network"), ("10.0.0.0/8", "private"), ("100.64.0.0/10", "shared (CGNAT)"),
        ("127.0.0.0/8", "loopback"), ("169.254.0.0/16", "link-local"), ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "protocol-assignment"), ("192.0.2.0/24", "documentation"), ("192.88.99.0/24", "relay"),
        ("192.168.0.0/16", "private"), ("198.18.0.0/15", "benchmarking"), ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"), ("224.0.0.0/4", "multicast"), ("240.0.0.0/4", "reserved or broadcast"),
    ])

    /// IPv6 special-purpose ranges inside 2000::/3, and the well-known ones outside it (named
    /// for messages; everything outside 2000::/3 is refused anyway).
    static let restrictedIPv6 = ranges([
        ("::/128", "unspecified"), ("::1/128", "loopback"), ("fc00::/7", "private (unique local)"),
        ("fe80::/10", "link-local"), ("fec0::/10", "site-local"), ("ff00::/8", "multicast"),
        ("64:ff9b:1::/48", "NAT64 (local)"), ("100::/64", "discard"), ("2001::/23", "protocol-assignment"),
        ("2001:db8::/32", "documentation"), ("3fff::/20", "documentation"),
    ])
}

/// An address block in CIDR notation (`10.0.0.0/8`, `fd00::/8`); a bare address is a block of one.
public struct IPAddressRange: Hashable, Sendable, CustomStringConvertible {
    public let base: IPAddress
    public let prefixLength: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let base = IPAddress(String(parts[0])) else { return nil }
        let bits = base.bytes.count * 8
        var length = bits
        if parts.count == 2 {
            guard parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), let given = Int(parts[1]), (0...bits).contains(given) else { return nil }
            length = given
        }
        self.base = base
        self.prefixLength = length
    }

    static let globalUnicast = IPAddressRange("2000::/3")!

    public func contains(_ address: IPAddress) -> Bool {
        guard address.bytes.count == base.bytes.count else { return false }
        var remaining = prefixLength
        for index in 0..<base.bytes.count where remaining > 0 {
            let take = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - take))
            if address.bytes[index] & mask != base.bytes[index] & mask { return false }
            remaining -= take
        }
        return true
    }

    public var description: String { "\(base)/\(prefixLength)" }
}
