import Foundation
import Logging
import SluiceEngine
import SluiceModel
import SluiceSQLite
import SluiceStorage

// Executor overhead: a DAG of 1,000 no-op steps (10 layers of 100, each step needing every
// step of the layer before) run with every state transition stored in a real SQLite run
// store (WAL). Prints the wall time (best of 3) against the 0.3-second target.
//   bash Benchmarks/run.sh dag

/// Does nothing and publishes nothing.
struct NoOp: Processor {
    var spec: ProcessorSpec {
        ProcessorSpec(
            name: "noop", summary: "Does nothing.", description: "For benchmarks.", fields: [],
            outputs: [OutputSpec("done", "boolean", "Always true.")], example: "")
    }

    func run(_ step: StepContext) async throws -> [String: ExpressionValue] { ["done": .bool(true)] }
}

let layers = 10, width = 100
var yaml = "pipeline: dag\ndefaults: { timeout: 1m, max_parallel: 100 }\nsteps:\n"
for layer in 0..<layers {
    for index in 0..<width {
        let needs = layer == 0 ? "" : ", needs: [" + (0..<width).map { "s\(layer - 1)_\($0)" }.joined(separator: ", ") + "]"
        yaml += "  - { id: s\(layer)_\(index), uses: noop\(needs) }\n"
    }
}
let catalog = ProcessorEnvironment([NoOp()])
let loaded = PipelineLoader(registry: catalog.registry).load(Data(yaml.utf8), file: "pipelines/dag.yml")
guard loaded.diagnostics.isEmpty, let definition = loaded.definition, case .success(let plan) = PipelinePlan.build(definition) else {
    print("the generated DAG does not load: \(loaded.diagnostics.prefix(3))")
    exit(1)
}
print("DAG benchmark: \(plan.order.count) no-op steps in \(plan.layers.count) layers, \(plan.edges.count) edges")

let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-dag-bench-\(getpid())")
defer { try? FileManager.default.removeItem(at: folder) }
let quiet = Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() }

var best = Double.infinity
var transitions = 0
for round in 0..<3 {
    let store = try SQLiteRunStore(path: folder.appendingPathComponent("runs-\(round).sqlite").path)
    let executor = Executor(processors: catalog, store: store, logger: quiet)
    let started = ContinuousClock.now
    let run = try await executor.start(plan, .init(org: "bench", logicalDate: "2026-03-01", env: [:]))
    let elapsed = ContinuousClock.now - started
    guard run.state == .succeeded else {
        print("the run did not succeed: \(run.reason)")
        exit(1)
    }
    best = min(best, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    transitions = try await store.transitions(of: run.id).count
}
print(String(format: "SQLite run store (best of 3): %.3f s, %d transitions stored, %.0f steps/s", best, transitions, Double(plan.order.count) / best))
print(best <= 0.3 ? "target met: 1,000 steps in 0.3 s or less" : "TARGET MISSED: 1,000 steps took more than 0.3 s")
