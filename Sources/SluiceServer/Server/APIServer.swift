import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import ServiceLifecycle
import SluiceEngine
import SluiceModel
import SluiceSecrets
import SluiceStorage

/// The HTTP API of a project (`sluice serve`): runs triggered by API calls, read, listed and
/// cancelled per org behind API tokens; runs triggered by signed webhooks; `/healthz`,
/// `/metrics`, `/openapi.json`. Runs execute in this process with the same executor
/// `sluice run` builds (`ProjectServices`).
public struct APIServer: Sendable {
    /// The run store, pipelines, keys, metrics and launcher the routes work with.
    public let runner: Runner
    public let tokens: APITokens
    let hooks: WebhookHooks
    let webhookAudit: any WebhookAuditStore
    let refusalPruning: WebhookRefusalPruning

    public var configuration: ServerConfiguration { runner.configuration }
    public var services: ProjectServices { runner.services }
    public var store: any RunStore { runner.store }
    public var metrics: ServerMetrics { runner.metrics }
    var launcher: RunLauncher { runner.launcher }
    var catalog: PipelineCatalog { runner.catalog }
    var starter: RunStarter { runner.starter }
    var logger: Logger { runner.logger }

    /// A server over the project's stores as the composition root opened them; loads the keys
    /// if there are any. A keyring that exists but can't be read is an error.
    public init(
        services: ProjectServices, configuration: ServerConfiguration,
        metrics: ServerMetrics = ServerMetrics(), logger: Logger = Logger(label: "sluice.server")
    ) throws {
        self.init(runner: try Runner(services: services, configuration: configuration, metrics: metrics, logger: logger))
    }

    /// A server over a runner that may be shared with a scheduler.
    public init(runner: Runner) {
        self.runner = runner
        tokens = APITokens(store: runner.services.apiTokens)
        let credentialStore = runner.services.credentialStore
        hooks = WebhookHooks(
            store: credentialStore,
            credentials: runner.keys.map {
                Credentials(store: credentialStore, keys: $0, logger: runner.logger)
            })
        webhookAudit = runner.services.webhookAudit
        refusalPruning = WebhookRefusalPruning(
            store: webhookAudit, retention: WebhookAuditRetention(runner.services.settings), logger: runner.logger)
    }

    /// Reads a request body up to the limit: 413 for a declared or actual larger one; with
    /// `checkType`, 415 for a body that says it is not JSON. (Webhook deliveries are checked
    /// by their signature first, and a header that is not signed decides nothing.)
    func readBody(_ request: Request, checkType: Bool = true) async throws -> Data {
        if let declared = request.headers[.contentLength].flatMap(Int.init), declared > configuration.maxBodyBytes {
            throw APIError.bodyTooLarge(limit: configuration.maxBodyBytes)
        }
        let data: Data
        do {
            data = Data(try await collectBody(request.body).readableBytesView)
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            throw APIError.bodyTooLarge(limit: configuration.maxBodyBytes)
        }
        if checkType, !data.isEmpty, let type = request.headers[.contentType], !type.lowercased().hasPrefix("application/json") {
            throw APIError(.unsupportedMediaType, "unsupported_media_type", "the body must be application/json, not \(shown(type.prefix(64)))")
        }
        return data
    }

    /// The body, up to the limit, within `bodyReadTimeout`: a client that sends its body
    /// slowly, or not at all, gets 408 rather than holding the request open.
    private func collectBody(_ body: RequestBody) async throws -> ByteBuffer {
        let limit = configuration.maxBodyBytes
        let timeout = configuration.bodyReadTimeout
        return try await withThrowingTaskGroup(of: ByteBuffer?.self) { group in
            group.addTask { try await body.collect(upTo: limit) }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let buffer = first else {
                throw APIError.bodyTimeout(after: timeout)
            }
            return buffer
        }
    }

    // MARK: Routes

