import Foundation

/// Turns a pipeline file into a `PipelineDefinition` and the diagnostics that need only the
/// file itself: YAML, keys, fields, types, expressions, secrets, credentials, params, step ids
/// and the pipeline id. Checks that need the DAG or the project (schemas, procedures) are the
/// `Linter`'s.
public struct PipelineLoader: Sendable {
    public var registry: ProcessorRegistry
    public var yaml: YAMLLoader

    public init(registry: ProcessorRegistry, yaml: YAMLLoader = YAMLLoader()) {
        self.registry = registry
        self.yaml = yaml
    }

    public struct Result: Sendable {
        public var definition: PipelineDefinition?
        public var diagnostics: [Diagnostic]
    }

    public func load(fileAt url: URL, displayPath: String) -> Result {
        switch yaml.load(fileAt: url, displayPath: displayPath) {
        case .failure(let diagnostic): return Result(definition: nil, diagnostics: [diagnostic])
        case .success(let root): return load(root: root, file: displayPath)
        }
    }

    public func load(_ data: Data, file: String) -> Result {
        switch yaml.load(data, file: file) {
        case .failure(let diagnostic): return Result(definition: nil, diagnostics: [diagnostic])
        case .success(let root): return load(root: root, file: file)
        }
    }

    func load(root: YAMLNode?, file: String) -> Result {
        guard let root, !root.isNull else {
            return Result(
                definition: nil,
                diagnostics: [
                    Diagnostic(
                        .notAMapping, at: .start(of: file),
                        "the file is empty; a pipeline file is a mapping with at least `pipeline:` and `steps:`")
                ])
        }
        guard root.mapping != nil else {
            return Result(
                definition: nil,
                diagnostics: [
                    Diagnostic(
                        .notAMapping, at: root.location,
                        "a pipeline file must be a mapping with `pipeline:` and `steps:`, but this one is \(root.kindDescription)")
                ])
        }

        var validator = ConfigValidator(registry: registry, scope: scope(for: root))
        validator.validateObject(root, fields: PipelineFormat.topLevel, owner: "pipeline", skip: ["steps", "on_failure", "params"])
        Self.requireLiteral(root["timeout"], "pipeline: timeout", validator: &validator)
        Self.requireLiteral(root["defaults"]?["timeout"], "pipeline: defaults.timeout", validator: &validator)

        let params = loadParams(root["params"], validator: &validator)
        let allSteps = loadSteps(root["steps"], fields: PipelineFormat.stepFields, kind: "step", required: true, validator: &validator)
        // Handlers run once the run has failed: they may read why.
        validator.scope.allowsFailureFields = true
        let handlers = loadSteps(
            root["on_failure"], fields: PipelineFormat.handlerFields, kind: "on_failure handler",
            required: false, validator: &validator)
        validator.scope.allowsFailureFields = false
        var diagnostics = validator.diagnostics

        // A repeated id is reported and the later step left out, so the DAG has one node per id.
        var seen: [String: SourceLocation] = [:]
        var steps: [StepDefinition] = []
        for step in allSteps {
            if let first = seen[step.id.value] {
                diagnostics.append(
                    Diagnostic(
                        .duplicateStepId, at: step.id.location,
                        "step id \(shown(step.id.value)) is used twice; the first is at \(first.line):\(first.column)"))
            } else {
                seen[step.id.value] = step.id.location
                steps.append(step)
            }
        }

        var id: Located<String>?
        if let node = root["pipeline"], let text = node.scalarText, Identifier.isValid(text) {
            id = Located(text, at: node.location)
            let expected = URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
            if text != expected {
                diagnostics.append(
                    Diagnostic(
                        .pipelineNameMismatch, at: node.location,
                        "pipeline id \(shown(text)) differs from its file name \(shown(expected)); name the file \(text).yml or the pipeline \(expected)"
                    ))
            }
        }

        var definition = PipelineDefinition(
            file: file,
            id: id,
            description: root["description"]?.scalarText,
            schedule: loadSchedule(root["schedule"]),
            params: params,
            defaults: StepDefaults(
                timeout: duration(root["defaults"]?["timeout"]),
                retry: retryPolicy(root["defaults"]?["retry"]),
                maxParallel: root["defaults"]?["max_parallel"]?.int ?? 4),
            secretsTTL: duration(root["secrets"]?["ttl"]),
            steps: steps,
            onFailure: handlers,
            location: root.location)
        definition.timeout = duration(root["timeout"])
        definition.writtenStepIDs = Set((root["steps"]?.sequence ?? []).compactMap { $0["id"]?.scalarText })
        return Result(definition: definition, diagnostics: diagnostics)
    }

