import ArgumentParser
import SluiceServer

/// `--max-executing-runs` and `--run-cache-mib`, shared by the commands that execute the runs
/// they create in a long-running process (`serve`, `scheduler`).
struct ExecutionOptions: ParsableArguments {
    @Option(help: "The most runs executing at once in this process; the rest wait, pending, and start in the order they were created.")
    var maxExecutingRuns = ServerConfiguration.defaultMaxExecutingRuns

    @Option(
        help: ArgumentHelp("MiB of SQLite page cache the executing runs share: each gets this divided by --max-executing-runs.", valueName: "MiB"))
    var runCacheMib = ServerConfiguration.defaultRunCacheBytes >> 20

    func validate() throws {
        guard maxExecutingRuns >= 1 else { throw ValidationError("--max-executing-runs takes 1 or more, not \(maxExecutingRuns)") }
        guard (1...(1 << 20)).contains(runCacheMib) else { throw ValidationError("--run-cache-mib takes 1 to 1048576 (MiB), not \(runCacheMib)") }
    }

    func apply(to configuration: inout ServerConfiguration) {
        configuration.maxExecutingRuns = maxExecutingRuns
        configuration.runCacheBytes = runCacheMib << 20
    }
}
