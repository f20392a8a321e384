import Foundation
import Metrics
import Prometheus
import SluiceEngine
import SluiceModel
import SluiceStorage
import Synchronization

/// The server's metrics, through swift-metrics into a Prometheus registry of its own (no
/// global bootstrap, so tests can run several servers in one process):
///
/// - `sluice_runs_total{state}`: run transitions into each state (`pending` counts runs
///   created, the final states how they ended);
/// - `sluice_step_duration_seconds{processor,state}`: time from a step's first attempt to its
///   final state, as a histogram;
/// - `sluice_rows_ingested_total`: rows `ingest` steps wrote;
/// - `sluice_step_retries_total`: step attempts that failed transiently and were retried;
/// - `sluice_webhook_refusals_total{reason}`: refused webhook deliveries;
/// - `sluice_runs_created_total{trigger}`: runs created here, by what created them (`api`,
///   `webhook`, `schedule`);
/// - `sluice_scheduled_runs_deferred_total`: due scheduled runs (fire times) that waited for
///   `max_active_runs`, each counted once;
/// - `sluice_runs_abandoned_total`: runs the watchdog found without a heartbeat;
/// - `sluice_connections_refused_total{limit}`: connections closed as they were accepted,
///   over the server's limit (`total`) or the client's (`per_client`).
///
/// Two gauges say what this process's launcher holds now:
///
/// - `sluice_runs_executing`: runs executing here (at most `--max-executing-runs`);
/// - `sluice_runs_waiting`: runs created and waiting, pending, for one of those slots.
///
/// They count what this server process did, not runs started elsewhere (`sluice run`). One
/// gauge is read from the run store at each scrape instead, so it covers every process:
///
/// - `sluice_runs_in_store{state}`: the runs in the store in each state now.
public final class ServerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory

    static let stepBuckets: [Duration] = [
        .milliseconds(10), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
        .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(300), .seconds(900), .seconds(3600),
    ]

    /// The reasons a webhook delivery is refused, counted from zero.
    public static let webhookRefusalReasons = [
        "missing_header", "invalid_header", "unknown_hook", "body_too_large", "body_timeout", "stale_timestamp",
        "future_timestamp", "bad_signature", "invalid_payload", "invalid_pipeline", "replayed",
        "max_active_runs", "org_active_runs", "unavailable",
    ]

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets["sluice_step_duration_seconds"] = Self.stepBuckets
        self.factory = factory
        // Series that exist from the start, at zero, so dashboards and alerts see them.
        for state in Self.runStates {
            _ = Counter(label: "sluice_runs_total", dimensions: [("state", state.rawValue)], factory: factory)
        }
        _ = Counter(label: "sluice_rows_ingested_total", factory: factory)
        _ = Counter(label: "sluice_step_retries_total", factory: factory)
        for trigger in [RunTrigger.api, .webhook, .schedule] {
            _ = Counter(label: "sluice_runs_created_total", dimensions: [("trigger", trigger.rawValue)], factory: factory)
        }
        _ = Counter(label: "sluice_scheduled_runs_deferred_total", factory: factory)
        _ = Counter(label: "sluice_scheduled_runs_skipped_total", factory: factory)
        _ = Counter(label: "sluice_runs_abandoned_total", factory: factory)
        for reason in Self.webhookRefusalReasons {
            _ = Counter(label: "sluice_webhook_refusals_total", dimensions: [("reason", reason)], factory: factory)
        }
        recordLauncher(executing: 0, waiting: 0)
        for limit in [ConnectionLimits.Refusal.total, .perClient] {
            _ = Counter(label: "sluice_connections_refused_total", dimensions: [("limit", limit.rawValue)], factory: factory)
        }
    }

    /// Sets `sluice_runs_in_store{state}` to the store's counts, every state a run can end in or be in
    /// included (at 0 when no run is in it).
    public func recordRunCounts(_ counts: [RunState: Int]) {
        for state in Self.runStates {
            Gauge(label: "sluice_runs_in_store", dimensions: [("state", state.rawValue)], factory: factory).record(counts[state] ?? 0)
        }
    }

    /// The states a run (not a step) is in: pending, running, and how it ended.
    static let runStates: [RunState] = [.pending, .running, .succeeded, .failed, .cancelled]

    /// The Prometheus text exposition.
    public func exposition() -> [UInt8] {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }

    /// A run was created (it is pending); the executor's transitions count the rest.
    func runCreated(trigger: RunTrigger) {
        Counter(label: "sluice_runs_total", dimensions: [("state", RunState.pending.rawValue)], factory: factory).increment()
        Counter(label: "sluice_runs_created_total", dimensions: [("trigger", trigger.rawValue)], factory: factory).increment()
    }

    /// A run ended in `state` without the executor recording it (refused at shutdown).
    func runEnded(_ state: RunState) {
        Counter(label: "sluice_runs_total", dimensions: [("state", state.rawValue)], factory: factory).increment()
    }

    /// A due scheduled run waits for `max_active_runs` (counted once per fire time).
    func scheduledRunDeferred() {
        Counter(label: "sluice_scheduled_runs_deferred_total", factory: factory).increment()
    }

    /// Fire times that fell out of the catch-up window before their run could be created.
    func scheduledRunsSkipped(_ count: Int) {
        Counter(label: "sluice_scheduled_runs_skipped_total", factory: factory).increment(by: Int64(count))
    }

    func runAbandoned() {
        Counter(label: "sluice_runs_abandoned_total", factory: factory).increment()
    }

    /// How many runs execute in this process now, and how many wait for a slot.
    func recordLauncher(executing: Int, waiting: Int) {
        Gauge(label: "sluice_runs_executing", factory: factory).record(executing)
        Gauge(label: "sluice_runs_waiting", factory: factory).record(waiting)
    }

    /// A connection was closed as it was accepted: it would have passed `limit`.
    func connectionRefused(limit: ConnectionLimits.Refusal) {
        Counter(label: "sluice_connections_refused_total", dimensions: [("limit", limit.rawValue)], factory: factory).increment()
    }

    public func webhookRefused(reason: String) {
        Counter(label: "sluice_webhook_refusals_total", dimensions: [("reason", reason)], factory: factory).increment()
    }

    /// An executor observer for one run of `plan`: counts its transitions, times its steps, and
    /// adds the rows of each step whose spec names an `ingestedRowsOutput`.
    func observer(for plan: PipelinePlan, processors specs: ProcessorRegistry) -> @Sendable (RunEvent) -> Void {
        var processors: [String: String] = [:]
        var ingestedRows: [String: String] = [:]
        for step in plan.definition.steps + plan.definition.onFailure {
            processors[step.id.value] = step.uses.value
            if let output = specs[step.uses.value]?.ingestedRowsOutput { ingestedRows[step.id.value] = output }
        }
        let started = Mutex<[String: Date]>([:])
        let factory = self.factory
        return { [processors, ingestedRows] event in
            let transition = event.transition
            guard let stepID = transition.stepID else {
                Counter(label: "sluice_runs_total", dimensions: [("state", transition.state.rawValue)], factory: factory).increment()
                return
            }
            let processor = processors[stepID] ?? "unknown"
            switch transition.state {
            case .running:
                started.withLock { if $0[stepID] == nil { $0[stepID] = transition.at } }
            case .retrying:
                Counter(label: "sluice_step_retries_total", factory: factory).increment()
            case .succeeded, .failed, .deadLettered, .cancelled:
                if let start = started.withLock({ $0.removeValue(forKey: stepID) }) {
                    let seconds = max(0, transition.at.timeIntervalSince(start))
                    Metrics.Timer(
                        label: "sluice_step_duration_seconds", dimensions: [("processor", processor), ("state", transition.state.rawValue)],
                        factory: factory
                    ).recordNanoseconds(Int64(seconds * 1e9))
                }
                if transition.state == .succeeded, let output = ingestedRows[stepID], case .number(let rows)? = event.outputs?[output], rows > 0 {
                    Counter(label: "sluice_rows_ingested_total", factory: factory).increment(by: Int64(rows))
                }
            case .pending, .skipped, .timedOut:
                break
            }
        }
    }
}