    /// What expressions in this file may name, read before validation so every value can be
    /// checked in one pass.
    private func scope(for root: YAMLNode) -> ReferenceScope {
        var scope = ReferenceScope()
        for pair in root["params"]?.mapping ?? [] {
            guard let name = pair.key.scalarText else { continue }
            scope.params.insert(name)
            if let value = pair.value["default"]?.scalarText, !Template.containsExpression(value) { scope.paramDefaults[name] = value }
        }
        for step in root["steps"]?.sequence ?? [] {
            guard let id = step["id"]?.scalarText else { continue }
            let uses = step["uses"]?.scalarText ?? ""
            if let spec = registry[uses] {
                scope.stepOutputs[id] = spec.outputs.map(\.name)
            } else {
                // Its processor is unknown (and reported): don't also call its outputs wrong.
                scope.stepOutputs[id] = []
                scope.stepsWithUnknownOutputs.insert(id)
            }
            for field in registry[uses]?.fields ?? [] where field.role == .definesSecret {
                if let name = step["with"]?[field.name]?.scalarText { scope.secrets.insert(name) }
            }
        }
        return scope
    }

    // MARK: Parts

    private func loadSteps(
        _ node: YAMLNode?, fields: [FieldSpec], kind: String, required: Bool,
        validator: inout ConfigValidator
    ) -> [StepDefinition] {
        guard let node, !node.isNull else { return [] }
        guard let items = node.sequence else {
            validator.report(.wrongType, node.location, "\(kind)s must be a list (each item starting with `- id:`), not \(node.kindDescription)")
            return []
        }
        if items.isEmpty && required {
            validator.report(.missingField, node.location, "a pipeline needs at least one step")
        }
        var steps: [StepDefinition] = []
        for (index, item) in items.enumerated() {
            let explicitID = item["id"]?.scalarText
            let label = explicitID.map { "\(kind) '\($0)'" } ?? "\(kind) \(index + 1)"
            validator.io = StepIO()
            validator.validateObject(item, fields: fields, owner: label)
            guard item.mapping != nil else { continue }
            let id: Located<String>
            if let idNode = item["id"], let text = idNode.scalarText, Identifier.isValid(text) {
                id = Located(text, at: idNode.location)
            } else if kind == "step" {
                continue  // missing or invalid id: reported above
            } else {
                id = Located("on_failure_\(index + 1)", at: item.location)
            }
            // Limits and timeouts are read before the run, so an expression would leave none.
            for pair in item["limits"]?.mapping ?? [] {
                Self.requireLiteral(pair.value, "\(label): limits.\(pair.key.scalarText ?? "")", validator: &validator)
            }
            Self.requireLiteral(item["timeout"], "\(label): timeout", validator: &validator)
            guard let usesNode = item["uses"], let uses = usesNode.scalarText else { continue }
            let needs = (item["needs"].map { $0.sequence ?? [$0] } ?? []).compactMap { need -> Located<String>? in
                guard let text = need.scalarText, !need.isNull else { return nil }
                return Located(text, at: need.location)
            }
            steps.append(
                StepDefinition(
                    id: id,
                    uses: Located(uses, at: usesNode.location),
                    description: item["description"]?.scalarText,
                    needs: needs,
                    config: item["with"],
                    timeout: duration(item["timeout"]),
                    retry: retryPolicy(item["retry"]),
                    limits: StepLimits(node: item["limits"]),
                    location: item.location,
                    io: validator.io))
        }
        return steps
    }

    private func loadParams(_ node: YAMLNode?, validator: inout ConfigValidator) -> [ParamDefinition] {
        guard let node, !node.isNull else { return [] }
        guard let spec = PipelineFormat.topLevel.first(where: { $0.name == "params" }) else { return [] }
        // Param defaults are evaluated before the run exists: they may read run.* and env.* only.
        let outer = validator.scope
        validator.scope.allowsParamsStepsAndSecrets = false
        validator.validate(node, as: spec.type, spec: spec, owner: "pipeline", withRoot: nil, path: "params")
        validator.scope = outer

        var params: [ParamDefinition] = []
        for pair in node.mapping ?? [] {
            guard let name = pair.key.scalarText, Identifier.isValid(name), pair.value.mapping != nil || pair.value.isNull else { continue }
            let body = pair.value
            let typeName = body["type"]?.scalarText ?? "string"
            guard let type = ParamDefinition.ParamType(rawValue: typeName) else { continue }
            let param = ParamDefinition(
                name: Located(name, at: pair.key.location),
                type: type,
                defaultValue: body["default"].flatMap { $0.isNull ? nil : $0 },
                required: body["required"]?.bool ?? false,
                pattern: body["pattern"]?.scalarText,
                allowedValues: body["values"].map { $0.sequence ?? [$0] },
                description: body["description"]?.scalarText)
            checkParam(param, patternNode: body["pattern"], validator: &validator)
            params.append(param)
        }
        return params
    }

