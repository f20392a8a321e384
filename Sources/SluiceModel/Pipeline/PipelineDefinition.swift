/// A value together with where it was written.
public struct Located<Value: Sendable & Hashable>: Sendable, Hashable {
    public var value: Value
    public var location: SourceLocation

    public init(_ value: Value, at location: SourceLocation) {
        self.value = value
        self.location = location
    }
}

/// A pipeline file as written, with positions: what `PipelineLoader` makes of the YAML.
/// Values that failed validation are left out (lint reported them), so a definition can be
/// built from a file with errors and still be checked further.
public struct PipelineDefinition: Sendable {
    public var file: String
    public var id: Located<String>?
    public var description: String?
    public var schedule: Schedule?
    public var params: [ParamDefinition]
    public var defaults: StepDefaults
    public var secretsTTL: Duration?
    /// The run-level `timeout`: how long the whole run may take.
    public var timeout: Duration?
    public var steps: [StepDefinition]
    public var onFailure: [StepDefinition]
    /// Every step id written in the file, including steps left out for errors, so that a
    /// broken step does not make its dependents' `needs` look wrong too.
    public var writtenStepIDs: Set<String> = []
    /// Where the document starts, for problems with the pipeline as a whole.
    public var location: SourceLocation

    public func step(_ id: String) -> StepDefinition? {
        steps.first { $0.id.value == id }
    }
}

public struct Schedule: Sendable {
    public var cron: CronExpression?
    public var timezone: String
    public var catchup: Duration?
    public var maxActiveRuns: Int
    public var location: SourceLocation
}

public struct ParamDefinition: Sendable {
    public enum ParamType: String, Sendable {
        case string, integer, number, boolean, date, duration
    }

    public var name: Located<String>
    public var type: ParamType
    public var defaultValue: YAMLNode?
    public var required: Bool
    public var pattern: String?
    public var allowedValues: [YAMLNode]?
    public var description: String?
}

public struct RetryPolicy: Sendable, Hashable {
    public enum Backoff: String, Sendable {
        case exponential, fixed
    }

    public var attempts: Int
    public var backoff: Backoff
    public var initialDelay: Duration
    public var maxDelay: Duration
    public var jitter: Bool

    public init(attempts: Int, backoff: Backoff, initialDelay: Duration, maxDelay: Duration, jitter: Bool) {
        self.attempts = attempts
        self.backoff = backoff
        self.initialDelay = initialDelay
        self.maxDelay = maxDelay
        self.jitter = jitter
    }

    /// One try, no retry: what a step gets when nothing says otherwise.
    public static let none = RetryPolicy(
        attempts: 1, backoff: .exponential, initialDelay: .seconds(1),
        maxDelay: .seconds(60), jitter: true)
}

public struct StepDefaults: Sendable {
    public var timeout: Duration?
    public var retry: RetryPolicy?
    public var maxParallel: Int
}

/// One step (or an `on_failure` handler) as written, plus what validation learned about it:
/// the tables it reads and writes, the secrets and step outputs it refers to.
public struct StepDefinition: Sendable {
    public var id: Located<String>
    public var uses: Located<String>
    public var description: String?
    public var needs: [Located<String>]
    /// The `with` mapping, kept as YAML so the processor reads it with positions.
    public var config: YAMLNode?
    public var timeout: Duration?
    public var retry: RetryPolicy?
    /// The step's own `limits`; the org's apply as well.
    public var limits = StepLimits()
    public var location: SourceLocation
    public var io: StepIO
}

/// What a step touches, found from its processor's field roles and its expressions.
public struct StepIO: Sendable {
    public var reads: [Located<String>] = []
    public var writes: [Located<String>] = []
    public var schemaFiles: [Located<String>] = []
    public var procedureFiles: [Located<String>] = []
    public var definesSecrets: [Located<String>] = []
    /// `steps.<id>.outputs.*` references: the ids, with where they were read.
    public var stepReferences: [Located<String>] = []
    /// `secrets.<name>` references.
    public var secretReferences: [Located<String>] = []
    /// Column names with the tables they must belong to (resolved from sibling fields).
    public var columnUses: [ColumnUse] = []
    /// SQL expressions (measures, filters) with the tables whose columns they may use.
    public var sqlExpressions: [SQLExpressionUse] = []

    public init() {}
}

public struct ColumnUse: Sendable {
    public var column: Located<String>
    public var tables: [String]
    public var field: String
    /// The column must be in every table (a join key), not just one of them.
    public var inEveryTable: Bool
}

public struct SQLExpressionUse: Sendable {
    public var text: Located<String>
    /// Where the text's first character is when the value sits on one line, so a problem can
    /// be pointed at exactly; nil for block scalars (problems then point at the value).
    public var firstCharacter: SourceLocation?
    public var tables: [String]
    public var field: String
}
