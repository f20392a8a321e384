import SluiceModel
import SluiceStorage

/// A pipeline file as linted: its plan, or the diagnostics that stop it.
public struct LintedPipeline: Sendable {
    /// The pipeline's id: its file's name under `pipelines/`, or as the file declares it.
    public var id: String
    /// The file, relative to the project root.
    public var file: String
    public var plan: PipelinePlan?
    public var diagnostics: [Diagnostic]
    /// The project's schemas, read with this plan; nil to read them when the run executes.
    public var project: ProjectContext?
    /// The version of the files the plan was made from, hashed when it was linted; nil to hash
    /// them when a run starts (`currentVersion(projectRoot:)`).
    public var version: PipelineVersion?

    public init(
        id: String, file: String, plan: PipelinePlan?, diagnostics: [Diagnostic], project: ProjectContext? = nil,
        version: PipelineVersion? = nil
    ) {
        self.id = id
        self.file = file
        self.plan = plan
        self.diagnostics = diagnostics
        self.project = project
        self.version = version
    }
}