    private func checkParam(_ param: ParamDefinition, patternNode: YAMLNode?, validator: inout ConfigValidator) {
        let name = param.name.value
        var regex: NSRegularExpression?
        if let pattern = param.pattern, let patternNode {
            do {
                regex = try ParamValue.wholeValueExpression(pattern)
            } catch {
                validator.report(
                    .invalidParam, patternNode.location, "param \(shown(name)): pattern \(shown(pattern)) is not a valid regular expression")
            }
            if param.type != .string {
                validator.report(
                    .invalidParam, patternNode.location, "param \(shown(name)): a pattern applies to string params, not \(param.type.rawValue)")
            }
        }
        if param.required, let value = param.defaultValue {
            validator.report(
                .invalidParam, value.location,
                "param \(shown(name)) is required and has a default; a required param must be given by each run, so drop one of them")
        }
        var candidates: [YAMLNode] = param.allowedValues ?? []
        if let value = param.defaultValue { candidates.append(value) }
        for value in candidates {
            guard let text = value.scalarText, !Template.containsExpression(text) else { continue }
            if let problem = ParamValue.problem(text: text, node: value, type: param.type) {
                validator.report(.invalidParam, value.location, "param \(shown(name)): \(problem)")
                continue
            }
            if let regex, !regex.matches(text) {
                validator.report(
                    .invalidParam, value.location, "param \(shown(name)): \(shown(text)) does not match its pattern \(param.pattern ?? "")")
            }
        }
        if let allowed = param.allowedValues, let value = param.defaultValue, let text = value.scalarText,
            !Template.containsExpression(text), !allowed.contains(where: { $0.scalarText == text })
        {
            validator.report(.invalidParam, value.location, "param \(shown(name)): default \(shown(text)) is not one of its values")
        }
    }

    private func loadSchedule(_ node: YAMLNode?) -> Schedule? {
        guard let node, node.mapping != nil else { return nil }
        return Schedule(
            cron: node["cron"]?.scalarText.flatMap { try? CronExpression(parsing: $0) },
            timezone: node["timezone"]?.scalarText ?? "UTC",
            catchup: duration(node["catchup"]),
            maxActiveRuns: node["max_active_runs"]?.int ?? 1,
            location: node.location)
    }

    /// Reports a value that is an expression where only a literal works: one read before the
    /// run exists (a timeout, a limit), which an expression would silently leave unset.
    static func requireLiteral(_ node: YAMLNode?, _ label: String, validator: inout ConfigValidator) {
        guard let node, let text = node.scalarText, Template.containsExpression(text) else { return }
        validator.report(.invalidValue, node.location, "\(label) must be a literal value; expressions are not allowed here")
    }

    private func duration(_ node: YAMLNode?) -> Duration? {
        node?.scalarText.flatMap { try? DurationText.parse($0) }
    }

    private func retryPolicy(_ node: YAMLNode?) -> RetryPolicy? {
        guard let node, node.mapping != nil else { return nil }
        let base = RetryPolicy.none
        return RetryPolicy(
            attempts: node["attempts"]?.int ?? base.attempts,
            backoff: node["backoff"]?.scalarText.flatMap(RetryPolicy.Backoff.init(rawValue:)) ?? base.backoff,
            initialDelay: duration(node["initial_delay"]) ?? base.initialDelay,
            maxDelay: duration(node["max_delay"]) ?? base.maxDelay,
            jitter: node["jitter"]?.bool ?? base.jitter)
    }
}

/// Checking a param value against its declared type; the executor uses it for `--param` too.
public enum ParamValue {
    /// A param's `pattern`, matching the whole value: from its first character to its very
    /// last (`\z`, where `$` would also match before a final line break and let `x.csv\n`
    /// pass `.+\.csv`).
    public static func wholeValueExpression(_ pattern: String) throws -> NSRegularExpression {
        try NSRegularExpression(pattern: "\\A(?:\(pattern))\\z")
    }

    public static func problem(text: String, node: YAMLNode?, type: ParamDefinition.ParamType) -> String? {
        switch type {
        case .string: return nil
        case .integer: return Int(text) == nil ? "\(shown(text)) is not an integer" : nil
        case .number: return Double(text) == nil ? "\(shown(text)) is not a number" : nil
        case .boolean: return ["true", "false"].contains(text) ? nil : "\(shown(text)) is not true or false"
        case .date: return CalendarDate(parsing: text) == nil ? "\(shown(text)) is not a YYYY-MM-DD date" : nil
        case .duration:
            do { _ = try DurationText.parse(text); return nil } catch { return error.description }
        }
    }
}

extension NSRegularExpression {
    /// Whether the expression matches somewhere in `text` (anchor it to match the whole).
    public func matches(_ text: String) -> Bool {
        firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }
}
