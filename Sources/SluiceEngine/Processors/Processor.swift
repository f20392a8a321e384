import Logging
import SluiceModel

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
    public var stepID: String
    public var attempt: Int
    /// The step's `with`, with every `${{ }}` evaluated; positions still point into the file.
    public var config: YAMLNode
    public var logger: Logger
}

/// The processors an executor can run, by name.
public struct ProcessorCatalog: Sendable {
    private var processors: [String: any Processor]

    public init(_ processors: [any Processor]) {
        self.processors = Dictionary(processors.map { ($0.spec.name, $0) }, uniquingKeysWith: { _, last in last })
    }

    public subscript(name: String) -> (any Processor)? { processors[name] }

    /// The specs, for lint and docs when the catalog holds more than the built-in processors.
    public var registry: ProcessorRegistry {
        ProcessorRegistry(processors.values.map(\.spec).sorted { $0.name < $1.name })
    }
}
