import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import SluiceEngine
import SluiceModel
import SluiceRuntime
import SluiceServer
import UnixSignals

extension Sluice {
    struct WorkerCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "worker",
            abstract: "Claim the runs left for workers and execute them, several at once.",
            discussion: """
                Claims pending runs left for workers (sluice run --enqueue, or every run a \
                server, scheduler or backfill creates when the project's runs execute in \
                workers), oldest first, at most --concurrency at once, and executes each under a \
                lease it renews every third of --lease. A worker that dies (SIGKILL, a lost \
                machine) stops renewing: once its lease expires another worker takes the run \
                over and continues it from its staging, keeping the steps that succeeded; a run \
                publishes once whatever happens. SIGTERM or Ctrl-C stops claiming, gives the runs \
                executing --grace to finish, then releases the rest (nothing of theirs is \
                published; their staging is kept) so another worker continues them at once. \
                See docs/workers.md.
                """)

        @Option(help: "The most runs this worker executes at once.")
        var concurrency = 1

        @Option(name: .customLong("org"), help: "Only claim runs of this org (repeatable; default: every org).")
        var orgs: [String] = []

        @Option(help: "How long a claim lasts unless renewed; another worker takes a run over after it (default: sluice.yml's run_lease, 30s).")
        var lease: String?

        @Option(help: "How long to wait before looking again when there is nothing to claim.")
        var poll = "1s"

        @Option(help: "On SIGTERM, how long executing runs may go on before they are released to another worker.")
        var grace = "30s"

        @Option(help: "Keyring file, for pipelines that decrypt credentials (default: SLUICE_KEYRING, else .sluice/keyring.json).")
        var keyring: String?

        @Option(help: ArgumentHelp("MiB of SQLite page cache the executing runs share: each gets this divided by --concurrency.", valueName: "MiB"))
        var runCacheMib = ServerConfiguration.defaultRunCacheBytes >> 20

        @OptionGroup var project: ProjectOptions

        func validate() throws {
            guard (1...256).contains(concurrency) else { throw ValidationError("--concurrency takes 1 to 256, not \(concurrency)") }
            try validateOrgs(orgs)
            if let lease {
                guard try parseDuration(lease, "--lease") >= .seconds(1) else { throw ValidationError("--lease must be at least 1s") }
            }
            _ = try parsePoll(poll)
            _ = try parseDuration(grace, "--grace", allowZero: true)
            guard (1...(1 << 20)).contains(runCacheMib) else { throw ValidationError("--run-cache-mib takes 1 to 1048576 (MiB), not \(runCacheMib)") }
        }

        func run() async throws {
            bootstrapLogging(defaultLevel: .info)
            let logger = Logger(label: "sluice.worker")
            var configuration = ServerConfiguration.command(keyring: keyring)
            configuration.maxExecutingRuns = concurrency
            configuration.runCacheBytes = runCacheMib << 20
            let services = try await openProject(
                "worker", root: project.root, environment: configuration.environment,
                runCacheBytes: configuration.runCacheBytesPerRun)
            let runner: Runner
            do {
                runner = try Runner(services: services, configuration: configuration, logger: logger)
            } catch {
                writeError("sluice worker: \(error)")
                throw ExitCode(1)
            }
            let options = Worker.Options(
                concurrency: concurrency, orgs: orgs.isEmpty ? nil : Set(orgs),
                lease: try lease.map { try parseDuration($0, "--lease") } ?? services.lease,
                poll: try parsePoll(poll), grace: try parseDuration(grace, "--grace", allowZero: true))
            let worker = Worker(runner: runner, options: options, logger: logger)
            // Unbuffered, so a script waiting for this line sees it at once.
            FileHandle.standardOutput.write(Data("sluice worker: \(options.id) claiming runs\n".utf8))
            let group = ServiceGroup(
                configuration: .init(services: [worker], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
            FileHandle.standardOutput.write(Data("sluice worker: stopped\n".utf8))
        }
    }
}
