import Foundation
import SluiceEngine
import SluiceModel
import SluiceStorage

/// A run as the API shows it. Reasons pass through the redactor on the way out (they were
/// redacted when stored; this is the second lock on the door).
struct RunResource: Encodable {
    var id: String
    var org: String
    var pipeline: String
    var state: String
    var reason: String
    var trigger: String
    var logicalDate: String
    var params: [String: String]
    var requestID: String?
    var createdAt: Date
    var updatedAt: Date
    var resumeOf: String?
    /// The version of the pipeline the run was created from; absent for runs stored before
    /// versions were recorded.
    var version: VersionResource?
    var steps: [StepResource]?
    var links: [String: String]

    struct VersionResource: Encodable {
        var hash: String
        var short: String
        /// Each file's SHA-256, by its path in the project.
        var files: [String: String]
    }

    struct StepResource: Encodable {
        var id: String
        var processor: String
        var state: String
        var attempt: Int
        var reason: String
        var errorCode: String?
        var startedAt: Date?
        var finishedAt: Date?
        var outputs: [String: ExpressionValue]

        enum CodingKeys: String, CodingKey {
            case id, processor, state, attempt, reason, outputs
            case errorCode = "error_code"
            case startedAt = "started_at"
            case finishedAt = "finished_at"
        }
    }

    enum CodingKeys: String, CodingKey {
        case id, org, pipeline, state, reason, trigger, params, version, steps, links
        case logicalDate = "logical_date"
        case requestID = "request_id"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
        case resumeOf = "resume_of"
    }

    init(_ run: RunRecord, steps: [StepRunRecord]? = nil) {
        let redactor = SecretRedactor.shared
        id = run.id
        org = run.org
        pipeline = run.pipeline
        state = run.state.rawValue
        reason = redactor.redact(run.reason)
        trigger = run.trigger.rawValue
        logicalDate = run.logicalDate
        params = run.params.mapValues(redactor.redact)
        requestID = run.requestID
        createdAt = run.createdAt
        updatedAt = run.updatedAt
        resumeOf = run.resumeOf
        version = run.version.map { VersionResource(hash: $0.hash, short: $0.short, files: $0.files) }
        self.steps = steps?.map { step in
            StepResource(
                id: step.stepID, processor: step.processor, state: step.state.rawValue, attempt: step.attempt,
                reason: redactor.redact(step.reason), errorCode: step.errorCode, startedAt: step.startedAt,
                finishedAt: step.finishedAt,
                outputs: step.outputs.mapValues { value in
                    if case .string(let text) = value { return .string(redactor.redact(text)) }
                    return value
                })
        }
        links = [
            "self": "/v1/runs/\(run.id)", "cancel": "/v1/runs/\(run.id)/cancel",
            "pipeline_runs": "/v1/orgs/\(run.org)/runs?pipeline=\(run.pipeline)",
        ]
    }
}

/// A page of runs.
struct RunPage: Encodable {
    var runs: [RunResource]
    var nextCursor: String?

    enum CodingKeys: String, CodingKey {
        case runs
        case nextCursor = "next_cursor"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(runs, forKey: .runs)
        // Present and null on the last page, so clients can test it without a key check.
        try container.encode(nextCursor, forKey: .nextCursor)
    }
}
