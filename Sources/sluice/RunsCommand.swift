import ArgumentParser
import Foundation
import SluiceEngine
import SluiceModel
import SluiceRuntime
import SluiceStorage

extension Sluice {
    struct Runs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show run history: what ran, when, with which input, and why it failed.",
            subcommands: [List.self, Show.self, Prune.self], defaultSubcommand: List.self)

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List recent runs, newest first.")

            @Option(help: "Only runs of this pipeline.")
            var pipeline: String?

            @Option(help: "Only runs of this org.")
            var org: String?

            @Option(help: "How many runs to show.")
            var limit: Int = 20

            @OptionGroup var project: ProjectOptions

            func run() async throws {
                let store = try await openProject("runs", root: project.root).runStore
                let runs = try await store.runs(pipeline: pipeline, org: org, limit: max(1, limit))
                if runs.isEmpty {
                    print("no runs yet")
                    return
                }
                let formatter = ISO8601DateFormatter()
                let rows = runs.map {
                    [$0.id, $0.pipeline, $0.org, $0.logicalDate, $0.state.rawValue, formatter.string(from: $0.createdAt), $0.reason]
                }
                print(TextTable.render(header: ["run", "pipeline", "org", "logical date", "state", "created", "reason"], rows: rows))
            }
        }

        struct Prune: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Remove the staging failed runs keep for a resume, once unused for a while.",
                discussion: """
                    Every command does this with the retention SLUICE_STAGING_RETENTION (7 days by \
                    default); this command does it now, with the retention you give. A pruned run \
                    can no longer be resumed. Staging of pending or running runs is never removed.
                    """)

            @Option(help: "Remove staging not written for this long (a duration: 0s, 12h, 3d).")
            var olderThan: String?

            @OptionGroup var project: ProjectOptions

            func run() async throws {
                let chosen: Duration?
                do {
                    switch olderThan?.trimmingCharacters(in: .whitespaces) {
                    case nil: chosen = nil
                    case "0", "0s": chosen = .zero
                    case let text?: chosen = try DurationText.parse(text)
                    }
                } catch {
                    writeError("sluice runs prune: --older-than: \(error)")
                    throw ExitCode(2)
                }
                let services = try await openProject("runs", root: project.root)
                let keep = chosen ?? services.stagingRetention
                let removed = try await StagingRetention.prune(store: services.runStore, warehouse: services.warehouse, keep: keep)
                if removed.isEmpty {
                    print("nothing to remove")
                    return
                }
                let rows = removed.map {
                    [$0.staging.org, $0.staging.runID, ByteCountFormatter.string(fromByteCount: $0.staging.bytes, countStyle: .file), $0.reason]
                }
                print(TextTable.render(header: ["org", "run", "size", "why"], rows: rows))
                let total = removed.reduce(Int64(0)) { $0 + $1.staging.bytes }
                print(
                    "removed \(removed.count) staging \(removed.count == 1 ? "database" : "databases"), \(ByteCountFormatter.string(fromByteCount: total, countStyle: .file))"
                )
            }
        }

        struct Show: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Show one run: its steps, outputs, transitions, data tests and quarantined rows.")

            @Argument(help: "The run id.")
            var runID: String

            @Option(help: "text, or json: the run with its steps, version (every file's hash) and plan.")
            var format: RunShowFormat = .text

            @OptionGroup var project: ProjectOptions

            func run() async throws {
                let store = try await openProject("runs", root: project.root).runStore
                guard let record = try await store.run(runID) else {
                    writeError("sluice runs show: no run '\(runID)'")
                    throw ExitCode(1)
                }
                switch format {
                case .text: print(try await RunReport.render(record, store: store, detailed: true))
                case .json: print(try await RunReport.json(record, store: store))
                }
            }
        }
    }
}

/// How `sluice runs show` prints a run.
enum RunShowFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// The text `sluice run` and `sluice runs show` print for a run.
enum RunReport {
    /// The run's version, as `sluice runs show` prints it: the short hash, and with `files`
    /// each file's.
    static func version(_ run: RunRecord, files: Bool) -> [String] {
        guard let version = run.version else {
            return ["version: unknown (the run was stored before runs recorded their pipeline's version)"]
        }
        let count = version.files.count
        var lines = ["version: \(version.short) (\(count) file\(count == 1 ? "" : "s"))"]
        if files {
            lines += version.files.keys.sorted().map { "  \(version.files[$0]!.prefix(12))  \($0)" }
        }
        return lines
    }

