import Foundation
import SluiceModel
import SluiceStorage
import SluiceTestSupport
import Testing

@testable import SluiceEngine
@testable import SluiceProviders

struct RetryAfterTests {
    let now = Date(timeIntervalSince1970: 784_111_777)  // Sun, 06 Nov 1994 08:49:37 GMT

    @Test func secondsAreAWait() {
        #expect(RetryAfter.wait("120", now: now) == .seconds(120))
        #expect(RetryAfter.wait(" 1 ", now: now) == .seconds(1))
        #expect(RetryAfter.wait("0.5", now: now) == .milliseconds(500))
    }

    @Test func httpDatesInAllThreeFormsAreAWaitUntilThen() {
        #expect(RetryAfter.wait("Sun, 06 Nov 1994 08:50:07 GMT", now: now) == .seconds(30))
        #expect(RetryAfter.wait("Sunday, 06-Nov-94 08:50:07 GMT", now: now) == .seconds(30))
        #expect(RetryAfter.wait("Sun Nov  6 08:50:07 1994", now: now) == .seconds(30))
    }

    @Test func absentPastZeroOrUnreadableMeansNoWait() {
        #expect(RetryAfter.wait(nil, now: now) == nil)
        #expect(RetryAfter.wait("", now: now) == nil)
        #expect(RetryAfter.wait("0", now: now) == nil)
        #expect(RetryAfter.wait("-5", now: now) == nil)
        #expect(RetryAfter.wait("Sun, 06 Nov 1994 08:49:00 GMT", now: now) == nil)
        #expect(RetryAfter.wait("soon", now: now) == nil)
    }
}

struct ValidatorSettingsTests {
    func settings(_ yaml: String, _ spec: ProcessorSpec) throws -> ValidatorSettings {
        guard case .success(let node?) = YAMLLoader().load(Data(yaml.utf8), file: "pipelines/x.yml") else { throw CancellationError() }
        let step = StepContext(
            runID: "r", pipeline: "x", org: "acme", stepID: "s", attempt: 1, config: node,
            logger: LogCapture().logger, project: nil)
        return ValidatorSettings(step, spec)
    }

    @Test func theDefaultRequestTimeoutIsTenSecondsAndLivesInOnePlace() throws {
        #expect(ProcessorSpec.defaultRequestTimeout == .seconds(10))
        for spec in [ProcessorSpec.validateOpenAI, .validateAnthropic, .validateGCP, .validateHTTP] {
            #expect(spec.field("request_timeout")?.requirement == .defaultValue("10s"), "\(spec.name)")
            #expect(try settings("{ api_key: x }", spec).timeout() == .seconds(10))
        }
        #expect(try settings("{ request_timeout: 1500ms }", .validateOpenAI).timeout() == .milliseconds(1500))
    }

    @Test func aBadTimeoutIsInvalidConfigAtItsPlace() throws {
        for (yaml, problem) in [
            ("{ api_key: x,\n  request_timeout: soon }", "'request_timeout': 'soon' is not a duration"),
            ("{ api_key: x,\n  request_timeout: 0s }", "'request_timeout': '0s' is zero"),
        ] {
            do {
                let timeout = try settings(yaml, .validateOpenAI).timeout()
                Issue.record("\(yaml) gave \(timeout)")
            } catch let error as StepFailure {
                #expect(error.code == "invalid_config")
                #expect(error.message.hasPrefix(problem), "\(error.message)")
                #expect(error.location?.line == 2)
            }
        }
    }

    @Test func fieldsTheStepLeavesOutTakeTheSpecDefaults() throws {
        let anthropic = try settings("{ api_key: x }", .validateAnthropic)
        #expect(anthropic.optionalText("base_url") == "https://api.anthropic.com")
        #expect(anthropic.optionalText("api_version") == "2023-06-01")
        #expect(anthropic.optionalText("check") == "models")
        #expect(
            try settings("{ api_key: x }", .validateOpenAI).url("base_url", appending: "/v1/models").absoluteString
                == "https://api.openai.com/v1/models")
        #expect(try settings("{ service_account_json: x }", .validateGCP).texts("scopes") == ["https://www.googleapis.com/auth/cloud-platform"])
        #expect(try settings("{ secret: x, url: \"https://a.example\" }", .validateHTTP).texts("expected_status") == ["200"])
        #expect(try settings("{ service_account_json: x }", .validateGCP).optionalText("token_url") == nil)
    }
}

struct ValidatorErrorCodeTests {
    /// The codes are an interface: renaming one breaks users' alerts. This list changes only by
    /// adding to it.
    @Test func theCodesAreStable() {
        #expect(
            ValidatorErrorCode.allCases.map(\.rawValue) == [
                "credential_invalid", "credential_expired", "credential_malformed", "rate_limited",
                "provider_unavailable", "provider_bad_response", "provider_unexpected_status",
            ])
        #expect(ValidatorOutcome.allCases.map(\.rawValue) == ["valid", "invalid", "rate_limited", "unavailable", "partially_valid", "expired"])
        #expect(
            ValidatorErrorCode.allCases.filter(\.isTransient).map(\.rawValue) == ["rate_limited", "provider_unavailable", "provider_bad_response"])
    }

    /// docs/pipeline-format.md has a row for every code and every status.
    @Test func theDocsListEveryCode() throws {
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/pipeline-format.md")
        let text = try String(contentsOf: docs, encoding: .utf8)
        let section = try #require(text.components(separatedBy: "## Validator outcomes and error codes").dropFirst().first)
        for code in ValidatorErrorCode.allCases.map(\.rawValue) + ["invalid_config"] {
            #expect(section.contains("| `\(code)` |"), "\(code) is not in the docs table")
        }
        for status in ValidatorOutcome.allCases.map(\.rawValue) {
            #expect(section.contains("`\(status)`"), "\(status) is not in the docs")
        }
    }

    @Test func theStandardCatalogRunsTheBuiltInsAndTheValidators() {
        for name in [
            "ingest", "merge_dedupe", "aggregate", "validate_data", "sql",
            "validate_openai", "validate_anthropic", "validate_gcp", "validate_http",
        ] {
            #expect(ProcessorEnvironment.standard[name] != nil, "\(name)")
        }
    }

    /// One list: every processor spec declared in SluiceModel/Specs/Processors has a run type
    /// in the standard environment, and every run type there has its spec (the same value).
    @Test func everySpecHasARunnableProcessorAndEveryProcessorASpec() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Sources/SluiceModel/Specs/Processors").standardizedFileURL
        var declared: [String] = []
        for file in try FileManager.default.contentsOfDirectory(atPath: folder.path) where file.hasSuffix(".swift") {
            let text = try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)
            declared += text.matches(of: /static let \w+ = ProcessorSpec\(\s*name: "([a-z0-9_]+)"/).map { String($0.output.1) }
        }
        #expect(declared.count >= 11, "found the spec declarations: \(declared)")
        let runnable = ProcessorEnvironment.standard.processors.map(\.spec.name)
        #expect(
            Set(runnable) == Set(declared),
            "specs without a run type: \(Set(declared).subtracting(runnable)); run types without a spec: \(Set(runnable).subtracting(declared))")
        #expect(runnable.count == Set(runnable).count, "a processor is registered twice: \(runnable)")
        #expect(ProcessorEnvironment.standard.registry.names == runnable, "lint and docs read the same environment the runs use")
    }
}
