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

/// What a step attempt gets to work with: who and what it runs for, its `with`, and the
/// services its spec declares (`ProcessorSpec.capabilities`). The executor hands a step only
/// the services its spec declares, so a processor that forgets to declare one fails plainly.
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
    /// The project the pipeline belongs to: its folder, table schemas and settings.
    public var project: ProjectContext?
    /// Why the run failed, for an `on_failure` handler; nil for the pipeline's steps.
    public var runFailure: RunFailure?
    /// The environment the run sees as `env.*` (a server's configured one, not necessarily
    /// this process's), without key material.
    public var environment: [String: String] = [:]
    /// Fields of `config` (dotted paths: `source.path`, `url`) whose value a template made from
    /// what the run's caller chose (a param given through the API or a webhook), with the
    /// references it read (`params.usage_file`). Paths and URLs from them are held to the
    /// tenant's confines: no absolute path or `..`, no private or loopback address.
    public var untrustedFields: [String: ConfigResolver.UntrustedField] = [:]
    /// The services the spec declared and the run has.
    public var services = StepServices()

    public init(
        runID: String, pipeline: String, org: String, stepID: String, attempt: Int, config: YAMLNode,
        logger: Logger, project: ProjectContext?
    ) {
        self.runID = runID
        self.pipeline = pipeline
        self.org = org
        self.stepID = stepID
        self.attempt = attempt
        self.config = config
        self.logger = logger
        self.project = project
    }

    /// Whether the caller of the run chose `field`'s value (see `untrustedFields`).
    public func isUntrusted(_ field: String) -> Bool {
        untrustedFields[field] != nil
    }

    /// The run's view of the warehouse (capability `warehouse`), or a failure saying this
    /// step needs one.
    public func requireWorkspace() throws(StepFailure) -> any RunWorkspace {
        guard let workspace = services.workspace else { throw StepFailure(.noWarehouse, "step '\(stepID)' needs a warehouse, and this run has none") }
        return workspace
    }

    /// Where the step keeps records with its run (capability `stepRecords`).
    public func requireRecords() throws(StepFailure) -> StepRecorder {
        guard let records = services.records else {
            throw StepFailure.config("step '\(stepID)' keeps records with its run, and this run has no run store")
        }
        return records
    }

    /// The run's secrets and stored credentials (capability `credentials`).
    public func requireSecrets() throws(StepFailure) -> StepSecrets {
        guard let secrets = services.secrets else { throw StepFailure.config("step '\(stepID)' needs the run's secrets, and this run has none") }
        return secrets
    }
}

/// The services a step's spec may declare (`ProcessorSpec.Capability`); each is nil unless
/// declared and available to the run.
public struct StepServices: Sendable {
    /// `warehouse`: the run's view of the warehouse, staged rows included.
    public var workspace: (any RunWorkspace)?
    /// `stepRecords`: where the step keeps what it wants stored with the run.
    public var records: StepRecorder?
    /// `credentials`: the run's vault and the stored credentials.
    public var secrets: StepSecrets?

    public init(workspace: (any RunWorkspace)? = nil, records: StepRecorder? = nil, secrets: StepSecrets? = nil) {
        self.workspace = workspace
        self.records = records
        self.secrets = secrets
    }
}

/// The secrets a step with the `credentials` capability reaches.
public struct StepSecrets: Sendable {
    /// The run's secrets; `kms_decrypt` puts what it decrypts here.
    public var vault: SecretVault
    /// Where stored credentials open; nil without a keyring.
    public var credentials: Credentials?
    /// The pipeline's `secrets.ttl`, the lifetime of a secret whose step sets none.
    public var ttl: Duration?

    public init(vault: SecretVault, credentials: Credentials?, ttl: Duration?) {
        self.vault = vault
        self.credentials = credentials
        self.ttl = ttl
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
