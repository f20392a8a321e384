import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import SluiceEngine
import SluiceModel
import SluiceStorage

/// One request of a credential check.
struct ProviderRequest: Sendable {
    /// Who answers, as messages name it: "OpenAI", "Google's token endpoint".
    var provider: String
    var method: HTTPMethod
    /// The whole URL; only `validate_http` with `secret_in: query` puts a secret into it.
    var url: URL
    var headers: [(name: String, value: String)] = []
    var body: Data?
    var timeout: Duration

    /// The most of an answer's body that is read; a larger one is `provider_unavailable`.
    var maxBodyBytes = ProviderHTTP.maxBodyBytes

    /// Whether logs and messages show only the URL's scheme, host and port: a webhook URL's
    /// path is its secret (Slack's is).
    var hidesPath = false

    /// Set when the run's caller chose the URL: the host is checked (no loopback, private or
    /// link-local address unless allow-listed), the request goes to the checked address, and
    /// nothing of the answer's body is quoted in messages.
    var destination: DestinationCheck?

    /// The URL as logs and messages show it: scheme, host, port and path (or not, when
    /// `hidesPath`), never the query.
    var shownURL: String {
        guard hidesPath else { return HTTPRequestSpec.shown(url) }
        return ProviderHTTP.origin(of: url)
    }
}

/// A provider's answer: its status, headers and (at most `ProviderHTTP.maxBodyBytes` of) body.
struct ProviderResponse: Sendable {
    var status: Int
    var headers: HTTPHeaders
    var body: Data
    /// Who answered and where, for messages.
    var provider: String
    var shownURL: String
    /// Whether messages may quote the body's error fields: not when the run's caller chose the
    /// URL, or a request to a service it can't read could be read back through the step's reason.
    var quotesBody = true

    var isSuccess: Bool { (200...299).contains(status) }

    func header(_ name: String) -> String? { headers.first(name: name) }

    /// The body as a JSON object, or nil when it is not one.
    var jsonObject: [String: Any]? {
        (try? JSONSerialization.jsonObject(with: body)) as? [String: Any]
    }
}

