import Foundation
import HTTPTypes
import Hummingbird
import SluiceEngine
import SluiceModel
import SluiceStorage

/// `POST /v1/orgs/{org}/pipelines/{pipeline}/runs`, `GET /v1/orgs/{org}/runs`,
/// `GET /v1/runs/{run}` and `POST /v1/runs/{run}/cancel`.
struct RunsAPI: Sendable {
    let server: APIServer

    static let idempotencyHeader = HTTPField.Name("Idempotency-Key")!
    static let replayedHeader = HTTPField.Name("Idempotent-Replayed")!

    // MARK: Trigger

    func trigger(_ request: Request, context: APIRequestContext) async throws -> Response {
        let org = try context.requireOrg(try context.parameters.require("org"))
        let pipelineID = try context.parameters.require("pipeline")
        let pipeline: LintedPipeline
        do {
            pipeline = try await server.starter.pipeline(pipelineID)
        } catch {
            throw Self.pipelineNotFound(pipelineID, org: org)
        }
        let key = try Self.idempotencyKey(request.headers)
        let body = try TriggerBody.parse(try await server.readBody(request))
        let started: RunStarter.Started
        do {
            started = try await server.starter.start(
                RunStarter.Request(
                    pipeline: pipeline, org: org, trigger: .api, logicalDate: body.logicalDate, params: body.params,
                    env: server.configuration.environment, triggerKey: key.map { "api:\($0)" }, requestID: context.requestID,
                    orgActiveLimit: server.configuration.maxActiveRunsPerOrg))
        } catch let refusal as RunRefusal {
            return try refused(refusal, pipeline: pipelineID, org: org, body: body)
        }
        let run = started.run
        context.logger.info("run created", metadata: ["run_id": "\(run.id)", "pipeline": "\(pipelineID)"])
        // Shutdown began after the starter looked: the run is recorded cancelled, not started.
        guard await server.runner.launch(started) else {
            throw APIError(
                .serviceUnavailable, "shutting_down",
                "the server is shutting down and starts no runs; run \(run.id) was recorded cancelled; try again shortly")
        }
        var response = JSONResponse.make(RunResource(run), status: .accepted)
        response.headers[.location] = "/v1/runs/\(run.id)"
        return response
    }

    /// The answer to a trigger the run starter refused: the run a repeated request made (a
    /// request repeated with its key gets its run back, whatever has changed since), or an error.
    private func refused(_ refusal: RunRefusal, pipeline: String, org: String, body: TriggerBody) throws -> Response {
        switch refusal {
        case .duplicate(let run):
            return try replay(run, body: body)
        case .pipelineNotFound:
            throw Self.pipelineNotFound(pipeline, org: org)
        case .pipelineInvalid(let file, _):
            let errors = refusal.errors
            throw APIError.unprocessable(
                "pipeline_invalid",
                "pipeline '\(pipeline)' does not lint (\(errors.count) error\(errors.count == 1 ? "" : "s")); the first: \(errors.first?.description ?? "?"); run `sluice lint \(file)`"
            )
        case .shuttingDown:
            throw APIError(.serviceUnavailable, "shutting_down", "the server is shutting down and starts no runs; try again shortly")
        case .keysUnavailable:
            throw APIError(
                .serviceUnavailable, "keys_unavailable",
                "pipeline '\(pipeline)' decrypts credentials, and this server has no keys (start it with SLUICE_KEYRING or the passphrase variables set)"
            )
        case .invalidParam(let problem):
            // The params are checked before the run is created, so bad ones are a 422 rather than a failed run.
            throw APIError.unprocessable("invalid_params", problem.message { "give it in params as \($0)=…" })
        case .limited(let limit) where limit.scope == .org:
            throw APIError.orgRunsLimited(org: org, active: limit.active)
        case .limited(let limit):
            throw APIError.activeRunsLimited(pipeline: pipeline, org: org, active: limit.active)
        }
    }

    private static func pipelineNotFound(_ pipeline: String, org: String) -> APIError {
        .notFound("pipeline_not_found", "org '\(org)' has no pipeline \(shown(pipeline.prefix(64))); GET /v1/orgs/\(org)/pipelines lists them")
    }

