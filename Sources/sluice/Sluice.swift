import ArgumentParser
import Foundation
import Logging
import SluiceEngine
import SluiceModel
import SluiceProviders
import SluiceRuntime
import SluiceSecrets
import SluiceStorage
import Synchronization

/// `sluice`: the command-line entry point. Each subcommand lives in its own file and only
/// turns flags into calls on the library modules.
@main
struct Sluice: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluice",
        abstract: "Declarative data pipelines: YAML in, a checked DAG of processor steps out.",
        version: SluiceVersion.current,
        subcommands: [
            Lint.self, Plan.self, Run.self, Runs.self, Query.self, Processors.self, Schema.self, Init.self, Keys.self, Secrets.self, Cron.self,
            SchedulerCommand.self, BackfillCommand.self, Serve.self, WorkerCommand.self, Tokens.self, Hooks.self,
        ])

    /// Usage errors exit 2 (as `lint` documents), not ArgumentParser's 64.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}

/// `--project`, shared by the commands that read a project.
struct ProjectOptions: ParsableArguments {
    @Option(name: .long, help: "Project folder (default: the nearest folder up from here with sluice.yml or pipelines/).")
    var project: String?

    var root: URL {
        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        if let project { return URL(fileURLWithPath: project, relativeTo: cwd).standardizedFileURL }
        return ProjectLocator.root(startingAt: cwd)
    }

    /// A path the user typed (relative to the working directory), as a path relative to the
    /// project root when it lies inside it, so messages name files the way the project does.
    func projectPath(_ path: String) -> String {
        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        let absolute = URL(fileURLWithPath: path, relativeTo: cwd).standardizedFileURL.path
        let base = root.path
        if absolute == base { return "." }
        if absolute.hasPrefix(base + "/") { return String(absolute.dropFirst(base.count + 1)) }
        return absolute
    }
}

/// Standard error for every command, with control characters escaped as `print` does.
func writeError(_ text: String) {
    let text = printable(text, keepingLineBreaks: true)
    FileHandle.standardError.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
}

/// Standard output for every command. Run records, params, reasons, outputs, warehouse rows
/// and names from files all reach the terminal through here, so their control characters are
/// escaped (`printable`): no value can clear the screen, retitle the window or rewrite a line.
/// It shadows the standard library's `print` in this module, so no command can forget it;
/// output that carries terminal sequences on purpose (progress, lint colours) escapes its
/// fields itself and writes to the file handle.
func print(_ items: Any..., separator: String = " ", terminator: String = "\n") {
    Swift.print(printable(items.map { "\($0)" }.joined(separator: separator), keepingLineBreaks: true), terminator: terminator)
}

/// Log lines to standard error, every one through the redactor, at `SLUICE_LOG_LEVEL` or
/// `defaultLevel`. The first call in a process sets it up; later ones change nothing. A level
/// that is not one ends the command with status 1, naming the variable and the levels. The key
/// material the environment holds is masked in every line, whatever prints it.
func bootstrapLogging(defaultLevel: Logger.Level) {
    guard
        loggingStarted.withLock({ started in
            defer { started = true }; return !started
        })
    else { return }
    let environment = ProcessInfo.processInfo.environment
    for name in [KeySource.Variable.passphrase, KeySource.Variable.salt] {
        if let value = environment[name] { SecretRedactor.shared.register(value, owner: "environment") }
    }
    var level = defaultLevel
    if let text = environment["SLUICE_LOG_LEVEL"] {
        guard let chosen = Logger.Level(rawValue: text.trimmingCharacters(in: .whitespaces).lowercased()) else {
            let levels = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
            writeError("sluice: SLUICE_LOG_LEVEL must be one of \(levels), not \(shown(text))")
            exit(1)
        }
        level = chosen
    }
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return RedactingLogHandler(wrapping: handler)
    }
}

private let loggingStarted = Mutex(false)

/// Opens the project (`Runtime.open`) for `command`. Settings that don't check out (a bad
/// `sluice.yml` key or `SLUICE_*` variable) end the command with status 1 and an error that
/// names the key or variable, before anything is opened; so does a database server that can't
/// be reached or refuses, naming its host:port.
func openProject(
    _ command: String, root: URL, environment: [String: String] = ProcessInfo.processInfo.environment,
    processors: ProcessorEnvironment = .standard, runCacheBytes: Int = Runtime.defaultRunCacheBytes,
    recover: Bool = true
) async throws -> ProjectServices {
    do {
        return try await Runtime.open(
            projectRoot: root, environment: environment, processors: processors,
            runCacheBytes: runCacheBytes, recover: recover)
    } catch let error as SettingsError {
        writeError("sluice \(command): \(error)")
        throw ExitCode(1)
    } catch let error as BackendUnavailable {
        // The server can't be reached, refuses the user, or lacks the database: its host:port
        // and the problem, never the password.
        writeError("sluice \(command): \(error)")
        throw ExitCode(1)
    }
}

/// Checks `--org` values: names of letters, digits and `_`.
func validateOrgs(_ orgs: [String]) throws {
    for org in orgs where !Identifier.isValid(org) {
        throw ValidationError("--org takes a name (letters, digits, _), not '\(org)'")
    }
}
