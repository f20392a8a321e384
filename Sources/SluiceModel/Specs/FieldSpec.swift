/// One field of a configuration object: a processor's `with`, or a part of the pipeline format
/// itself. Lint, `sluice processors` and the editor JSON Schema all read these, so a field is
/// documented and checked by being declared.
public struct FieldSpec: Sendable {
    public var name: String
    public var type: FieldType
    public var requirement: Requirement
    public var secret: SecretUse
    public var role: FieldRole
    /// The field decides where a request goes (a base URL, an endpoint). In a step that
    /// carries a secret, such a field must not be computed from what a run's caller or its
    /// data chooses (`params.*`, `steps.*.outputs.*`): that would let them receive the secret.
    public var destination: Bool
    /// What docs say beside the field's default: the default in words where it is not a value
    /// to write (`token_url`: "the key's `token_uri`"), or when the field applies (`model`:
    /// "for `check: messages`"). Lint and runs don't read it.
    public var defaultNote: String?
    public var description: String
    public var example: String?

    public enum Requirement: Sendable, Equatable {
        case required
        case optional
        /// Optional, with this default (written as it would be in YAML).
        case defaultValue(String)

        public var isRequired: Bool { self == .required }
    }

    public init(
        _ name: String, _ type: FieldType, _ requirement: Requirement = .optional,
        secret: SecretUse = .never, role: FieldRole = .none, destination: Bool = false,
        defaultNote: String? = nil, description: String, example: String? = nil
    ) {
        self.name = name
        self.type = type
        self.requirement = requirement
        self.secret = secret
        self.role = role
        self.destination = destination
        self.defaultNote = defaultNote
        self.description = description
        self.example = example
    }
}

/// Whether a field may receive `${{ secrets.* }}`.
public enum SecretUse: Sendable, Equatable {
    /// Secrets may not flow here: the value could end up in logs, tables or notifications.
    case never
    /// Secrets may flow here, and a literal is fine too (a webhook URL, a header).
    case allowed
    /// The value is a credential: it must come from `${{ secrets.* }}`, never a literal.
    case required

    public var acceptsSecrets: Bool { self != .never }
}

/// What a field means to the DAG and to lint's table and column checks.
public enum FieldRole: Sendable, Equatable {
    case none
    /// The field names a table the step reads.
    case readsTable
    /// The field names a table the step writes.
    case writesTable
    /// The field names columns of the tables named at these paths (dotted, from the root of
    /// `with`, such as `["from", "join.table"]`; a leading `.` means a field of the same object).
    case columns(ofTablesAt: [String])
    /// Like `columns`, but each column must be in every one of the tables (join keys).
    case sharedColumns(ofTablesAt: [String])
    /// SQL expressions over the columns of the tables at these paths (measures, filters).
    case sqlOver(tablesAt: [String])
    /// The field names a schema file whose table the step writes.
    case schemaFile
    /// The field names a SQL file in `procedures/`; its reads and writes become DAG edges.
    case procedureFile
    /// The field names the secret the step puts into the vault (`secrets.<name>`).
    case definesSecret
    /// Names a step id in the same pipeline.
    case stepReference
}

