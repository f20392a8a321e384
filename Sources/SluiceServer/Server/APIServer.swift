import Foundation
import Hummingbird
import Logging
import NIOCore
import SluiceEngine
import SluiceModel
import SluiceSecrets
import SluiceSQLite

/// The HTTP API of a project (`sluice serve`): runs triggered by API calls, read, listed and
/// cancelled per org behind API tokens; runs triggered by signed webhooks; `/healthz`,
/// `/metrics`, `/openapi.json`. Runs execute in this process with the same executor
/// `sluice run` builds (`LocalState`).
public struct APIServer: Sendable {
    public let configuration: ServerConfiguration
    public let state: LocalState
    public let store: SQLiteRunStore
    public let tokens: APITokens
    public let metrics: ServerMetrics
    /// The key-encryption keys, when configured: needed by pipelines that decrypt credentials.
    let keys: Keyring?
    let launcher: RunLauncher
    let catalog: PipelineCatalog
    let hooks: WebhookHooks
    let webhookAudit: any WebhookAuditStore
    let logger: Logger

    /// Opens the project's run store (marking runs a dead process left as abandoned) and
    /// loads the keys if there are any. A keyring that exists but can't be read is an error.
    public init(projectRoot: URL, configuration: ServerConfiguration = ServerConfiguration(),
                metrics: ServerMetrics = ServerMetrics(), logger: Logger = Logger(label: "sluice.server")) async throws {
        self.configuration = configuration
        state = LocalState(projectRoot: projectRoot)
        store = try await state.runStore()
        tokens = APITokens(store: SQLiteAPITokenStore(sharing: store))
        self.metrics = metrics
        self.logger = logger
        keys = try Self.loadKeys(state, configuration, logger)
        launcher = RunLauncher(logger: logger)
        catalog = PipelineCatalog(state: state)
        let credentialStore = SQLiteCredentialStore(sharing: store)
        hooks = WebhookHooks(store: credentialStore, credentials: keys.map {
            Credentials(store: credentialStore, keys: $0, logger: logger)
        })
        webhookAudit = SQLiteWebhookAuditStore(sharing: store)
    }

    /// The keys, or nil when none are configured (no keyring file, no passphrase).
    private static func loadKeys(_ state: LocalState, _ configuration: ServerConfiguration, _ logger: Logger) throws -> Keyring? {
        let result = Result { () throws(SecretsError) -> Keyring in
            try state.keys(keyringPath: configuration.keyringPath, environment: configuration.environment)
        }
        switch result {
        case .success(let keys):
            return keys
        case .failure(let error) where error.code == .keyringMissing && configuration.keyringPath == nil:
            logger.notice("no keys: pipelines that decrypt credentials won't be started, and webhooks can't be verified")
            return nil
        case .failure(let error):
            throw error
        }
    }

    /// An executor for one run of the entry's plan, its transitions counted in the metrics.
    func executor(for entry: PipelineCatalog.Entry, plan: PipelinePlan) -> Executor {
        var options = ExecutorOptions()
        options.observer = metrics.observer(for: plan)
        var executorLogger = logger
        executorLogger[metadataKey: "component"] = "executor"
        return state.executor(store: store, options: options, keys: keys, logger: executorLogger, project: entry.project,
                              processors: configuration.processors)
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
            data = Data(try await request.body.collect(upTo: configuration.maxBodyBytes).readableBytesView)
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            throw APIError.bodyTooLarge(limit: configuration.maxBodyBytes)
        }
        if checkType, !data.isEmpty, let type = request.headers[.contentType], !type.lowercased().hasPrefix("application/json") {
            throw APIError(.unsupportedMediaType, "unsupported_media_type", "the body must be application/json, not \(shown(type.prefix(64)))")
        }
        return data
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

        func route(_ group: RouterGroup<APIRequestContext>, _ method: HTTPRequest.Method, _ path: String,
                   _ handler: @escaping @Sendable (Request, APIRequestContext) async throws -> Response) {
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
    /// after the HTTP server on graceful shutdown. `onListening` gets the port (useful with 0).
    public func application(onListening: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        let appConfiguration = ApplicationConfiguration(address: .hostname(configuration.host, port: configuration.port))
        return Application(router: router().router, configuration: appConfiguration, services: [launcher],
                           onServerRunning: { channel in await onListening(channel.localAddress?.port ?? 0) }, logger: logger)
    }

    /// An org's webhook audit records, newest first.
    public func webhookAuditRecords(org: String, pipeline: String? = nil, limit: Int = 1000) async throws -> [WebhookAuditRecord] {
        try await webhookAudit.webhookAudit(org: org, pipeline: pipeline, limit: limit)
    }

    /// Stops taking runs, cancels those executing and waits (the application's shutdown does
    /// this; for embedding without it).
    public func stopRuns() async {
        await launcher.stop()
    }
}
