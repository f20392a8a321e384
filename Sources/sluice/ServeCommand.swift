import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import SluiceEngine
import SluiceModel
import SluiceProviders
import SluiceRuntime
import SluiceServer
import SluiceStorage
import UnixSignals

extension Sluice {
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve the HTTP API: trigger, list, read and cancel runs per org; /metrics; /openapi.json.",
            discussion: """
                Every route but GET /healthz needs an API token (sluice tokens create ORG). Runs \
                triggered over HTTP execute in this process. Ctrl-C or SIGTERM stops taking \
                requests, gives the runs executing --shutdown-grace (default 0s) to finish, \
                cancels the rest (recorded as cancelled; nothing is published) and exits. The API is described in docs/api.md and at /openapi.json. \
                With --scheduler, the process also creates the pipelines' scheduled runs, as \
                `sluice scheduler` does, and /metrics counts them.
                """)

        @Option(help: "The address to listen on.")
        var host = "127.0.0.1"

        @Option(help: "The port to listen on (0 picks a free one).")
        var port = 8080

        @Option(
            help: ArgumentHelp(
                "Serve HTTPS with this PEM certificate chain (the server's own certificate first); needs --tls-key.", valueName: "file"))
        var tlsCertificate: String?

        @Option(help: ArgumentHelp("The PEM private key of --tls-certificate, unencrypted; keep it readable by this user only.", valueName: "file"))
        var tlsKey: String?

        @Option(help: "Keyring file, for pipelines that decrypt credentials (default: SLUICE_KEYRING, else .sluice/keyring.json).")
        var keyring: String?

        @Flag(help: "Also create and execute scheduled runs in this process (as sluice scheduler does).")
        var scheduler = false

        @Option(name: .customLong("org"), help: "With --scheduler: an org to schedule for (repeatable; default: sluice.yml's orgs).")
        var orgs: [String] = []

        @Option(help: "With --scheduler: how often to look at files, max_active_runs and dead runs between fire times.")
        var poll = "5s"

        @Option(help: "On SIGTERM, how long executing runs may go on before they are cancelled.")
        var shutdownGrace = "0s"

        @Option(help: "The most runs of one org that may be pending or running for the API and webhooks to start another (0: no limit).")
        var maxActiveRunsPerOrg = ServerConfiguration.defaultMaxActiveRunsPerOrg

        @OptionGroup var execution: ExecutionOptions

        @Option(
            help:
                "The most connections open at once, from all clients; one more is closed as it is accepted (0: no limit; default: 512, or half the open-file limit if that is less)."
        )
        var maxConnections: Int?

        @Option(help: "The most connections open at once from one client address (0: no limit; behind a proxy every client has its address).")
        var maxConnectionsPerClient = ServerConfiguration.defaultMaxConnectionsPerClient

        @OptionGroup var project: ProjectOptions

        func validate() throws {
            guard maxActiveRunsPerOrg >= 0 else {
                throw ValidationError("--max-active-runs-per-org takes 0 (no limit) or more, not \(maxActiveRunsPerOrg)")
            }
            if let maxConnections, maxConnections < 0 { throw ValidationError("--max-connections takes 0 (no limit) or more, not \(maxConnections)") }
            guard maxConnectionsPerClient >= 0 else {
                throw ValidationError("--max-connections-per-client takes 0 (no limit) or more, not \(maxConnectionsPerClient)")
            }
            guard (0...65_535).contains(port) else { throw ValidationError("--port takes 0 to 65535, not \(port)") }
            guard !host.isEmpty else { throw ValidationError("--host can't be empty") }
            if (tlsCertificate == nil) != (tlsKey == nil) {
                throw ValidationError(
                    tlsKey == nil
                        ? "--tls-certificate needs --tls-key, the certificate's private key"
                        : "--tls-key needs --tls-certificate, the certificate it belongs to")
            }
            try validateOrgs(orgs)
            if !orgs.isEmpty, !scheduler { throw ValidationError("--org is for --scheduler; API tokens decide the org of API calls") }
            _ = try parsePoll(poll)
            _ = try parseDuration(shutdownGrace, "--shutdown-grace", allowZero: true)
        }

        func run() async throws {
            bootstrapLogging(defaultLevel: .info)
            let logger = Logger(label: "sluice.server")
            var configuration = ServerConfiguration.command(keyring: keyring)
            configuration.host = host
            configuration.maxActiveRunsPerOrg = maxActiveRunsPerOrg == 0 ? nil : maxActiveRunsPerOrg
            execution.apply(to: &configuration)
            let openFiles = raiseOpenFileLimit()
            configuration.maxConnections =
                switch maxConnections {
                case nil: ServerConfiguration.defaultMaxConnections(openFileLimit: openFiles)
                case 0: nil
                case let limit?: limit
                }
            if let limit = configuration.maxConnections, limit > openFiles / 2 {
                logger.warning(
                    "--max-connections \(limit) leaves few of the process's \(openFiles) file descriptors for anything else: once they are used up, no connection (not /healthz either) is accepted until some close"
                )
            }
            configuration.maxConnectionsPerClient = maxConnectionsPerClient == 0 ? nil : maxConnectionsPerClient
            configuration.port = port
            configuration.shutdownGrace = try parseDuration(shutdownGrace, "--shutdown-grace", allowZero: true)
            if let tlsCertificate, let tlsKey {
                do {
                    configuration.tls = try ServerTLS(certificatePath: tlsCertificate, keyPath: tlsKey)
                } catch {
                    writeError("sluice serve: \(error)")
                    throw ExitCode(2)
                }
                warnIfOthersCanRead(tlsKey, logger: logger)
            }
            let projectServices = try await openProject(
                "serve", root: project.root, environment: configuration.environment,
                runCacheBytes: configuration.runCacheBytesPerRun)
            let server: APIServer
            var services: [any Service] = []
            do {
                server = try APIServer(services: projectServices, configuration: configuration, logger: logger)
                if scheduler {
                    let options = schedulerOptions(settings: projectServices.settings, orgs: orgs, pipelines: nil, poll: try parsePoll(poll))
                    services.append(Scheduler(runner: server.runner, options: options, logger: Logger(label: "sluice.scheduler")))
                }
            } catch {
                writeError("sluice serve: the server could not start: \(error)")
                throw ExitCode(1)
            }
            let host = self.host
            if configuration.tls == nil, !["127.0.0.1", "localhost", "::1"].contains(host), !host.hasPrefix("127.") {
                logger.warning(
                    "serving plain HTTP on \(host): bearer tokens and webhook deliveries cross the network unencrypted; give --tls-certificate and --tls-key, or listen on 127.0.0.1 behind a proxy that terminates TLS"
                )
            }
            let scheme = configuration.tls == nil ? "http" : "https"
            let application = try server.application(services: services) { port in
                // Unbuffered, so a script waiting for this line sees it at once.
                FileHandle.standardOutput.write(Data("sluice serve: listening on \(scheme)://\(host):\(port)\n".utf8))
            }
            let group = ServiceGroup(
                configuration: .init(
                    services: [application], gracefulShutdownSignals: [.sigterm, .sigint],
                    logger: logger))
            try await group.run()
            FileHandle.standardOutput.write(Data("sluice serve: stopped\n".utf8))
        }
    }
}