/// The shape of a field's value.
public indirect enum FieldType: Sendable {
    case string
    case integer(ClosedRange<Int>?)
    case number
    case boolean
    case duration
    case cron
    case timezone
    /// A name that may reach SQL or key the DAG (checked by `Identifier`).
    case identifier
    /// The name of a stored credential, `openai/admin_key` (checked by `CredentialName`).
    case credentialName
    case enumeration([String])
    /// A list; a single item is accepted where a list is expected (`needs: load`).
    case list(FieldType)
    /// A mapping with free keys (identifiers unless `anyKeys`) and values of one type.
    case map(FieldType, anyKeys: Bool = false)
    case object([FieldSpec])
    /// One of several object shapes, told apart by the value of a discriminator field.
    case variants(discriminator: String, [String: [FieldSpec]])
    /// A processor's config: its shape depends on the sibling `uses` field.
    case processorConfig
    /// Any scalar: text, number or boolean.
    case scalar
    /// Any YAML value (a request body, metadata).
    case any
    /// The short form, a value of the first type, or the long form, an object of these fields
    /// (`columns: { day: ChargePeriodStart }` or `{ day: { from: ChargePeriodStart, format: "%m/%d/%Y" } }`).
    case shortOrObject(FieldType, [FieldSpec])
    /// A strftime-style input format for dates and times (`%m/%d/%Y`), checked by `TimeFormat`.
    case timeFormat
    /// A count (`100`) or a percentage (`5%`) of rows.
    case countOrPercent
    /// A size in bytes, with an optional unit (`500MB`, `2GiB`), checked by `ByteCount`.
    case byteCount

    /// How the type reads in docs: `integer (1–100)`, `list of name`.
    public var summary: String {
        switch self {
        case .string: return "string"
        case .integer(let range):
            return range.map { $0.upperBound == .max ? "integer (≥ \($0.lowerBound))" : "integer (\($0.lowerBound)–\($0.upperBound))" } ?? "integer"
        case .number: return "number"
        case .boolean: return "boolean"
        case .duration: return "duration"
        case .cron: return "cron expression"
        case .timezone: return "IANA timezone"
        case .identifier: return "name"
        case .credentialName: return "credential name"
        case .enumeration(let values): return values.joined(separator: " | ")
        case .list(let item): return "list of \(item.summary)"
        case .map(let value, _): return "map of \(value.summary)"
        case .object: return "object"
        case .variants(let discriminator, _): return "object (by \(discriminator))"
        case .processorConfig: return "processor config"
        case .scalar: return "scalar"
        case .any: return "any value"
        case .shortOrObject(let short, _): return "\(short.summary) or object"
        case .timeFormat: return "time format"
        case .countOrPercent: return "count or percentage"
        case .byteCount: return "size"
        }
    }

    /// How the type reads in a sentence: "must be a name, not a mapping".
    public var phrase: String {
        switch self {
        case .integer, .identifier, .credentialName, .duration, .cron, .number, .string, .object, .scalar:
            let text = summary
            return ("aeiou".contains(text.first ?? "x") ? "an " : "a ") + text
        case .timezone: return "an IANA timezone"
        case .boolean: return "true or false"
        case .enumeration(let values): return "one of \(values.joined(separator: ", "))"
        case .list(let item): return "\(item.phrase) or a list of them"
        case .map: return "a mapping"
        case .variants: return "a mapping"
        case .processorConfig: return "a mapping of the processor's fields"
        case .any: return "any value"
        case .shortOrObject(let short, _): return "\(short.phrase) or a mapping"
        case .timeFormat: return "a time format like %m/%d/%Y"
        case .countOrPercent: return "a count like 100 or a percentage like 5%"
        case .byteCount: return "a size like 500MB or 2GiB"
        }
    }
}

/// A rule between fields of one object that a single field's spec can't say.
public enum FieldRule: Sendable {
    /// `field` must be present when `when` has one of `equals` (its default counts), e.g.
    /// `latest_by` when `strategy` is `latest_wins`. `equals: ["*"]` means "when present".
    case required(String, when: String, equals: [String])
    /// Exactly one of these fields must be present.
    case exactlyOne(of: [String])
    /// At most one of these fields may be present.
    case atMostOne(of: [String])
    /// When both are present, the value of the first must be one of the values of the second
    /// (a partition column must be a group-by column).
    case memberOf(String, list: String)
}

/// A value a processor publishes for later steps as `steps.<id>.outputs.<name>`.
public struct OutputSpec: Sendable {
    public var name: String
    public var type: String
    public var description: String

    public init(_ name: String, _ type: String, _ description: String) {
        self.name = name
        self.type = type
        self.description = description
    }
}
