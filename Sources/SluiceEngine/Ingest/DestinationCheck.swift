import Foundation
import SluiceModel

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The check a request goes through when the run's caller chose its URL (a param given through
/// the API or a webhook): the host is resolved with the system resolver, and the request is
/// refused when any address it resolves to is loopback, private, link-local or otherwise not
/// public (`IPAddress.restrictedKind`), unless `network.allow` in sluice.yml lists the host,
/// the address or its block (invariant 10). Every spelling of an address (`2130706433`,
/// `0x7f.1`, `[::ffff:127.0.0.1]`) is checked as what the resolver makes of it, which is
/// what a client would connect to.
///
/// The transport then connects to the address that was checked, not to the name again, so a
/// name that resolves differently a moment later (DNS rebinding) can't lead elsewhere.
public struct DestinationCheck: Sendable {
    /// The step's field the URL comes from (`source.url`) and what it read (`params.feed`).
    public var field: String
    public var sources: [String]
    public var allow: NetworkAllowList

    public init(field: String, sources: [String], allow: NetworkAllowList) {
        self.field = field
        self.sources = sources
        self.allow = allow
    }

    /// The check for `field` of the step when the run's caller chose its host, with the
    /// project's `network.allow`; nil when the URL is the operator's or the author's, or the
    /// caller chose only what follows the host (`https://api.example.com/v1/${{ params.x }}`).
    public static func forField(_ field: String, of step: StepContext) -> DestinationCheck? {
        guard let untrusted = step.untrustedFields[field], !fixesHost(untrusted.prefix) else { return nil }
        return DestinationCheck(field: field, sources: untrusted.references, allow: step.project?.settings.networkAllow ?? NetworkAllowList())
    }

    /// Whether `prefix` (the start of a URL, the pipeline's own text) already ends its host:
    /// `scheme://authority` followed by `/`, `?`, `#` or `\`.
    static func fixesHost(_ prefix: String) -> Bool {
        guard let separator = prefix.range(of: "://") else { return false }
        let rest = prefix[separator.upperBound...]
        guard let end = rest.firstIndex(where: { "/?#\\".contains($0) }) else { return false }
        return end > rest.startIndex
    }

    /// A destination that passed: the URL's host and the address to connect to.
    public struct Checked: Sendable {
        public var host: String
        public var address: IPAddress
    }

    /// Resolves `url`'s host and checks every address. `destination_refused` (permanent) names
    /// the field, the param and the host, never the addresses; `destination_unresolved`
    /// (transient) when the host can't be resolved.
    public func check(_ url: URL) async throws(StepFailure) -> Checked {
        let host = Self.host(of: url)
        let what = "'\(field)' (from \(sources.joined(separator: ", ")), given by the caller of the run)"
        guard !host.isEmpty else { throw StepFailure(.destinationRefused, "\(what) has no host") }
        let addresses: [IPAddress]
        switch await Self.lookUp(host) {
        case .success(let found): addresses = found
        case .failure(let reason):
            throw StepFailure(.destinationUnresolved, "\(what): host \(shown(host)) can't be resolved (\(reason))", transient: true)
        }
        for address in addresses {
            if let kind = address.restrictedKind, !allow.allows(host: host, address: address) {
                throw StepFailure(
                    .destinationRefused,
                    """
                    \(what) points at host \(shown(host)), which has a \(kind) address; a URL that the caller of a run chooses \
                    may reach loopback, private, link-local and other non-public addresses only when sluice.yml lists them \
                    under network.allow
                    """)
            }
        }
        // IPv4 first: it is what a dual-stack name usually serves on.
        guard let chosen = addresses.first(where: \.isIPv4) ?? addresses.first else {
            throw StepFailure(.destinationUnresolved, "\(what): host \(shown(host)) has no address", transient: true)
        }
        return Checked(host: host, address: chosen)
    }

    /// The host as the HTTP client reads it from the URL (without an IPv6 literal's brackets).
    public static func host(of url: URL) -> String {
        var host = url.host ?? ""
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host
    }

    /// getaddrinfo on a thread of its own: it blocks, sometimes for seconds, and must not hold
    /// one of the few threads that run every task.
    static func lookUp(_ host: String) async -> Result<[IPAddress], LookupError> {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: addresses(of: host)) }
        }
    }

    struct LookupError: Error, CustomStringConvertible {
        var description: String
    }

    static func addresses(of host: String) -> Result<[IPAddress], LookupError> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Darwin)
        hints.ai_socktype = SOCK_STREAM
        #else
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &list)
        guard status == 0 else { return .failure(LookupError(description: String(cString: gai_strerror(status)))) }
        defer { freeaddrinfo(list) }
        var found: [IPAddress] = []
        var entry = list
        while let current = entry {
            if let address = current.pointee.ai_addr, let parsed = ipAddress(address), !found.contains(parsed) { found.append(parsed) }
            entry = current.pointee.ai_next
        }
        return .success(found)
    }

    private static func ipAddress(_ address: UnsafeMutablePointer<sockaddr>) -> IPAddress? {
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            return address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                withUnsafeBytes(of: pointer.pointee.sin_addr) { IPAddress(bytes: Array($0)) }
            }
        case AF_INET6:
            return address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                withUnsafeBytes(of: pointer.pointee.sin6_addr) { IPAddress(bytes: Array($0)) }
            }
        default:
            return nil
        }
    }
}