    /// The answer to a request whose Idempotency-Key made `run` before: the same request gets
    /// the run as it is now (200); another request under the key is a mistake (409).
    private func replay(_ run: RunRecord, body: TriggerBody) throws -> Response {
        if run.params != body.params || (body.logicalDate != nil && body.logicalDate != run.logicalDate) {
            throw APIError.conflict(
                "idempotency_key_reused",
                "Idempotency-Key was used for run \(run.id) with other params or logical_date; use a new key for a different request")
        }
        var response = JSONResponse.make(RunResource(run), status: .ok)
        response.headers[.location] = "/v1/runs/\(run.id)"
        response.headers[Self.replayedHeader] = "true"
        return response
    }

    /// `Idempotency-Key`: 1 to 255 visible ASCII characters, or absent.
    static func idempotencyKey(_ headers: HTTPFields) throws(APIError) -> String? {
        guard let key = headers[idempotencyHeader] else { return nil }
        guard (1...255).contains(key.utf8.count), key.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw APIError.badRequest("invalid_idempotency_key", "Idempotency-Key must be 1 to 255 visible ASCII characters (no spaces)")
        }
        return key
    }

    // MARK: Read

    func list(_ request: Request, context: APIRequestContext) async throws -> Response {
        let org = try context.requireOrg(try context.parameters.require("org"))
        let query = request.uri.queryParameters
        var limit = 50
        if let text = query.get("limit") {
            guard let value = Int(text), (1...200).contains(value) else {
                throw APIError.badRequest("invalid_limit", "limit must be a whole number from 1 to 200")
            }
            limit = value
        }
        let pipeline = query.get("pipeline")
        if let pipeline, !Identifier.isValid(pipeline) {
            throw APIError.badRequest("invalid_pipeline", "pipeline must be a pipeline id (letters, digits, _)")
        }
        var cursor: RunCursor?
        if let text = query.get("cursor") {
            guard let parsed = RunCursor(token: text) else {
                throw APIError.badRequest("invalid_cursor", "cursor is not one this API handed out; use next_cursor from the previous page")
            }
            cursor = parsed
        }
        let runs = try await server.store.runs(pipeline: pipeline, org: org, limit: limit + 1, after: cursor)
        let page = Array(runs.prefix(limit))
        let next = runs.count > limit ? page.last.map { RunCursor(after: $0).token } : nil
        return JSONResponse.make(RunPage(runs: page.map { RunResource($0) }, nextCursor: next))
    }

    func get(_ request: Request, context: APIRequestContext) async throws -> Response {
        let (org, id) = try runPath(context)
        guard let (run, steps) = try await server.store.runWithSteps(id, org: org) else { throw runNotFound(id, org: org) }
        return JSONResponse.make(RunResource(run, steps: steps))
    }

    // MARK: Cancel

    func cancel(_ request: Request, context: APIRequestContext) async throws -> Response {
        let run = try await ownRun(context)
        if run.state.isFinal {
            throw APIError.conflict("run_finished", "run \(run.id) has ended (\(run.state.rawValue)); there is nothing to cancel")
        }
        guard await server.launcher.cancel(run.id, reason: "cancelled through the API (request \(context.requestID))") else {
            throw APIError.conflict(
                "not_cancellable",
                "run \(run.id) is not executing in this server (it was started by \(run.trigger.rawValue)); cancel it where it runs")
        }
        context.logger.notice("run cancel requested", metadata: ["run_id": "\(run.id)"])
        return JSONResponse.make(RunResource(try await server.store.run(run.id) ?? run), status: .accepted)
    }

    /// The run named in the path if it belongs to the token's org. Another org's run is
    /// "not found" exactly like a run that does not exist, so ids can't be probed.
    private func ownRun(_ context: APIRequestContext) async throws -> RunRecord {
        let (org, id) = try runPath(context)
        guard let run = try await server.store.run(id), run.org == org else { throw runNotFound(id, org: org) }
        return run
    }

    /// The token's org and the run id in the path (an id longer than any run id is not found).
    private func runPath(_ context: APIRequestContext) throws -> (org: String, id: String) {
        let org = try context.tokenOrg()
        let id = try context.parameters.require("run")
        guard id.utf8.count <= 64 else { throw runNotFound(id, org: org) }
        return (org, id)
    }

    private func runNotFound(_ id: String, org: String) -> APIError {
        APIError.notFound("run_not_found", "no run \(shown(id.prefix(64))) in org '\(org)'")
    }
}