/// The one HTTP client of the provider validators and the one place their requests are sent,
/// timed, logged and, when no answer arrives, turned into `provider_unavailable`.
enum ProviderHTTP {
    /// Redirects are not followed: a key sent to one address must never be forwarded to another.
    /// A refused connection fails at once instead of being retried inside the client until the
    /// timeout: retrying is the executor's job, with the step's policy.
    /// The client lives as long as the process, like `HTTPClient.shared`.
    static let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)

    static var configuration: HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.connectionPool.retryConnectionEstablishment = false
        return configuration
    }

    /// Enough for a models list; a larger body is not what a check expects.
    static let maxBodyBytes = 4 << 20

    /// Sent with every request unless the request sets its own.
    static let userAgent = "sluice/\(SluiceVersion.current)"

    /// `scheme://host[:port]`: all of a URL that may be shown when its path is a secret.
    static func origin(of url: URL) -> String {
        let port = url.port.map { ":\($0)" } ?? ""
        return "\(url.scheme ?? "https")://\(url.host ?? "(no host)")\(port)"
    }

    /// Sends `request` and reads the whole answer within `request.timeout`. Whatever the
    /// status, the answer is returned; a timeout, a refused connection or one that closes before
    /// the answer is complete throws `unanswered` of the reason, by default a validator's
    /// `provider_unavailable` (transient).
    static func send(
        _ request: ProviderRequest, logger: Logger,
        unanswered: ((_ reason: String) -> StepFailure)? = nil
    ) async throws -> ProviderResponse {
        let started = ContinuousClock.now
        func elapsed() -> String {
            let duration = ContinuousClock.now - started
            return "\(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)"
        }
        // Before the clock starts: a refused destination is the request's answer, not a lost one;
        // and a request past the step's max_requests is never sent.
        try StepBudget.current?.spendRequest("\(request.method.rawValue) \(request.shownURL)")
        let checked = try await request.destination?.check(request.url)
        do {
            let response = try await withThrowingTaskGroup(of: ProviderResponse?.self) { group in
                group.addTask { try await exchange(request, at: checked) }
                // The client's deadline ends with the response head; this bounds the body too.
                group.addTask {
                    try await Task.sleep(for: request.timeout)
                    return nil
                }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let response = first else { throw NoAnswer.timedOut }
                return response
            }
            logger.info(
                "provider answered",
                metadata: [
                    "provider": "\(request.provider)", "url": "\(request.shownURL)",
                    "http_status": "\(response.status)", "elapsed_ms": "\(elapsed())",
                ])
            return response
        } catch {
            if Task.isCancelled { throw CancellationError() }
            let reason = describe(error, timeout: request.timeout, limit: request.maxBodyBytes, quoting: !request.hidesPath)
            logger.warning(
                "provider did not answer",
                metadata: [
                    "provider": "\(request.provider)", "url": "\(request.shownURL)",
                    "http_status": "0", "elapsed_ms": "\(elapsed())", "reason": "\(reason)",
                ])
            if let unanswered { throw unanswered(reason) }
            throw StepFailure.validator(.providerUnavailable, "\(request.provider) (\(request.shownURL)) did not answer: \(reason)")
        }
    }

    /// Sends the request; with a checked destination, through a client of its own that connects
    /// to the checked address (while the Host header, TLS server name and certificate check
    /// keep the URL's host), so the name is not resolved a second time.
    private static func exchange(_ request: ProviderRequest, at checked: DestinationCheck.Checked?) async throws -> ProviderResponse {
        guard let checked else { return try await exchange(request, on: client) }
        var pinned = configuration
        pinned.dnsOverride = [checked.host: checked.address.description]
        let pinnedClient = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: pinned)
        do {
            var response = try await exchange(request, on: pinnedClient)
            response.quotesBody = false
            try await pinnedClient.shutdown()
            return response
        } catch {
            // A client must be shut down before it goes, also when the request was cancelled.
            try? await pinnedClient.shutdown()
            throw error
        }
    }

    private static func exchange(_ request: ProviderRequest, on client: HTTPClient) async throws -> ProviderResponse {
        var outgoing = HTTPClientRequest(url: request.url.absoluteString)
        outgoing.method = request.method
        for (name, value) in request.headers { outgoing.headers.add(name: name, value: value) }
        if !outgoing.headers.contains(name: "User-Agent") { outgoing.headers.add(name: "User-Agent", value: userAgent) }
        if let id = RunRequestID.current, !outgoing.headers.contains(name: RunRequestID.header) {
            outgoing.headers.add(name: RunRequestID.header, value: id)
        }
        if let body = request.body { outgoing.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await client.execute(outgoing, deadline: .now() + TimeAmount(request.timeout))
        var body = Data()
        if request.method != .HEAD {
            let buffer = try await response.body.collect(upTo: request.maxBodyBytes)
            body = Data(buffer.readableBytesView)
        }
        return ProviderResponse(
            status: Int(response.status.code), headers: response.headers, body: body,
            provider: request.provider, shownURL: request.shownURL)
    }

    private enum NoAnswer: Error { case timedOut }

    /// Why no answer arrived, in words; never the URL's query or a header. Without `quoting`,
    /// an error of an unknown kind is named by its type only: its text could hold the URL.
    static func describe(_ error: any Error, timeout: Duration, limit: Int = maxBodyBytes, quoting: Bool = true) -> String {
        let within = "no complete answer within \(DurationText.format(timeout)) (request_timeout)"
        if case NoAnswer.timedOut? = error as? NoAnswer { return within }
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .connectTimeout, .readTimeout, .writeTimeout, .getConnectionFromPoolTimeout:
                return within
            case .remoteConnectionClosed:
                return "the connection closed before the answer was complete"
            case .bodyLengthMismatch:
                return "the answer was shorter than it announced"
            default:
                // `shortDescription` carries no associated values (header values, a scheme).
                return quoting ? "the request failed (\(error))" : "the request failed (\(error.shortDescription))"
            }
        }
        if error is NIOTooManyBytesError {
            return "the answer was larger than \(limit / (1 << 20)) MiB"
        }
        if let error = error as? HTTPParserError {
            // The body ended with the connection, before the length the head announced.
            if error == .invalidEOFState { return "the connection closed before the answer was complete" }
            return "the answer was not valid HTTP"
        }
        let text = String(describing: error)
        if text.localizedCaseInsensitiveContains("refused") { return "the connection was refused" }
        if text.localizedCaseInsensitiveContains("reset") { return "the connection was reset" }
        return quoting ? "the request failed (\(shown(text)))" : "the request failed (\(type(of: error)))"
    }
}
