import SluiceModel
import SluiceStorage

/// Why the run starter created no run. Each front end says it its own way: `sluice run` as a
/// message and exit status 1, the HTTP API and webhooks as a status and an error code, the
/// scheduler and backfill as a log line.
public enum RunRefusal: Error, Sendable, CustomStringConvertible {
    /// The project has no pipeline of this id.
    case pipelineNotFound(String)
    /// The pipeline file does not lint: its diagnostics, as lint gave them.
    case pipelineInvalid(file: String, diagnostics: [Diagnostic])
    /// The pipeline decrypts credentials and there are no keys: why.
    case keysUnavailable(reason: String)
    /// A param does not check against the pipeline's declaration.
    case invalidParam(InvalidParam)
    /// As many runs as a limit allows are pending or running.
    case limited(ActiveRunsLimit)
    /// The process is shutting down and starts no runs.
    case shuttingDown
    /// A run with the request's trigger key exists: that run, as it is now.
    case duplicate(RunRecord)

    /// The errors of an invalid pipeline, without its warnings.
    public var errors: [Diagnostic] {
        guard case .pipelineInvalid(_, let diagnostics) = self else { return [] }
        return diagnostics.filter { $0.severity == .error }
    }

    public var description: String {
        switch self {
        case .pipelineNotFound(let id): "the project has no pipeline \(shown(id))"
        case .pipelineInvalid(let file, _):
            "\(file) does not lint (\(errors.count) error\(errors.count == 1 ? "" : "s")); the first: \(errors.first?.description ?? "?")"
        case .keysUnavailable(let reason): "the pipeline decrypts credentials, and there are no keys: \(reason)"
        case .invalidParam(let problem): problem.message()
        case .limited(let limit): "\(limit.active) run\(limit.active == 1 ? " is" : "s are") pending or running, \(limit)"
        case .shuttingDown: "shutting down: no runs are started"
        case .duplicate(let run): "run \(run.id) has the same trigger key"
        }
    }
}

/// A limit on the runs pending or running at once that a run start reached.
public struct ActiveRunsLimit: Sendable, Hashable, CustomStringConvertible {
    public enum Scope: Sendable, Hashable {
        /// The pipeline's in one org: its schedule's `max_active_runs`.
        case pipeline
        /// The org's, whatever the pipeline: the server's limit per org.
        case org
    }

    public var scope: Scope
    /// How many are active.
    public var active: Int
    /// The most allowed.
    public var maximum: Int

    public init(scope: Scope, active: Int, maximum: Int) {
        self.scope = scope
        self.active = active
        self.maximum = maximum
    }

    public var description: String {
        switch scope {
        case .pipeline: "max_active_runs \(maximum)"
        case .org: "the org's limit of \(maximum)"
        }
    }
}
