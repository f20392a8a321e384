import Foundation
import SluiceEngine
import SluiceModel
import SluiceStorage

/// A validator's (or `notify`'s) evaluated `with`; a field the step leaves out has the default
/// its spec declares already (the executor fills them in: `ProcessorSpec.withDefaults`), so
/// docs, lint and runs agree.
struct ValidatorSettings {
    let config: YAMLNode
    let spec: ProcessorSpec
    let step: StepContext

    init(_ step: StepContext, _ spec: ProcessorSpec) {
        // Filled already when the executor runs the step; filling again changes nothing.
        self.config = spec.withDefaults(step.config)
        self.spec = spec
        self.step = step
    }

    /// The check a request to the URL in `field` goes through when the run's caller chose it
    /// (lint refuses that for validators, which carry a secret; a server may run a pipeline
    /// lint never saw, so the run checks too).
    func destination(_ field: String) -> DestinationCheck? {
        DestinationCheck.forField(field, of: step)
    }

    private func location(_ field: String) -> SourceLocation {
        config[field]?.location ?? config.location
    }

    func optionalText(_ field: String) -> String? {
        config.optionalText(field)
    }

    func text(_ field: String) throws(StepFailure) -> String {
        guard let text = optionalText(field) else { throw .config("'\(field)' is missing", at: location(field)) }
        return text
    }

    func texts(_ field: String) throws(StepFailure) -> [String] {
        try config.texts(field)
    }

    /// The credential in `field`. It is never shown: a problem with it is described, not quoted.
    func secret(_ field: String) throws(StepFailure) -> String {
        let value = config.optionalText(field) ?? ""
        guard !value.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw .validator(.credentialMalformed, "'\(field)' is empty: the secret it reads has no value", at: location(field))
        }
        return value
    }

    /// A credential that goes into a header or URL: one line, no control characters.
    func headerSafeSecret(_ field: String) throws(StepFailure) -> String {
        let value = try secret(field).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw .validator(
                .credentialMalformed, "'\(field)' holds line breaks or control characters, which no key has (its value is not shown)",
                at: location(field))
        }
        return value
    }

    /// An http or https URL with a host and no credentials in it.
    func url(_ field: String) throws(StepFailure) -> URL {
        try Self.checkedURL(try text(field), field: field, at: location(field))
    }

    func optionalURL(_ field: String) throws(StepFailure) -> URL? {
        guard let text = optionalText(field) else { return nil }
        return try Self.checkedURL(text, field: field, at: location(field))
    }

    /// `base_url` (no query) followed by `path`; a trailing slash on the base is dropped.
    func url(_ field: String, appending path: String) throws(StepFailure) -> URL {
        let base = try url(field)
        guard base.query == nil, base.fragment == nil else {
            throw .config("'\(field)' must be a base URL without a query or fragment", at: location(field))
        }
        var text = base.absoluteString
        while text.hasSuffix("/") { text.removeLast() }
        return try Self.checkedURL(text + path, field: field, at: location(field))
    }

    static func checkedURL(_ text: String, field: String, at location: SourceLocation) throws(StepFailure) -> URL {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "https" || scheme == "http",
            let host = url.host, !host.isEmpty
        else {
            throw .config("'\(field)' must be an http or https URL with a host, not \(shown(text))", at: location)
        }
        guard url.user == nil, url.password == nil else {
            throw .config("'\(field)' must not carry a user or password; credentials go in secret fields", at: location)
        }
        return url
    }

    /// `request_timeout`.
    func timeout() throws(StepFailure) -> Duration {
        let text = try text("request_timeout")
        do {
            return try DurationText.parse(text)
        } catch {
            throw .config("'request_timeout': \(error.description)", at: location("request_timeout"))
        }
    }
}