    /// The run as JSON: its fields, its version with every file's hash (null when unknown),
    /// its plan (null for runs stored before plans were), its steps and transitions.
    static func json(_ run: RunRecord, store: any RunStore) async throws -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        func date(_ value: Date?) -> Any { value.map(formatter.string(from:)) ?? NSNull() }
        let steps = try await store.steps(of: run.id).map { step -> [String: Any] in
            [
                "id": step.stepID, "processor": step.processor, "state": step.state.rawValue, "attempt": step.attempt,
                "reason": step.reason, "error_code": step.errorCode ?? NSNull(), "started_at": date(step.startedAt),
                "finished_at": date(step.finishedAt),
                "outputs": step.outputs.mapValues { value -> Any in
                    switch value {
                    case .string(let text): text
                    case .number(let number): number
                    case .bool(let flag): flag
                    case .null: NSNull()
                    }
                },
            ]
        }
        let transitions = try await store.transitions(of: run.id).map { transition -> [String: Any] in
            [
                "step": transition.stepID ?? NSNull(), "attempt": transition.attempt, "state": transition.state.rawValue,
                "reason": transition.reason, "at": formatter.string(from: transition.at),
            ]
        }
        let version: Any =
            run.version.map { ["hash": $0.hash, "short": $0.short, "files": $0.files] as [String: Any] } ?? NSNull()
        let plan: Any = run.plan.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) } ?? NSNull()
        let object: [String: Any] = [
            "id": run.id, "pipeline": run.pipeline, "org": run.org, "logical_date": run.logicalDate, "trigger": run.trigger.rawValue,
            "state": run.state.rawValue, "reason": run.reason, "params": run.params, "request_id": run.requestID ?? NSNull(),
            "resume_of": run.resumeOf ?? NSNull(), "created_at": date(run.createdAt), "updated_at": date(run.updatedAt),
            "version": version, "plan": plan, "steps": steps, "transitions": transitions,
        ]
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    static func render(_ run: RunRecord, store: any RunStore, detailed: Bool = false) async throws -> String {
        var lines = ["run \(run.id): \(run.pipeline) for org \(run.org), logical date \(run.logicalDate): \(run.state.rawValue) — \(run.reason)"]
        if let worker = run.worker {
            lines.append("worker: \(worker)\(run.leaseExpiresAt == nil && !run.state.isFinal ? " (released)" : "")")
        }
        if !run.params.isEmpty {
            lines.append("params: " + run.params.keys.sorted().map { "\($0)=\(run.params[$0]!)" }.joined(separator: ", "))
        }
        lines += version(run, files: detailed)
        let steps = try await store.steps(of: run.id)
        let rows = steps.map { step -> [String] in
            let took: String
            if let start = step.startedAt, let end = step.finishedAt {
                took = String(format: "%.2fs", end.timeIntervalSince(start))
            } else {
                took = ""
            }
            let outputs = step.outputs.keys.sorted().map { "\($0)=\(step.outputs[$0]!)" }.joined(separator: " ")
            let detail: String
            switch step.state {
            case .succeeded where step.attempt == 0: detail = "\(step.reason): \(outputs)"  // reused by a resume
            case .succeeded: detail = outputs
            default: detail = step.reason
            }
            return [step.stepID, step.processor, step.state.rawValue, step.attempt == 0 ? "" : "\(step.attempt)", took, detail]
        }
        lines.append(TextTable.render(header: ["step", "processor", "state", "attempt", "took", "outputs / reason"], rows: rows))
        let checks = try await store.checkResults(of: run.id)
        if !checks.isEmpty {
            lines.append("data tests:")
            lines.append(
                TextTable.render(
                    header: ["step", "check", "table", "result", "observed"],
                    rows: checks.map {
                        [$0.stepID, $0.name, $0.table, $0.passed ? "passed" : ($0.severity == "warn" ? "warned" : "FAILED"), $0.observed]
                    }))
        }
        let quarantined = try await store.quarantined(of: run.id)
        if !quarantined.isEmpty {
            lines.append("quarantined rows: \(quarantined.count)")
            for row in quarantined.prefix(detailed ? 50 : 5) {
                lines.append("  \(row.file):\(row.line):\(row.column): \(row.reason)")
            }
        }
        if detailed {
            lines.append("transitions:")
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            for transition in try await store.transitions(of: run.id) {
                let subject = transition.stepID.map { "step \($0) (attempt \(transition.attempt))" } ?? "run"
                lines.append("  \(formatter.string(from: transition.at))  \(subject) → \(transition.state.rawValue): \(transition.reason)")
            }
        }
        return lines.joined(separator: "\n")
    }
}

/// Columns padded to their widest cell. A cell is one line: its line breaks and other control
/// characters are escaped.
enum TextTable {
    static func render(header: [String], rows: [[String]]) -> String {
        let all = ([header] + rows).map { $0.map { printable($0) } }
        let widths = header.indices.map { column in all.map { $0.indices.contains(column) ? $0[column].count : 0 }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
