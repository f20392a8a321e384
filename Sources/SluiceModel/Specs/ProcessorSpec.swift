/// What a processor is, as users and lint see it: its name in `uses:`, what it does, the
/// fields of its `with`, the rules between them, and the outputs later steps can read.
/// The run logic lives in SluiceEngine, in a type that carries this spec.
public struct ProcessorSpec: Sendable {
    public var name: String
    public var summary: String
    public var description: String
    public var fields: [FieldSpec]
    public var rules: [FieldRule]
    public var outputs: [OutputSpec]
    /// A complete step using the processor, as YAML, for docs.
    public var example: String
    /// The columns of the table the step writes, when they follow from its config (given the
    /// columns of other tables), so lint can check steps that read it. Steps with a schema
    /// file don't need this: the schema says.
    public var resultColumns: (@Sendable (_ config: YAMLNode, _ columnsOf: (String) -> [String]?) -> [String]?)?
    /// How a step of this processor retries when neither it nor the pipeline's `defaults` set a
    /// `retry` policy; nil means the general default, one try. `notify` sets one so an alert
    /// survives a webhook's brief outage in a pipeline that never thought about retries.
    public var defaultRetry: RetryPolicy?
    /// The step computes what it writes from tables it reads (an aggregate, a procedure), so
    /// what it stages is only right while nobody else publishes those tables: the run holds its
    /// target tables from before the step reads until the run publishes, and a resume runs the
    /// step (and what comes after it) again instead of reusing what it staged.
    public var derivesFromTables: Bool
    /// What the processor's steps need from a run besides their config: the run hands a step
    /// only these, and a front end can tell before a run starts whether it can run a plan (a
    /// pipeline that opens credentials needs the keys).
    public var capabilities: Set<Capability>
    /// The output a server adds to `sluice_rows_ingested_total` when a step succeeds.
    public var ingestedRowsOutput: String?

    /// What a step may need from the run it is part of.
    public enum Capability: String, Sendable, Hashable, CaseIterable {
        /// The run's view of the org's warehouse: tables to read, staging to write.
        case warehouse
        /// The org's stored credentials, opened with the keys (and the run's vault).
        case credentials
        /// Calls over HTTP (the run's request id goes with them).
        case http
        /// Records kept with the run beyond the step's outputs (quarantined rows, data test results).
        case stepRecords
    }

    public init(
        name: String, summary: String, description: String, fields: [FieldSpec],
        rules: [FieldRule] = [], outputs: [OutputSpec], example: String,
        resultColumns: (@Sendable (_ config: YAMLNode, _ columnsOf: (String) -> [String]?) -> [String]?)? = nil,
        defaultRetry: RetryPolicy? = nil, derivesFromTables: Bool = false, capabilities: Set<Capability> = [],
        ingestedRowsOutput: String? = nil
    ) {
        self.derivesFromTables = derivesFromTables
        self.capabilities = capabilities
        self.ingestedRowsOutput = ingestedRowsOutput
        self.name = name
        self.summary = summary
        self.description = description
        self.fields = fields
        self.rules = rules
        self.outputs = outputs
        self.example = example
        self.resultColumns = resultColumns
        self.defaultRetry = defaultRetry
    }

    public func field(_ name: String) -> FieldSpec? {
        fields.first { $0.name == name }
    }
}

/// The processors a pipeline can `use`. Lint, docs and the editor schema read this list.
public struct ProcessorRegistry: Sendable {
    public private(set) var specs: [ProcessorSpec]
    private var byName: [String: Int]

    public init(_ specs: [ProcessorSpec]) {
        self.specs = specs
        byName = Dictionary(uniqueKeysWithValues: specs.enumerated().map { ($1.name, $0) })
    }

    public subscript(name: String) -> ProcessorSpec? {
        byName[name].map { specs[$0] }
    }

    public var names: [String] { specs.map(\.name) }
}