/// A private key that group or others have access to is one other local users may copy: say so
/// (as ssh does) without refusing, since some deployments mount keys through group permissions.
/// The mode is the file's, through any symlinks (certbot's live/ and Kubernetes secret mounts
/// are links).
private func warnIfOthersCanRead(_ path: String, logger: Logger) {
    var status = stat()
    guard stat(path, &status) == 0, status.st_mode & 0o077 != 0 else { return }
    logger.warning("the TLS private key \(path) is open to group or others (mode \(String(status.st_mode & 0o777, radix: 8))); chmod 600 it")
}

/// Raises the soft limit on open files to the hard limit, as servers do (the soft default is
/// 256 on macOS and often 1024 on Linux: a few hundred idle connections would use it up), and
/// returns the limit now in force.
private func raiseOpenFileLimit() -> Int {
    #if canImport(Glibc)
    let resource = Int32(RLIMIT_NOFILE.rawValue)
    #else
    let resource = RLIMIT_NOFILE
    #endif
    var limit = rlimit()
    guard getrlimit(resource, &limit) == 0 else { return 256 }
    // An unlimited hard limit is not a value setrlimit takes for files: macOS caps it at
    // OPEN_MAX (10240), Linux at nr_open (1,048,576 by default).
    for wanted in [min(limit.rlim_max, 1 << 20), min(limit.rlim_max, 10_240)] where limit.rlim_cur < wanted {
        var raised = limit
        raised.rlim_cur = wanted
        if setrlimit(resource, &raised) == 0 {
            limit = raised
            break
        }
    }
    return Int(clamping: limit.rlim_cur)
}

extension ServerConfiguration {
    /// What `serve`, `scheduler` and `backfill` execute runs with: the keyring given, if any.
    static func command(keyring: String?) -> ServerConfiguration {
        var configuration = ServerConfiguration()
        configuration.keyringPath = keyring
        return configuration
    }
}