    /// The router with every route, and the table of them.
    public func router() -> (router: Router<APIRequestContext>, routes: RouteTable) {
        let table = RouteTable()
        let router = Router(context: APIRequestContext.self)
        router.add(middleware: RequestIDMiddleware())
        router.add(middleware: ErrorMiddleware(routes: table, maxBodyBytes: configuration.maxBodyBytes))

        let operations = OperationsAPI(server: self)
        let runs = RunsAPI(server: self)
        let pipelines = PipelinesAPI(server: self)

        func route(
            _ group: RouterGroup<APIRequestContext>, _ method: HTTPRequest.Method, _ path: String,
            _ handler: @escaping @Sendable (Request, APIRequestContext) async throws -> Response
        ) {
            group.on(RouterPath(path), method: method, use: handler)
            table.add(method, path)
        }

        let webhooks = WebhooksAPI(server: self)

        let open = router.group()
        route(open, .get, "/healthz", operations.health)
        // No token: a webhook's signature is its credential.
        route(open, .post, "/v1/hooks/{org}/{pipeline}", webhooks.deliver)
        route(open, .post, "/v1/hooks/{org}/{pipeline}/verify", webhooks.verifyOnly)

        let api = router.group().add(middleware: TokenAuthMiddleware(tokens: tokens, scopes: [.api]))
        route(api, .get, "/v1/orgs/{org}/pipelines", pipelines.list)
        route(api, .post, "/v1/orgs/{org}/pipelines/{pipeline}/runs", runs.trigger)
        route(api, .get, "/v1/orgs/{org}/runs", runs.list)
        route(api, .get, "/v1/runs/{run}", runs.get)
        route(api, .post, "/v1/runs/{run}/cancel", runs.cancel)

        let scrape = router.group().add(middleware: TokenAuthMiddleware(tokens: tokens, scopes: [.metrics]))
        route(scrape, .get, "/metrics", operations.metrics)

        let docs = router.group().add(middleware: TokenAuthMiddleware(tokens: tokens, scopes: [.api, .metrics]))
        route(docs, .get, "/openapi.json", operations.openAPI)
        return (router, table)
    }

    /// The Hummingbird application: the router, and the run launcher as a service that stops
    /// after the HTTP server on graceful shutdown, with `services` (a scheduler) between the
    /// two. `onListening` gets the port (useful with 0).
    public func application(
        services: [any Service] = [],
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        let appConfiguration = ApplicationConfiguration(address: .hostname(configuration.host, port: configuration.port))
        let idle = TimeAmount(configuration.idleTimeout)
        let requestLimit = TimeAmount(configuration.requestReadTimeout ?? configuration.bodyReadTimeout * 2)
        // Without a scheduler (which runs the watchdog in its looks), a watchdog of its own.
        var services = services
        if !services.contains(where: { $0 is Scheduler }) {
            services.append(RunWatchdog(runner: runner, lease: runner.services.lease, logger: logger))
        }
        let http1 = HTTP1Channel.Configuration(additionalChannelHandlers: [RequestDeadlineHandler(limit: requestLimit)], idleTimeout: idle)
        // The connection limits come first: a connection over them is closed before its TLS
        // handshake or its request is read.
        let limits = ConnectionLimits(maxTotal: configuration.maxConnections, maxPerClient: configuration.maxConnectionsPerClient)
        let onRefusal: @Sendable (ConnectionLimits.Refusal) -> Void = { [metrics] in metrics.connectionRefused(limit: $0) }
        let tls = configuration.tls
        let server = HTTPServerBuilder { responder in
            let http = HTTP1Channel(responder: responder, configuration: http1)
            if let tls {
                return ConnectionLimitChannel(base: try TLSChannel(http, tlsConfiguration: tls.configuration), limits: limits, onRefusal: onRefusal)
            }
            return ConnectionLimitChannel(base: http, limits: limits, onRefusal: onRefusal)
        }
        return Application(
            router: router().router, server: server,
            configuration: appConfiguration, services: [launcher] + services,
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? 0) }, logger: logger)
    }

    /// An org's webhook audit records, newest first.
    public func webhookAuditRecords(org: String, pipeline: String? = nil, limit: Int = 1000) async throws -> [WebhookAuditRecord] {
        try await webhookAudit.webhookAudit(org: org, pipeline: pipeline, limit: limit)
    }

    /// Stops taking runs, cancels those executing and waits (the application's shutdown does
    /// this; for embedding without it).
    public func stopRuns() async {
        await runner.stopRuns()
    }
}
