import Foundation
import Logging
import SluiceModel
import SluiceSecrets
import SluiceStorage

/// A processor's run logic. Each built-in processor is one type holding its spec (from
/// SluiceModel, where lint and docs read it) and the code that runs a step.
public protocol Processor: Sendable {
    /// The spec whose name appears in `uses:`.
    var spec: ProcessorSpec { get }

    /// Runs one attempt of a step and returns its outputs. Throw `StepFailure` to say whether
    /// a retry could help; any other error counts as permanent. Honour cancellation: the
    /// executor cancels a step at its timeout and abandons one that keeps running.
    func run(_ step: StepContext) async throws -> [String: ExpressionValue]
}

/// What a step attempt gets to work with.
public struct StepContext: Sendable {
    public var runID: String
    public var pipeline: String
    public var org: String
    /// The day (YYYY-MM-DD) the run is for.
    public var logicalDate: String?
    public var stepID: String
    public var attempt: Int
    /// The step's `with`, with every `${{ }}` evaluated; positions still point into the file.
    public var config: YAMLNode
    public var logger: Logger
    /// The run's view of the warehouse; nil when the executor runs without one.
    public var workspace: (any RunWorkspace)?
    /// The project the pipeline belongs to: its folder and table schemas.
    public var project: ProjectContext?
    /// The run store, for what a step records beyond its outputs (data test results).
    public var runStore: (any RunStore)?
    /// The run's secrets; `kms_decrypt` puts what it decrypts here.
    public var vault: SecretVault?
    /// Where `kms_decrypt` opens stored credentials; nil without a keyring.
    public var credentials: Credentials?
    /// The pipeline's `secrets.ttl`, the lifetime of a secret whose step sets none.
    public var secretsTTL: Duration?
    /// Why the run failed, for an `on_failure` handler; nil for the pipeline's steps.
    public var runFailure: RunFailure?
    /// The environment the run sees as `env.*` (a server's configured one, not necessarily
    /// this process's), without key material. Settings such as `public_url` are read from it
    /// once, when the run starts, into `project.settings`.
    public var environment: [String: String] = [:]
    /// Fields of `config` (dotted paths: `source.path`, `url`) whose value a template made from
    /// what the run's caller chose (a param given through the API or a webhook), with the
    /// references it read (`params.usage_file`). Paths and URLs from them are held to the
    /// tenant's confines: no absolute path or `..`, no private or loopback address.
    public var untrustedFields: [String: ConfigResolver.UntrustedField] = [:]

    /// Whether the caller of the run chose `field`'s value (see `untrustedFields`).
    public func isUntrusted(_ field: String) -> Bool {
        untrustedFields[field] != nil
    }

    /// The workspace, or a failure saying this step needs one.
    public func requireWorkspace() throws(StepFailure) -> any RunWorkspace {
        guard let workspace else { throw StepFailure("no_warehouse", "step '\(stepID)' needs a warehouse, and this run has none") }
        return workspace
    }
}

/// The project a run's pipeline comes from: where relative paths start, the schemas, and the
/// settings the run read from sluice.yml when it started.
public struct ProjectContext: Sendable {
    public var root: URL
    public var schemas: SchemaCatalog
    /// sluice.yml and the `SLUICE_*` variables as the run saw them when it started (the
    /// executor reads them once per run); the defaults until then.
    public var settings = ProjectSettings()

    public init(root: URL, schemas: SchemaCatalog) {
        // A directory URL, so relative paths resolve inside it rather than beside it.
        self.root = URL(fileURLWithPath: root.standardizedFileURL.path, isDirectory: true)
        self.schemas = schemas
    }

    /// `.sluice/`, where the project keeps its state: the run store, every org's warehouse and
    /// staging, the default keyring. No run reads inputs from it.
    public var stateFolder: URL { root.appendingPathComponent(".sluice", isDirectory: true) }

    public init(root: URL) {
        self.init(root: root, schemas: SchemaCatalog(projectRoot: root))
    }
}

