import Foundation

/// `network.allow` in sluice.yml: the non-public destinations a URL chosen by a run's caller
/// (a param given through the API or a webhook) may still reach. Entries are addresses
/// (`127.0.0.1`, `::1`), blocks (`10.0.0.0/8`, `fd00::/8`) or host names
/// (`internal.example.com`, matched whole, without wildcards).
public struct NetworkAllowList: Hashable, Sendable {
    public private(set) var ranges: [IPAddressRange] = []
    public private(set) var hosts: [String] = []

    public init() {}

    /// Parses the entries; throws the first one that is neither an address, a block nor a
    /// host name, with why.
    public init(_ entries: [String]) throws(EntryError) {
        for entry in entries {
            let text = entry.trimmingCharacters(in: .whitespaces)
            if let range = IPAddressRange(text) {
                ranges.append(range)
            } else if text.contains("/") || IPAddress(text.components(separatedBy: "/")[0]) != nil {
                throw EntryError(entry: entry, reason: "is not an address block: write it like 10.0.0.0/8 or fd00::/8")
            } else if let host = Self.hostName(text) {
                hosts.append(host)
            } else {
                throw EntryError(
                    entry: entry, reason: "is not an address (127.0.0.1, ::1), a block (10.0.0.0/8) or a host name (internal.example.com)")
            }
        }
    }

    public struct EntryError: Error, Sendable, CustomStringConvertible {
        public var entry: String
        public var reason: String
        public var description: String { "\(shown(entry)) \(reason)" }
    }

    public var isEmpty: Bool { ranges.isEmpty && hosts.isEmpty }

    /// Whether a request to `host` may reach `address`: the host is listed by name, or the
    /// address (or the IPv4 address it carries) lies in a listed block.
    public func allows(host: String, address: IPAddress) -> Bool {
        if let name = Self.hostName(host), hosts.contains(name) { return true }
        return ranges.contains { $0.contains(address) || address.embeddedIPv4.map($0.contains) == true }
    }

    /// A DNS name in the form it is compared in (lower case, no trailing dot), or nil when
    /// `text` is not one: labels of letters, digits, `-` and `_`, at most 253 characters.
    static func hostName(_ text: String) -> String? {
        var name = text.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        guard !name.isEmpty, name.utf8.count <= 253 else { return nil }
        for label in name.split(separator: ".", omittingEmptySubsequences: false) {
            guard (1...63).contains(label.utf8.count), label.first != "-", label.last != "-",
                label.utf8.allSatisfy({ (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2D || $0 == 0x5F })
            else { return nil }
        }
        return name
    }
}
