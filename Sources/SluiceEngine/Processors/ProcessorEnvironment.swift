import Foundation
import SluiceModel

/// The processors a project's pipelines can use: each one's spec (what lint, `sluice processors`,
/// the editor JSON Schema and the plan read) with the code that runs it, so what lints also
/// runs. Sluice's own is built in one place, `ProcessorEnvironment.standard` (SluiceProviders),
/// and handed to lint, docs, the server and the executor alike. Adding a processor is its spec,
/// its run type, one line there, and its tests.
public struct ProcessorEnvironment: Sendable {
    /// The processors in the order they were registered (the order docs list them in).
    public private(set) var processors: [any Processor]

    public init(_ processors: [any Processor]) {
        self.processors = []
        for processor in processors { register(processor) }
    }

    /// Adds `processor`; one with the same name is replaced, where it was.
    public mutating func register(_ processor: any Processor) {
        if let index = processors.firstIndex(where: { $0.spec.name == processor.spec.name }) {
            processors[index] = processor
        } else {
            processors.append(processor)
        }
    }

    /// This environment with `more` registered (tests add processors of their own this way).
    public func adding(_ more: [any Processor]) -> ProcessorEnvironment {
        var copy = self
        for processor in more { copy.register(processor) }
        return copy
    }

    public subscript(name: String) -> (any Processor)? {
        processors.first { $0.spec.name == name }
    }

    /// The specs, for lint, docs, the editor schema and the plan.
    public var registry: ProcessorRegistry {
        ProcessorRegistry(processors.map(\.spec))
    }

    /// Lints the pipeline file at `path` (relative to `projectRoot`) with these processors into
    /// a plan, or returns the diagnostics that stop it.
    public func plan(file path: String, projectRoot: URL) -> (plan: PipelinePlan?, diagnostics: [Diagnostic]) {
        Linter(projectRoot: projectRoot, registry: registry).plan(file: path)
    }

    /// Whether any step of the plan uses a processor that needs `capability`.
    public func plan(_ plan: PipelinePlan, needs capability: ProcessorSpec.Capability) -> Bool {
        plan.definition.steps.contains { self[$0.uses.value]?.spec.capabilities.contains(capability) == true }
    }
}
