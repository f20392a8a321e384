import Foundation
import SluiceModel

/// What starts a run.
public enum RunTrigger: String, Sendable, Codable {
    case cli, schedule, api, webhook, backfill, resume

    /// Whether the run's params come from outside the operator: an API token holder or a
    /// webhook sender chose them, so paths and URLs made from them are held to the tenant's
    /// confines (invariant 10). A resume is as trusted as the run its chain started from, which
    /// only the run store knows; alone, it counts as untrusted.
    public var passesCallerValues: Bool {
        switch self {
        case .api, .webhook, .resume: true
        case .cli, .schedule, .backfill: false
        }
    }
}

/// A run as the run store keeps it.
public struct RunRecord: Sendable, Hashable, Codable {
    public var id: String
    public var pipeline: String
    public var org: String
    public var logicalDate: String
    public var trigger: RunTrigger
    /// Makes a trigger idempotent: a second run with the same key is not created.
    public var triggerKey: String?
    public var requestID: String?
    public var params: [String: String]
    public var state: RunState
    public var reason: String
    public var createdAt: Date
    public var updatedAt: Date
    public var heartbeatAt: Date?
    /// The run this one resumes, if any.
    public var resumeOf: String?
    /// How long the run may go without a heartbeat before it counts as abandoned: the lease of
    /// the process that runs it, stored with the run so that another process (with another
    /// `SLUICE_RUN_LEASE`) judges it by the same one. nil for runs stored before leases were.
    public var lease: Duration?
    /// Whether the run is left for workers (`sluice worker`) to claim, rather than executed by
    /// the process that created it. Only such runs are claimed, and only their leases are
    /// taken over; a run executed where it was created is judged by its heartbeat alone.
    public var forWorkers: Bool
    /// The worker that holds the run's lease, or the last one that did once the run ended or
    /// was released; nil for a run no worker claimed.
    public var worker: String?
    /// When the worker's lease ends unless it renews it; past it, another worker may take the
    /// run over. nil while no worker holds the run.
    public var leaseExpiresAt: Date?
    /// The version of the pipeline the run was created from: the hashes of its pipeline file,
    /// schemas and procedures. nil for runs stored before versions were recorded.
    public var version: PipelineVersion?
    /// The plan the run was created from, as JSON: the steps in the order they run, each with
    /// its processor, its dependencies and why, its `with` as written (expressions are
    /// evaluated per attempt, from `params` and the run), timeout and retry. nil for runs
    /// stored before plans were.
    public var plan: String?

    public init(
        id: String = RunRecord.newID(), pipeline: String, org: String, logicalDate: String,
        trigger: RunTrigger, triggerKey: String? = nil, requestID: String? = nil,
        params: [String: String] = [:], state: RunState = .pending, reason: String = "created",
        createdAt: Date = Date(), resumeOf: String? = nil, lease: Duration? = nil, forWorkers: Bool = false,
        version: PipelineVersion? = nil, plan: String? = nil
    ) {
        self.id = id
        self.pipeline = pipeline
        self.org = org
        self.logicalDate = logicalDate
        self.trigger = trigger
        self.triggerKey = triggerKey
        self.requestID = requestID
        self.params = params
        self.state = state
        self.reason = reason
        self.createdAt = createdAt
        self.updatedAt = createdAt
        self.heartbeatAt = nil
        self.resumeOf = resumeOf
        self.lease = lease
        self.forWorkers = forWorkers
        self.worker = nil
        self.leaseExpiresAt = nil
        self.version = version
        self.plan = plan
    }

    /// Run ids sort by creation time: a millisecond timestamp and random bits, hex.
    public static func newID(at date: Date = Date()) -> String {
        let milliseconds = UInt64(max(0, date.timeIntervalSince1970 * 1000))
        var random = SystemRandomNumberGenerator()
        return String(format: "r%012llx%08x", milliseconds, UInt32.random(in: .min ... .max, using: &random))
    }
}

/// A step of a run as the run store keeps it: its latest state, attempt, error and outputs.
public struct StepRunRecord: Sendable, Hashable, Codable {
    public var runID: String
    public var stepID: String
    public var processor: String
    public var state: RunState
    public var attempt: Int
    public var reason: String
    public var errorCode: String?
    public var startedAt: Date?
    public var finishedAt: Date?
    public var outputs: [String: ExpressionValue]

    public init(
        runID: String, stepID: String, processor: String, state: RunState = .pending, attempt: Int = 0,
        reason: String = "waiting", errorCode: String? = nil, startedAt: Date? = nil, finishedAt: Date? = nil,
        outputs: [String: ExpressionValue] = [:]
    ) {
        self.runID = runID
        self.stepID = stepID
        self.processor = processor
        self.state = state
        self.attempt = attempt
        self.reason = reason
        self.errorCode = errorCode
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.outputs = outputs
    }
}

extension ExpressionValue: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let flag = try? container.decode(Bool.self) {
            self = .bool(flag)
        } else if let number = try? container.decode(Double.self) {
            self = .number(number)
        } else {
            self = .string(try container.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let text): try container.encode(text)
        case .number(let number): try container.encode(number)
        case .bool(let flag): try container.encode(flag)
        case .null: try container.encodeNil()
        }
    }
}
