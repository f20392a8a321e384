/// A validated pipeline as a DAG: explicit `needs` edges, plus implicit edges from a step that
/// writes a table to the steps that read it, and from a step to those that read its outputs
/// or the secrets it decrypts. Steps come in topological order and in parallel layers.
public struct PipelinePlan: Sendable {
    public struct Edge: Hashable, Sendable {
        public enum Reason: Hashable, Sendable {
            case needs
            case table(String)
            case output
            case secret(String)
        }

        public var from: String
        public var to: String
        public var reason: Reason
    }

    public var definition: PipelineDefinition
    public var edges: [Edge]
    /// Step ids, each after everything it depends on; ties keep file order.
    public var order: [String]
    /// Steps that can run together: every step's dependencies are in earlier layers.
    public var layers: [[String]]
    /// Tables each step reads and writes (procedure steps included).
    public var reads: [String: [String]]
    public var writes: [String: [String]]

    public struct Cycle: Sendable, Hashable {
        /// The steps in the cycle, first repeated at the end: a → b → a.
        public var steps: [String]
        public var edges: [Edge]
    }

    /// Builds the DAG. `procedures` supplies what each procedure reads and writes, by path.
    /// Returns the cycles instead when there are any; `needs` naming unknown steps are ignored
    /// here (lint reports them).
    public static func build(
        _ definition: PipelineDefinition,
        procedures: [String: ProcedureInfo] = [:]
    ) -> Result<PipelinePlan, CycleError> {
        // Ids are unique in a definition from PipelineLoader (duplicates are reported and left
        // out); a hand-built definition with duplicates keeps the first.
        var seenIDs = Set<String>()
        let ids = definition.steps.map(\.id.value).filter { seenIDs.insert($0).inserted }
        let known = Set(ids)
        var reads: [String: [String]] = [:]
        var writes: [String: [String]] = [:]
        var secretOwners: [String: String] = [:]
        for step in definition.steps {
            var stepReads = step.io.reads.map(\.value)
            var stepWrites = step.io.writes.map(\.value)
            for path in step.io.procedureFiles.map(\.value) {
                stepReads += procedures[path]?.reads ?? []
                stepWrites += procedures[path]?.writes ?? []
            }
            reads[step.id.value] = unique(stepReads)
            writes[step.id.value] = unique(stepWrites)
            for secret in step.io.definesSecrets { secretOwners[secret.value] = step.id.value }
        }

        var edges: [Edge] = []
        var pairs = Set<[String]>()
        func add(_ from: String, _ to: String, _ reason: Edge.Reason) {
            guard from != to, known.contains(from), known.contains(to) else { return }
            // One edge per pair is enough to order them; keep the first reason.
            if pairs.insert([from, to]).inserted { edges.append(Edge(from: from, to: to, reason: reason)) }
        }
        for step in definition.steps {
            let id = step.id.value
            for need in step.needs { add(need.value, id, .needs) }
            for reference in step.io.stepReferences { add(reference.value, id, .output) }
            for reference in step.io.secretReferences {
                if let owner = secretOwners[reference.value] { add(owner, id, .secret(reference.value)) }
            }
        }
        var writers: [String: [String]] = [:]
        for id in ids { for table in writes[id] ?? [] { writers[table, default: []].append(id) } }
        for reader in ids {
            let readerWrites = Set(writes[reader] ?? [])
            for table in reads[reader] ?? [] {
                // A step that reads and writes a table is ordered against other writers only by `needs`.
                if readerWrites.contains(table) { continue }
                for writer in writers[table] ?? [] { add(writer, reader, .table(table)) }
            }
        }

        // Kahn's algorithm in file order, tracking each step's layer.
        var incoming: [String: Int] = Dictionary(ids.map { ($0, 0) }, uniquingKeysWith: { first, _ in first })
        var outgoing: [String: [String]] = [:]
        for edge in edges {
            incoming[edge.to, default: 0] += 1
            outgoing[edge.from, default: []].append(edge.to)
        }
        var layerOf: [String: Int] = [:]
        var ready = ids.filter { incoming[$0] == 0 }
        for id in ready { layerOf[id] = 0 }
        var order: [String] = []
        var remaining = incoming
        var position = 0
        while position < ready.count {
            let id = ready[position]
            position += 1
            order.append(id)
            for next in outgoing[id] ?? [] {
                layerOf[next] = max(layerOf[next] ?? 0, (layerOf[id] ?? 0) + 1)
                remaining[next, default: 0] -= 1
                if remaining[next] == 0 { ready.append(next) }
            }
        }
        if order.count < ids.count {
            let stuck = Set(ids).subtracting(order)
            return .failure(CycleError(cycles: findCycles(among: stuck, ids: ids, edges: edges)))
        }
        let depth = (layerOf.values.max() ?? -1) + 1
        var layers = Array(repeating: [String](), count: depth)
        for id in ids { layers[layerOf[id] ?? 0].append(id) }
        // Order inside the topological list: by layer, then file order, so it reads naturally.
        order = layers.flatMap { $0 }
        return .success(
            PipelinePlan(
                definition: definition, edges: edges, order: order, layers: layers,
                reads: reads, writes: writes))
    }

    public struct CycleError: Error, Sendable {
        public var cycles: [Cycle]
    }

    /// One cycle per group of steps that depend on each other in a circle.
    static func findCycles(among stuck: Set<String>, ids: [String], edges: [Edge]) -> [Cycle] {
        var cycles: [Cycle] = []
        var covered = Set<String>()
        // Steps left after Kahn's algorithm are on a cycle or downstream of one. Peel off those
        // with no edge to another remaining step until only cycle members are left, so every
        // walk below ends on a cycle.
        var remaining = stuck
        var inside = edges.filter { remaining.contains($0.from) && remaining.contains($0.to) }
        while true {
            let sources = Set(inside.map(\.from))
            let dead = remaining.subtracting(sources)
            if dead.isEmpty { break }
            remaining.subtract(dead)
            inside = inside.filter { remaining.contains($0.from) && remaining.contains($0.to) }
        }
        for start in ids where remaining.contains(start) && !covered.contains(start) {
            // Walk forward from `start` until a step repeats; the repeat closes a cycle.
            var path: [String] = [start]
            var pathEdges: [Edge] = []
            var index: [String: Int] = [start: 0]
            var current = start
            while true {
                guard let edge = inside.first(where: { $0.from == current }) else { break }
                if let seenAt = index[edge.to] {
                    let steps = Array(path[seenAt...]) + [edge.to]
                    let cycleEdges = Array(pathEdges[seenAt...]) + [edge]
                    let members = Set(steps)
                    if members.isDisjoint(with: covered) {
                        cycles.append(Cycle(steps: steps, edges: cycleEdges))
                    }
                    covered.formUnion(members)
                    break
                }
                index[edge.to] = path.count
                path.append(edge.to)
                pathEdges.append(edge)
                current = edge.to
            }
            covered.insert(start)
        }
        return cycles
    }

    private static func unique(_ names: [String]) -> [String] {
        var seen = Set<String>()
        return names.filter { seen.insert($0).inserted }
    }

    /// The steps a step depends on directly.
    public func dependencies(of id: String) -> [String] {
        edges.filter { $0.to == id }.map(\.from)
    }
}
