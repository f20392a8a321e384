import Crypto
import Foundation
import SluiceEngine
import SluiceModel
import SluiceSecrets
import SluiceStorage

/// The webhook hooks of a project: a hook for org O and pipeline P exists when O holds the
/// credential `webhooks/P` (a `generic` credential whose value is a `whsec_…` secret, put
/// there by `sluice hooks create` or `sluice secrets put`). Opening a secret is a decrypt,
/// audited by `Credentials`; so that a delivery does not cost one, the opened keys are kept
/// until the credential's row version changes (a rotation, a re-wrap, a delete). The
/// previous value of a rotated secret verifies until its grace period ends.
actor WebhookHooks {
    /// What verifies a hook's deliveries and maps their payloads.
    struct Hook: Sendable {
        var keys: [SymmetricKey]
        var mapping: PayloadMapping
    }

    enum Lookup: Sendable {
        case found(Hook)
        case notFound
        /// The hook exists but can't verify now; the reason is for the log, not the caller, and
        /// `log` says whether to write it (once a minute per hook and reason, so refused posts
        /// to a broken hook don't fill the log at request rate).
        case unavailable(String, log: Bool)
    }

    private struct Cached {
        var version: Int
        var current: SymmetricKey
        var previous: SymmetricKey?
        var previousUntil: Date?
    }

    private let store: any CredentialStore
    private let credentials: Credentials?
    private var cache: [String: Cached] = [:]
    /// Hooks whose secret could not be opened, by the row version that failed and when:
    /// anyone can post to a hook, and each post must not cost another audited decrypt. The
    /// open is tried again when the credential changes, or `retryUnusableAfter` later (the
    /// cause may have been passing, such as a locked audit table).
    private var unusable: [String: (version: Int, at: Date, reason: String)] = [:]
    static let retryUnusableAfter: TimeInterval = 60
    /// When each hook's reason for being unavailable was last logged.
    private var logged: [String: Date] = [:]

    private func unavailable(_ hook: String, _ reason: String, now: Date) -> Lookup {
        let key = hook + "\u{0}" + reason
        if let last = logged[key], now.timeIntervalSince(last) < Self.retryUnusableAfter { return .unavailable(reason, log: false) }
        logged[key] = now
        return .unavailable(reason, log: true)
    }

    init(store: any CredentialStore, credentials: Credentials?) {
        self.store = store
        self.credentials = credentials
    }

    static func credentialName(pipeline: String) -> String { "webhooks/\(pipeline)" }

    func hook(org: String, pipeline: String, now: Date) async throws -> Lookup {
        guard Identifier.isValid(org), Identifier.isValid(pipeline) else { return .notFound }
        let name = Self.credentialName(pipeline: pipeline)
        let cacheKey = org + "/" + name
        guard let stored = try await store.credential(org: org, name: name) else {
            cache[cacheKey] = nil
            unusable[cacheKey] = nil
            return .notFound
        }
        if let expiresAt = stored.expiresAt, expiresAt <= now {
            return unavailable(cacheKey, "the secret of hook \(org)/\(pipeline) expired at \(expiresAt.formatted(.iso8601))", now: now)
        }
        let mapping = PayloadMapping(metadata: stored.metadata)
        var entry = cache[cacheKey]
        if let failed = unusable[cacheKey], failed.version == stored.version, now.timeIntervalSince(failed.at) < Self.retryUnusableAfter {
            return unavailable(cacheKey, failed.reason, now: now)
        }
        if entry?.version != stored.version {
            guard let credentials else {
                return unavailable(cacheKey, "the server has no keys, so hook secrets can't be opened", now: now)
            }
            let accessor = Credentials.Accessor(runID: nil, stepID: "webhook")
            do {
                let current = try await open(credentials, org: org, name: name, previous: false, accessor: accessor)
                var previous: SymmetricKey?
                if stored.previousSealed != nil, let until = stored.previousValidUntil, until > now {
                    previous = try? await open(credentials, org: org, name: name, previous: true, accessor: accessor)
                }
                entry = Cached(version: stored.version, current: current, previous: previous, previousUntil: stored.previousValidUntil)
                cache[cacheKey] = entry
                unusable[cacheKey] = nil
            } catch {
                let reason =
                    "the secret of hook \(org)/\(pipeline) (value \(stored.version)) can't be used: \(error); "
                    + "deliveries are refused until it is replaced (`sluice hooks rotate`)"
                unusable[cacheKey] = (stored.version, now, reason)
                return unavailable(cacheKey, reason, now: now)
            }
        }
        guard let entry else { return .notFound }
        var keys = [entry.current]
        if let previous = entry.previous, let until = entry.previousUntil, now < until { keys.append(previous) }
        return .found(Hook(keys: keys, mapping: mapping))
    }

    /// Opens one value of the credential as an HMAC key and wipes the opened bytes.
    private func open(
        _ credentials: Credentials, org: String, name: String, previous: Bool,
        accessor: Credentials.Accessor
    ) async throws -> SymmetricKey {
        let opened = try await credentials.open(org: org, name: name, for: accessor, previous: previous)
        defer { opened.value.wipe() }
        let key = opened.value.withBytes { bytes in
            WebhookSignature.key(fromSecret: String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        guard let key else {
            throw WebhookSecretError(description: "the value is not a whsec_ secret (whsec_ and base64 of 16 to 128 bytes)")
        }
        return key
    }
}

struct WebhookSecretError: Error, CustomStringConvertible {
    var description: String
}
