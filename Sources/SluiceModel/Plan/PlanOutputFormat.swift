/// How `sluice plan` draws a DAG: text layers for people, Graphviz dot or Mermaid for pictures.
public enum PlanOutputFormat: String, CaseIterable, Sendable {
    case text, dot, mermaid

    public func render(_ plan: PipelinePlan) -> String {
        switch self {
        case .text: return Self.text(plan)
        case .dot: return Self.dot(plan)
        case .mermaid: return Self.mermaid(plan)
        }
    }

    static func text(_ plan: PipelinePlan) -> String {
        let definition = plan.definition
        let steps = definition.steps
        var lines: [String] = []
        let name = definition.id?.value ?? definition.file
        lines.append("\(name): \(steps.count) step\(steps.count == 1 ? "" : "s") in \(plan.layers.count) layer\(plan.layers.count == 1 ? "" : "s")")
        if let description = definition.description { lines.append("  \(description)") }
        if let schedule = definition.schedule, let cron = schedule.cron {
            lines.append("  schedule: \(cron.source) (\(schedule.timezone))")
        }
        let idWidth = steps.map(\.id.value.count).max() ?? 0
        let usesWidth = steps.map(\.uses.value.count).max() ?? 0
        for (index, layer) in plan.layers.enumerated() {
            lines.append("")
            lines.append("layer \(index + 1)")
            for id in layer {
                guard let step = definition.step(id) else { continue }
                var parts: [String] = []
                if let reads = plan.reads[id], !reads.isEmpty { parts.append("reads \(reads.joined(separator: ", "))") }
                if let writes = plan.writes[id], !writes.isEmpty { parts.append("writes \(writes.joined(separator: ", "))") }
                let secrets = step.io.definesSecrets.map { "secrets.\($0.value)" }
                if !secrets.isEmpty { parts.append("decrypts \(secrets.joined(separator: ", "))") }
                let after = plan.dependencies(of: id)
                if !after.isEmpty { parts.append("after \(after.joined(separator: ", "))") }
                let padded = id.padding(toLength: idWidth, withPad: " ", startingAt: 0)
                let uses = step.uses.value.padding(toLength: usesWidth, withPad: " ", startingAt: 0)
                lines.append("  \(padded)  \(uses)  \(parts.joined(separator: "; "))".trimmingTrailingSpaces())
            }
        }
        if !definition.onFailure.isEmpty {
            lines.append("")
            lines.append("on failure: " + definition.onFailure.map { "\($0.id.value) (\($0.uses.value))" }.joined(separator: ", "))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func dot(_ plan: PipelinePlan) -> String {
        func quote(_ text: String) -> String {
            "\""
                + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                .replacingOccurrences(of: "\n", with: "\\n") + "\""
        }
        var lines = ["digraph \(quote(plan.definition.id?.value ?? "pipeline")) {", "  rankdir=LR;", "  node [shape=box, fontname=\"Helvetica\"];"]
        for (index, layer) in plan.layers.enumerated() {
            lines.append("  subgraph layer_\(index + 1) { rank=same;")
            for id in layer {
                let uses = plan.definition.step(id)?.uses.value ?? ""
                lines.append("    \(quote(id)) [label=\(quote("\(id)\n\(uses)"))];")
            }
            lines.append("  }")
        }
        for edge in plan.edges {
            lines.append("  \(quote(edge.from)) -> \(quote(edge.to))\(edgeAttributes(edge.reason));")
        }
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }

    private static func edgeAttributes(_ reason: PipelinePlan.Edge.Reason) -> String {
        switch reason {
        case .needs: return ""
        case .table(let table): return " [style=dashed, label=\"\(table)\"]"
        case .output: return " [style=dotted, label=\"outputs\"]"
        case .secret(let name): return " [style=dotted, label=\"secrets.\(name)\"]"
        }
    }

    static func mermaid(_ plan: PipelinePlan) -> String {
        var lines = ["flowchart LR"]
        for id in plan.order {
            let uses = plan.definition.step(id)?.uses.value ?? ""
            lines.append("  \(id)[\"\(id)<br/><small>\(uses)</small>\"]")
        }
        for edge in plan.edges {
            switch edge.reason {
            case .needs: lines.append("  \(edge.from) --> \(edge.to)")
            case .table(let table): lines.append("  \(edge.from) -.->|\(table)| \(edge.to)")
            case .output: lines.append("  \(edge.from) -.->|outputs| \(edge.to)")
            case .secret(let name): lines.append("  \(edge.from) -.->|secrets.\(name)| \(edge.to)")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var text = self
        while text.last == " " { text.removeLast() }
        return text
    }
}
