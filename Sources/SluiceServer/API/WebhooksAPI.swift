import Foundation
import HTTPTypes
import Hummingbird
import Logging
import SluiceEngine
import SluiceModel
import SluiceStorage

/// `POST /v1/hooks/{org}/{pipeline}`: a Standard Webhooks delivery starts a run of the
/// pipeline, its params mapped from the payload. No token: the signature is the credential.
/// Checked in this order, each refusal counted (`sluice_webhook_refusals_total{reason}`) and
/// audited (`sluice hooks audit`): the three headers (400), the hook (404), the body size
/// (413) and its arrival (408), the timestamp (401, older than 5 minutes or more than 1 minute
/// ahead), the signature (401), then the message id, which may start one run only (409 after
/// that, across restarts: it is the run's trigger key), the payload (400/422), the pipeline
/// file (404) and its lint (422), the server's state (503), the mapped params (422), and the
/// limits: `max_active_runs` and the org's (429, nothing created, so a redelivery may start
/// it). docs/api.md#webhooks has the same list.
///
/// `POST /v1/hooks/{org}/{pipeline}/verify` does the same checks up to the signature and
/// starts nothing: for senders testing their setup (and for measuring verification).
struct WebhooksAPI: Sendable {
    let server: APIServer

    static let idHeader = HTTPField.Name("webhook-id")!
    static let timestampHeader = HTTPField.Name("webhook-timestamp")!
    static let signatureHeader = HTTPField.Name("webhook-signature")!

    /// A refusal: the reason it is counted and audited under, and the answer.
    struct Refusal: Error {
        var reason: String
        var error: APIError
    }

    /// What a verified delivery carries.
    struct Delivery {
        var org: String
        var pipeline: String
        var messageID: String
        var body: Data
        var hook: WebhookHooks.Hook
    }

    func deliver(_ request: Request, context: APIRequestContext) async throws -> Response {
        try await audited(request, context) { messageID in
            let delivery = try await verify(request, context, messageID: &messageID)
            return try await start(delivery, context)
        }
    }

    func verifyOnly(_ request: Request, context: APIRequestContext) async throws -> Response {
        try await audited(request, context, auditAccepted: false) { messageID in
            let delivery = try await verify(request, context, messageID: &messageID)
            return (JSONResponse.make(["verified": "true", "message_id": delivery.messageID]), nil)
        }
    }

    // MARK: Checks

    private func verify(_ request: Request, _ context: APIRequestContext, messageID: inout String?) async throws -> Delivery {
        let org = try context.parameters.require("org")
        let pipeline = try context.parameters.require("pipeline")
        guard let id = request.headers[Self.idHeader], let timestamp = request.headers[Self.timestampHeader],
            let signature = request.headers[Self.signatureHeader]
        else {
            let missing = [Self.idHeader, Self.timestampHeader, Self.signatureHeader].filter { request.headers[$0] == nil }
            throw Refusal(
                reason: "missing_header",
                error: .badRequest(
                    "missing_header",
                    "a Standard Webhooks delivery needs the \(missing.map(\.rawName).joined(separator: ", ")) header\(missing.count == 1 ? "" : "s")")
            )
        }
        guard (1...256).contains(id.utf8.count), id.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw Refusal(reason: "invalid_header", error: .badRequest("invalid_header", "webhook-id must be 1 to 256 visible ASCII characters"))
        }
        messageID = id
        guard timestamp.utf8.count <= 12, timestamp.utf8.allSatisfy({ (0x30...0x39).contains($0) }), let seconds = Int64(timestamp) else {
            throw Refusal(reason: "invalid_header", error: .badRequest("invalid_header", "webhook-timestamp must be whole seconds since 1970 (UTC)"))
        }
        let hook: WebhookHooks.Hook
        let now = server.configuration.now()
        switch try await server.hooks.hook(org: org, pipeline: pipeline, now: now) {
        case .found(let found):
            hook = found
        case .notFound:
            throw Refusal(
                reason: "unknown_hook",
                error: .notFound(
                    "hook_not_found",
                    "no webhook for pipeline \(shown(pipeline.prefix(64))) in org \(shown(org.prefix(64))); `sluice hooks create ORG PIPELINE` makes one"
                ))
        case .unavailable(let why, let log):
            if log { context.logger.error("webhook refused: \(SecretRedactor.shared.redact(why))") }
            throw Refusal(
                reason: "unavailable",
                error: APIError(
                    .serviceUnavailable, "hook_unavailable",
                    "the hook can't verify deliveries right now; its owner has been told (see the server log)"))
        }
        let body: Data
        do {
            body = try await server.readBody(request, checkType: false)
        } catch let error as APIError where error.status == .contentTooLarge {
            throw Refusal(reason: "body_too_large", error: error)
        } catch let error as APIError where error.status == .requestTimeout {
            throw Refusal(reason: "body_timeout", error: error)
        } catch let error as APIError {
            throw Refusal(reason: "invalid_payload", error: error)
        }
        let age = WebhookSignature.age(ofTimestamp: seconds, at: now)
        if age > WebhookSignature.maximumAge {
            throw Refusal(
                reason: "stale_timestamp",
                error: .unauthenticated(
                    "webhook-timestamp is \(age) s old; deliveries older than \(WebhookSignature.maximumAge) s are refused (a replay, or a clock that is wrong)"
                ))
        }
        if -age > WebhookSignature.maximumSkewAhead {
            throw Refusal(
                reason: "future_timestamp",
                error: .unauthenticated(
                    "webhook-timestamp is \(-age) s in the future; at most \(WebhookSignature.maximumSkewAhead) s ahead is accepted (check the sender's clock)"
                ))
        }
        let signatures = WebhookSignature.signatures(in: signature)
        guard WebhookSignature.isValid(id: id, timestamp: timestamp, body: body, signatures: signatures, keys: hook.keys) else {
            throw Refusal(
                reason: "bad_signature",
                error: .unauthenticated(
                    signatures.isEmpty
                        ? "webhook-signature has no v1,<base64 HMAC-SHA256> entry"
                        : "no signature in webhook-signature matches the hook's secret (HMAC-SHA256 of webhook-id.webhook-timestamp.body)"))
        }
        return Delivery(org: org, pipeline: pipeline, messageID: id, body: body, hook: hook)
    }

    // MARK: Starting the run

    private func start(_ delivery: Delivery, _ context: APIRequestContext) async throws -> (Response, String?) {
        // A message delivered before is a replay whatever has changed since (the payload's
        // mapping, the pipeline file), so this is the first check after the signature.
        let triggerKey = "webhook:\(delivery.messageID)"
        if let earlier = try await server.store.run(pipeline: delivery.pipeline, org: delivery.org, triggerKey: triggerKey) {
            throw replayed(delivery, run: earlier)
        }
        let payload: [String: JSONValue]
        do {
            payload = try JSONBody.object(from: delivery.body)
        } catch {
            throw Refusal(reason: "invalid_payload", error: error)
        }
        let mapped: (params: [String: String], logicalDate: String?)
        do {
            mapped = try delivery.hook.mapping.apply(to: payload)
        } catch {
            throw Refusal(reason: "invalid_payload", error: error)
        }
        let pipeline: LintedPipeline
        do {
            pipeline = try await server.starter.pipeline(delivery.pipeline)
        } catch {
            throw refused(error, delivery)
        }
        // The message id is the run's trigger key: the unique index makes a second delivery of
        // it (now, concurrently, or after a restart) find the first run instead of making one.
        let started: RunStarter.Started
        do {
            started = try await server.starter.start(
                RunStarter.Request(
                    pipeline: pipeline, org: delivery.org, trigger: .webhook, logicalDate: mapped.logicalDate, params: mapped.params,
                    env: server.configuration.environment, triggerKey: triggerKey, requestID: context.requestID,
                    orgActiveLimit: server.configuration.maxActiveRunsPerOrg))
        } catch let refusal as RunRefusal {
            throw refused(refusal, delivery)
        }
        let run = started.run
        // Shutdown began after the starter looked: the run is recorded cancelled, not started.
        guard await server.runner.launch(started) else {
            throw Refusal(
                reason: "unavailable",
                error: APIError(
                    .serviceUnavailable, "shutting_down",
                    "the server is shutting down; run \(run.id) was recorded cancelled; deliver again shortly"))
        }
        let response = JSONResponse.make(["accepted": "true", "message_id": delivery.messageID, "run_id": run.id], status: .accepted)
        return (response, run.id)
    }

    /// A start the run starter refused, as the sender hears it and the audit records it.
    private func refused(_ refusal: RunRefusal, _ delivery: Delivery) -> Refusal {
        switch refusal {
        case .pipelineNotFound:
            Refusal(reason: "unknown_hook", error: .notFound("pipeline_not_found", "the project has no pipeline '\(delivery.pipeline)'"))
        case .pipelineInvalid(let file, _):
            Refusal(
                reason: "invalid_pipeline",
                error: .unprocessable(
                    "pipeline_invalid",
                    "pipeline '\(delivery.pipeline)' does not lint; its owner must fix it (`sluice lint \(file)`)"))
        case .shuttingDown:
            Refusal(
                reason: "unavailable", error: APIError(.serviceUnavailable, "shutting_down", "the server is shutting down; deliver again shortly"))
        case .keysUnavailable:
            Refusal(
                reason: "unavailable",
                error: APIError(
                    .serviceUnavailable, "keys_unavailable",
                    "pipeline '\(delivery.pipeline)' decrypts credentials, and this server has no keys"))
        case .invalidParam(let problem):
            Refusal(
                reason: "invalid_payload",
                error: .unprocessable(
                    "invalid_params",
                    problem.message { "map it from the payload with --param \($0)=…" }))
        case .limited(let limit) where limit.scope == .org:
            Refusal(reason: "org_active_runs", error: .orgRunsLimited(org: delivery.org, active: limit.active))
        case .limited(let limit):
            // Nothing is created, so the sender's redelivery of this message id can start it.
            Refusal(reason: "max_active_runs", error: .activeRunsLimited(pipeline: delivery.pipeline, org: delivery.org, active: limit.active))
        case .duplicate(let earlier):
            replayed(delivery, run: earlier)
        }
    }

    private func replayed(_ delivery: Delivery, run: RunRecord) -> Refusal {
        Refusal(
            reason: "replayed",
            error: .conflict(
                "replayed",
                "message \(shown(delivery.messageID.prefix(64))) was delivered before (run \(run.id)); it is not run again"))
    }

    // MARK: Counting and auditing

    /// Runs `body`; audits what came of it (refusals always, acceptances when `auditAccepted`)
    /// and counts refusals.
    private func audited(
        _ request: Request, _ context: APIRequestContext, auditAccepted: Bool = true,
        _ body: (inout String?) async throws -> (Response, String?)
    ) async throws -> Response {
        let org = context.parameters.get("org") ?? "?"
        let pipeline = context.parameters.get("pipeline") ?? "?"
        var messageID: String?
        do {
            let (response, runID) = try await body(&messageID)
            if auditAccepted {
                await audit(
                    WebhookAuditRecord(
                        org: org, pipeline: pipeline, messageID: messageID, outcome: .accepted, reason: "accepted",
                        status: Int(response.status.code), detail: runID.map { "started run \($0)" } ?? "verified",
                        requestID: context.requestID, runID: runID, at: Date()), context)
            }
            return response
        } catch let refusal as Refusal {
            server.metrics.webhookRefused(reason: refusal.reason)
            context.logger.notice("webhook refused: \(refusal.reason)", metadata: ["org": "\(org.prefix(64))", "pipeline": "\(pipeline.prefix(64))"])
            await audit(
                WebhookAuditRecord(
                    org: org, pipeline: pipeline, messageID: messageID, outcome: .refused, reason: refusal.reason,
                    status: Int(refusal.error.status.code), detail: SecretRedactor.shared.redact(refusal.error.message),
                    requestID: context.requestID, at: Date()), context)
            await server.refusalPruning.refusalAudited()
            throw refusal.error
        }
    }

    private func audit(_ record: WebhookAuditRecord, _ context: APIRequestContext) async {
        do {
            try await server.webhookAudit.appendWebhookAudit(record)
        } catch {
            context.logger.error("could not write the webhook audit record (\(record.reason)): \(SecretRedactor.shared.redact("\(error)"))")
        }
    }
}
