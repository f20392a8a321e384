import Foundation

/// Checks YAML against field specs: unknown keys (with a suggestion), missing required fields,
/// types, enum values, durations, cron, timezones, names, `${{ }}` expressions and the
/// secrets they carry, and credential-looking literals. While it walks a processor's `with`,
/// it records what the fields' roles say the step touches (`StepIO`).
struct ConfigValidator {
    let registry: ProcessorRegistry
    var scope: ReferenceScope
    var diagnostics: [Diagnostic] = []
    /// What the step being validated touches; the caller resets it per step.
    var io = StepIO()
    /// Fields of the processor config being validated that decide where a request goes and
    /// read a value the run's caller or data chooses; an error once the config is read, if
    /// the step carries a secret.
    private var untrustedDestinations: [UntrustedDestination] = []
    /// Destination fields of the processor config being validated that read `params.*`; a
    /// warning once the config is read, unless the step carries a secret (then they are errors).
    private var paramDrivenDestinations: [(label: String, location: SourceLocation, params: [String])] = []
    /// `env.*` values the step puts into fields that take secrets (an API token header): a
    /// credential from the operator's environment is carried as much as one from the vault.
    private var carriedEnvironment: [String] = []

    private struct UntrustedDestination {
        var label: String
        var spec: FieldSpec
        var location: SourceLocation
        var references: [[String]]
    }

    init(registry: ProcessorRegistry, scope: ReferenceScope) {
        self.registry = registry
        self.scope = scope
    }

    mutating func report(_ rule: LintRule, _ location: SourceLocation, _ message: String) {
        diagnostics.append(Diagnostic(rule, at: location, message))
    }

    // MARK: Objects

    /// Validates a mapping against fields. `owner` names it in messages ("step 'load'",
    /// "ingest"); `unknownRule` is `unknownField` inside a processor's `with`, else `unknownKey`.
    /// `withRoot` is the processor's `with` mapping while inside it, for resolving roles.
    mutating func validateObject(
        _ node: YAMLNode, fields: [FieldSpec], rules: [FieldRule] = [],
        owner: String, unknownRule: LintRule = .unknownKey,
        withRoot: YAMLNode? = nil, path: String = "", skip: Set<String> = []
    ) {
        // How messages name this object: the owner, plus the dotted path inside it.
        let here = path.isEmpty ? owner : "\(owner): \(shown(path))"
        guard let pairs = node.mapping else {
            report(.wrongType, node.location, "\(here) must be a mapping, not \(node.kindDescription)")
            return
        }
        var present = Set<String>()
        for pair in pairs {
            guard let key = pair.key.scalarText, pair.key.mapping == nil, pair.key.sequence == nil else {
                report(.wrongType, pair.key.location, "keys in \(here) must be plain names")
                continue
            }
            guard let spec = fields.first(where: { $0.name == key }) else {
                let names = fields.map(\.name)
                let what = unknownRule == .unknownField ? "field" : "key"
                report(
                    unknownRule, pair.key.location,
                    "\(here) has no \(what) \(shown(key))\(Suggestion.hint(for: key, in: names)) (\(what)s: \(names.joined(separator: ", ")))")
                // A credential is a leak wherever it is written, under a misspelt key too.
                checkAllScalars(pair.value, spec: FieldSpec(key, .any, description: ""), label: "\(here): \(shown(key))", top: false)
                continue
            }
            if pair.value.isNull, !spec.requirement.isRequired, !isScalarLike(spec.type) { continue }
            present.insert(key)
            if skip.contains(key) { continue }
            if case .processorConfig = spec.type {
                continue  // validated below, once `uses` is known
            }
            validate(
                pair.value, as: spec.type, spec: spec, owner: owner, withRoot: withRoot, parent: node,
                path: path.isEmpty ? key : "\(path).\(key)")
        }
        for spec in fields where spec.requirement.isRequired && !present.contains(spec.name) {
            let valueIsNull = node[spec.name]?.isNull == true
            report(
                .missingField, valueIsNull ? node[spec.name]!.location : node.location,
                valueIsNull ? "\(here): \(shown(spec.name)) needs a value" : "\(here) is missing required \(shown(spec.name))")
        }
        checkRules(rules, in: node, fields: fields, present: present, owner: here)
        if fields.contains(where: {
            if case .processorConfig = $0.type { return true }; return false
        }) {
            validateProcessorConfig(of: node, owner: owner)
        }
    }

    private func isScalarLike(_ type: FieldType) -> Bool {
        if case .scalar = type { return true }
        if case .any = type { return true }
        return false
    }

    private mutating func checkRules(
        _ rules: [FieldRule], in node: YAMLNode, fields: [FieldSpec],
        present: Set<String>, owner: String
    ) {
        func effectiveValue(_ name: String) -> String? {
            if let value = node[name], !value.isNull { return value.scalarText ?? "*" }
            if let spec = fields.first(where: { $0.name == name }), case .defaultValue(let value) = spec.requirement {
                return value
            }
            return nil
        }
        for rule in rules {
            switch rule {
            case let .required(field, when, equals):
                guard !present.contains(field), let value = effectiveValue(when) else { continue }
                if equals == ["*"] || equals.contains(value) {
                    let condition = equals == ["*"] ? "\(shown(when)) is set" : "\(when) is \(value)"
                    report(.missingField, node.location, "\(owner) needs \(shown(field)) when \(condition)")
                }
            case let .exactlyOne(names):
                let given = names.filter(present.contains)
                if given.count != 1 {
                    let list = names.map { "'\($0)'" }.joined(separator: " or ")
                    let location = given.count > 1 ? node[given[1]]!.location : node.location
                    report(
                        given.isEmpty ? .missingField : .invalidValue, location,
                        given.isEmpty ? "\(owner) needs \(list)" : "\(owner) takes \(list), not both")
                }
            case let .memberOf(field, list):
                guard let member = node[field], let value = member.scalarText, let listNode = node[list] else { continue }
                let values = (listNode.sequence ?? [listNode]).compactMap(\.scalarText)
                if !values.contains(value) {
                    report(
                        .invalidValue, member.location,
                        "\(owner): \(shown(field)) must be one of the \(list) columns (\(values.joined(separator: ", "))), not \(shown(value))")
                }
            case let .atMostOne(names):
                let given = names.filter(present.contains)
                if given.count > 1 {
                    report(
                        .invalidValue, node[given[1]]!.location,
                        "\(owner) takes at most one of \(names.map { "'\($0)'" }.joined(separator: ", "))")
                }
            }
        }
    }

    /// A step's `with`, checked against the processor that `uses` names.
    private mutating func validateProcessorConfig(of step: YAMLNode, owner: String) {
        guard let usesNode = step["uses"], let name = usesNode.scalarText, !usesNode.isNull else { return }
        guard let spec = registry[name] else {
            report(
                .unknownProcessor, usesNode.location,
                "unknown processor \(shown(name))\(Suggestion.hint(for: name, in: registry.names)) (`sluice processors` lists them)")
            if let config = step["with"] {
                checkAllScalars(config, spec: FieldSpec("with", .any, description: ""), label: "\(owner): 'with'", top: false)
            }
            return
        }
        let config = step["with"] ?? YAMLNode(.mapping([]), at: step.location)
        let configNode = config.isNull ? YAMLNode(.mapping([]), at: config.location) : config
        guard configNode.mapping != nil else {
            report(.wrongType, configNode.location, "\(owner): `with` must be a mapping of \(name)'s fields, not \(configNode.kindDescription)")
            return
        }
        untrustedDestinations = []
        paramDrivenDestinations = []
        carriedEnvironment = []
        validateObject(
            configNode, fields: spec.fields, rules: spec.rules, owner: "\(owner) (\(name))",
            unknownRule: .unknownField, withRoot: configNode)
        reportUntrustedDestinations()
    }

    /// A step that carries a secret sends it where its destination fields say: those must be
    /// the pipeline author's or the operator's choice, or a token holder or a webhook payload
    /// could point them at their own host and receive the secret.
    /// Without a secret, a destination that reads a param is still the caller's choice of
    /// host: a warning, since the run confines it (no private or loopback address unless
    /// allow-listed) but the author may not have meant to hand that choice out.
    private mutating func reportUntrustedDestinations() {
        var secrets: [String] = []
        for secret in io.secretReferences where !secrets.contains("secrets.\(secret.value)") { secrets.append("secrets.\(secret.value)") }
        for name in carriedEnvironment where !secrets.contains("env.\(name)") { secrets.append("env.\(name)") }
        guard !secrets.isEmpty else {
            for use in paramDrivenDestinations {
                report(
                    .paramDrivenURL, use.location,
                    """
                    \(use.label) reads \(Self.sentence(use.params)), so whoever starts a run through the API or a webhook \
                    chooses where the request goes; runs refuse loopback, private and link-local addresses for it unless \
                    sluice.yml lists them under network.allow. Take it from env or write it in the file if the caller \
                    should not choose
                    """)
            }
            return
        }
        for use in untrustedDestinations {
            let reads = use.references.map { "\($0.joined(separator: ".")) (\(ReferenceScope.untrustedSource(of: $0) ?? ""))" }
            let first = use.references[0]
            let variable = (first.first == "params" ? first[1] : use.spec.name).uppercased()
            var fallback = "https://…"
            if case .defaultValue(let value) = use.spec.requirement { fallback = value }
            if first.first == "params", let value = scope.paramDefaults[first[1]] { fallback = value }
            report(
                .untrustedSecretDestination, use.location,
                "\(use.label) decides where the step sends \(Self.sentence(secrets)), but it reads \(Self.sentence(reads)); "
                    + "take it from the operator's environment or write it in the file, e.g. ${{ env.\(variable) || '\(fallback)' }} (|| gives the first non-empty value)"
            )
        }
    }

    /// "a", "a and b", "a, b and c".
    private static func sentence(_ items: [String]) -> String {
        items.count < 2 ? items.joined() : items.dropLast().joined(separator: ", ") + " and " + items.last!
    }

    // MARK: Values

    /// Validates one value against a field's type. `parent` is the object holding the field,
    /// for roles that name sibling fields (`.table`).
    mutating func validate(
        _ node: YAMLNode, as type: FieldType, spec: FieldSpec, owner: String,
        withRoot: YAMLNode?, parent: YAMLNode? = nil, path: String
    ) {
        let label = "\(owner): \(shown(path))"
        // A credential is a leak in any field; a credential field's literal is reported below.
        if case .scalar(let text, _) = node.value, !(spec.secret == .required && !Template.containsExpression(text)) {
            scanForCredential(node, text: text, label: label)
        }
        func expectScalar() -> String? {
            guard let text = node.scalarText, !node.isNull else {
                report(.wrongType, node.location, "\(label) must be \(type.phrase), not \(node.kindDescription)")
                return nil
            }
            return text
        }
        /// A literal that must be checked now, or nil when the value is an expression (checked
        /// for its references instead, and typed when it runs).
        func literalOrExpression() -> String? {
            guard let text = expectScalar() else { return nil }
            if Template.containsExpression(text) {
                checkTemplate(node, text: text, spec: spec, label: label)
                return nil
            }
            checkLiteral(node, text: text, spec: spec, label: label)
            return text
        }

        switch type {
        case .string:
            _ = literalOrExpression()
            if let text = node.scalarText { recordRole(spec.role, text: text, node: node, withRoot: withRoot, parent: parent, path: path) }
        case .scalar:
            guard node.mapping == nil, node.sequence == nil else {
                report(.wrongType, node.location, "\(label) must be a single value, not \(node.kindDescription)")
                return
            }
            if let text = node.scalarText {
                if Template.containsExpression(text) {
                    checkTemplate(node, text: text, spec: spec, label: label)
                } else {
                    checkLiteral(node, text: text, spec: spec, label: label)
                }
            }
        case .any:
            checkAllScalars(node, spec: spec, label: label)
        case .integer(let range):
            guard let text = literalOrExpression() else { return }
            guard let value = node.int, !node.isQuoted else {
                report(.wrongType, node.location, "\(label) must be an integer, not \(shown(text))")
                return
            }
            if let range, !range.contains(value) {
                report(.invalidValue, node.location, "\(label) must be between \(range.lowerBound) and \(range.upperBound), not \(value)")
            }
        case .number:
            guard let text = literalOrExpression() else { return }
            if node.double == nil || node.isQuoted {
                report(.wrongType, node.location, "\(label) must be a number, not \(shown(text))")
            }
        case .boolean:
            guard let text = literalOrExpression() else { return }
            if node.bool == nil {
                report(.wrongType, node.location, "\(label) must be true or false, not \(shown(text))")
            }
        case .duration:
            guard let text = literalOrExpression() else { return }
            do { _ = try DurationText.parse(text) } catch {
                report(.invalidDuration, node.location, "\(label): \(error.description)")
            }
        case .cron:
            guard let text = expectScalar() else { return }
            do {
                let cron = try CronExpression(parsing: text)
                if let impossibility = cron.impossibility {
                    report(
                        .cronNeverFires, offsetLocation(node, offset: impossibility.offset + leadingSpaces(text)),
                        "\(label): \(shown(cron.source)) \(impossibility.description)")
                }
            } catch {
                report(.invalidCron, offsetLocation(node, offset: error.offset + leadingSpaces(text)), "\(label): \(error.description)")
            }
        case .timezone:
            guard let text = expectScalar() else { return }
            do { _ = try TimeZoneName.zone(named: text) } catch {
                report(.invalidTimezone, node.location, "\(label): \(error.description)")
            }
        case .timeFormat:
            guard let text = expectScalar() else { return }
            do { _ = try TimeFormat(text) } catch {
                report(.invalidValue, offsetLocation(node, offset: error.offset + leadingSpaces(text)), "\(label): \(error.description)")
            }
        case .byteCount:
            guard let text = literalOrExpression() else { return }
            do { _ = try ByteCount.parse(text) } catch {
                report(.invalidValue, node.location, "\(label): \(error.description)")
            }
        case .countOrPercent:
            guard let text = literalOrExpression() else { return }
            do { _ = try RowThreshold(parsing: text) } catch {
                report(.invalidValue, node.location, "\(label): \(error.description)")
            }
        case .shortOrObject(let short, let fields):
            if node.mapping != nil {
                validate(node, as: .object(fields), spec: spec, owner: owner, withRoot: withRoot, parent: parent, path: path)
            } else {
                validate(node, as: short, spec: spec, owner: owner, withRoot: withRoot, parent: parent, path: path)
            }
        case .identifier:
            guard let text = expectScalar() else { return }
            if Template.containsExpression(text) {
                report(
                    .invalidValue, node.location, "\(label) must be a literal name so lint and the DAG can check it; expressions are not allowed here"
                )
                return
            }
            if let problem = Identifier.problem(with: text) {
                report(.invalidIdentifier, node.location, "\(label): \(problem)")
                return
            }
            recordRole(spec.role, text: text, node: node, withRoot: withRoot, parent: parent, path: path)
        case .credentialName:
            // A literal: a param, env or step output choosing which of the org's credentials is
            // decrypted (and sent on) would let a run's caller pick, say, a webhook's secret.
            guard let text = expectScalar() else { return }
            if Template.containsExpression(text) {
                report(
                    .invalidValue, node.location,
                    "\(label) must be a literal credential name, like openai/admin_key; expressions are not allowed here, so no param, env or step output chooses which credential is decrypted"
                )
                return
            }
            checkLiteral(node, text: text, spec: spec, label: label)
            if let problem = CredentialName.problem(with: text) { report(.invalidValue, node.location, "\(label): \(problem)") }
        case .enumeration(let values):
            guard let text = expectScalar() else { return }
            if !values.contains(text) {
                report(
                    .invalidValue, node.location,
                    "\(label) must be one of \(values.joined(separator: ", ")), not \(shown(text))\(Suggestion.hint(for: text, in: values))")
            }
        case .list(let item):
            let items = node.sequence ?? [node]
            for (index, element) in items.enumerated() {
                if element.isNull {
                    report(.wrongType, element.location, "\(label): item \(index + 1) is empty")
                    continue
                }
                validate(element, as: item, spec: spec, owner: owner, withRoot: withRoot, parent: parent, path: path)
            }
        case .map(let valueType, let anyKeys):
            guard let pairs = node.mapping else {
                report(.wrongType, node.location, "\(label) must be a mapping, not \(node.kindDescription)")
                return
            }
            var seen = Set<String>()
            for pair in pairs {
                guard let key = pair.key.scalarText else {
                    report(.wrongType, pair.key.location, "\(label): keys must be plain names")
                    continue
                }
                if !anyKeys, let problem = Identifier.problem(with: key) {
                    report(.invalidIdentifier, pair.key.location, "\(label): \(problem)")
                }
                if !seen.insert(key).inserted {
                    report(.duplicateKey, pair.key.location, "\(label): \(shown(key)) is given twice")
                }
                if case .sqlOver(let tables) = spec.role, let text = pair.value.scalarText {
                    recordSQL(text, node: pair.value, tables: tables, withRoot: withRoot, parent: parent, path: "\(path).\(key)")
                    scanForCredential(pair.value, text: text, label: "\(label).\(key)")
                    if Template.containsExpression(text) {
                        report(
                            .invalidValue, pair.value.location,
                            "\(label).\(key): SQL expressions can't contain ${{ }}; pass values as params and write :name")
                    }
                    continue
                }
                validate(pair.value, as: valueType, spec: spec, owner: owner, withRoot: withRoot, parent: parent, path: "\(path).\(key)")
            }
        case .object(let fields):
            validateObject(
                node, fields: fields, owner: owner, unknownRule: withRoot == nil ? .unknownKey : .unknownField,
                withRoot: withRoot, path: path)
        case .variants(let discriminator, let shapes):
            guard node.mapping != nil else {
                report(.wrongType, node.location, "\(label) must be a mapping, not \(node.kindDescription)")
                return
            }
            let kinds = shapes.keys.sorted()
            guard let kindNode = node[discriminator], let kind = kindNode.scalarText, !kindNode.isNull else {
                report(.missingField, node.location, "\(label) is missing required \(shown(discriminator)) (one of \(kinds.joined(separator: ", ")))")
                return
            }
            guard let fields = shapes[kind] else {
                report(
                    .invalidValue, kindNode.location,
                    "\(label): \(shown(discriminator)) must be one of \(kinds.joined(separator: ", ")), not \(shown(kind))\(Suggestion.hint(for: kind, in: kinds))"
                )
                return
            }
            let discriminatorSpec = FieldSpec(discriminator, .enumeration(kinds), .required, description: "")
            validateObject(
                node, fields: [discriminatorSpec] + fields, owner: owner,
                unknownRule: withRoot == nil ? .unknownKey : .unknownField, withRoot: withRoot, path: path)
        case .processorConfig:
            break
        }
    }

    // MARK: Roles

    private mutating func recordRole(
        _ role: FieldRole, text: String, node: YAMLNode, withRoot: YAMLNode?,
        parent: YAMLNode?, path: String
    ) {
        let value = Located(text, at: node.location)
        switch role {
        case .none, .stepReference: break
        case .readsTable: io.reads.append(value)
        case .writesTable: io.writes.append(value)
        case .schemaFile: io.schemaFiles.append(value)
        case .procedureFile: io.procedureFiles.append(value)
        case .definesSecret: io.definesSecrets.append(value)
        case .columns(let tablePaths):
            guard let withRoot else { break }
            io.columnUses.append(
                ColumnUse(
                    column: value, tables: tables(at: tablePaths, in: withRoot, parent: parent),
                    field: path, inEveryTable: false))
        case .sharedColumns(let tablePaths):
            guard let withRoot else { break }
            io.columnUses.append(
                ColumnUse(
                    column: value, tables: tables(at: tablePaths, in: withRoot, parent: parent),
                    field: path, inEveryTable: true))
        case .sqlOver(let tablePaths):
            recordSQL(text, node: node, tables: tablePaths, withRoot: withRoot, parent: parent, path: path)
        }
    }

    private mutating func recordSQL(
        _ text: String, node: YAMLNode, tables tablePaths: [String], withRoot: YAMLNode?,
        parent: YAMLNode?, path: String
    ) {
        guard let withRoot else { return }
        let first: SourceLocation? = node.verbatim ? offsetLocation(node, offset: 0) : nil
        io.sqlExpressions.append(
            SQLExpressionUse(
                text: Located(text, at: node.location), firstCharacter: first,
                tables: tables(at: tablePaths, in: withRoot, parent: parent), field: path))
    }

    /// Table names found at dotted paths in `with` (`join.table` looks into each join); a path
    /// starting with `.` names a field of the same object (`.table`: this join's table).
    private func tables(at paths: [String], in root: YAMLNode, parent: YAMLNode?) -> [String] {
        func values(_ components: ArraySlice<String>, _ node: YAMLNode) -> [String] {
            if let items = node.sequence { return items.flatMap { values(components, $0) } }
            guard let first = components.first else { return node.scalarText.map { [$0] } ?? [] }
            guard let child = node[first] else { return [] }
            return values(components.dropFirst(), child)
        }
        return paths.flatMap { path -> [String] in
            if path.hasPrefix(".") {
                guard let parent else { return [] }
                return values(path.dropFirst().split(separator: ".").map(String.init)[...], parent)
            }
            return values(path.split(separator: ".").map(String.init)[...], root)
        }
    }

    // MARK: Expressions, secrets, credentials

    private mutating func checkTemplate(_ node: YAMLNode, text: String, spec: FieldSpec, label: String) {
        let template: Template
        do {
            template = try Template(parsing: text)
        } catch {
            report(.expressionSyntax, offsetLocation(node, offset: error.offset), "\(label): \(error.description)")
            return
        }
        for (expression, offset) in template.expressions {
            checkFunctions(expression, node: node, base: offset, label: label)
        }
        for reference in template.references {
            let location = offsetLocation(node, offset: reference.offset)
            switch scope.resolve(reference.path) {
            case .ok: break
            case .problem(let message): report(.unknownReference, location, "\(label): \(message)")
            case .step(let id): io.stepReferences.append(Located(id, at: location))
            case .secret(let name):
                io.secretReferences.append(Located(name, at: location))
                if !spec.secret.acceptsSecrets {
                    report(
                        .secretInPlainField, location,
                        "\(label) is not a secret field, so secrets.\(name) could leak into logs or tables; only fields marked secret take secrets")
                }
            }
        }
        if spec.secret.acceptsSecrets {
            for reference in template.references where reference.path.first == "env" && reference.path.count == 2 {
                if !carriedEnvironment.contains(reference.path[1]) { carriedEnvironment.append(reference.path[1]) }
            }
        }
        if spec.destination {
            var untrusted: [[String]] = []
            for reference in template.references where ReferenceScope.untrustedSource(of: reference.path) != nil {
                if case .problem = scope.resolve(reference.path) { continue }  // reported as unknown-reference
                if !untrusted.contains(reference.path) { untrusted.append(reference.path) }
            }
            if !untrusted.isEmpty {
                untrustedDestinations.append(UntrustedDestination(label: label, spec: spec, location: node.location, references: untrusted))
            }
            let params = untrusted.filter { $0.first == "params" }.map { $0.joined(separator: ".") }
            if !params.isEmpty { paramDrivenDestinations.append((label, node.location, params)) }
        }
        if spec.secret == .required {
            let roots = template.references.map { $0.path.first ?? "" }
            if roots.isEmpty || roots.contains(where: { $0 != "secrets" }) || template.parts.count != 1 {
                report(
                    .secretInPlainField, node.location,
                    "\(label) is a credential and must be exactly ${{ secrets.<name> }}, read from the vault, not params, env or text")
            }
        }
    }

    private mutating func scanForCredential(_ node: YAMLNode, text: String, label: String) {
        if let finding = CredentialDetector.scan(text) {
            report(
                .plaintextCredential, offsetLocation(node, offset: finding.offset),
                "\(label) holds what looks like \(finding.kind) in plain text; store it with `sluice secrets put` and read it with kms_decrypt")
        }
    }

    private mutating func checkFunctions(_ expression: Expression, node: YAMLNode, base: Int, label: String) {
        switch expression {
        case .literal, .reference: break
        case .not(let inner): checkFunctions(inner, node: node, base: base, label: label)
        case .binary(_, let left, let right):
            checkFunctions(left, node: node, base: base, label: label)
            checkFunctions(right, node: node, base: base, label: label)
        case .call(let name, let arguments, let offset):
            if let signature = ExpressionContext.functions[name] {
                if !signature.arity.contains(arguments.count) {
                    report(
                        .expressionSyntax, offsetLocation(node, offset: base + offset),
                        "\(label): \(name) takes \(signature.arity.lowerBound) argument(s), not \(arguments.count)")
                }
            } else {
                let names = ExpressionContext.functions.keys.sorted()
                report(
                    .expressionSyntax, offsetLocation(node, offset: base + offset),
                    "\(label): unknown function \(shown(name))\(Suggestion.hint(for: name, in: names)) (functions: \(names.joined(separator: ", ")))")
            }
            for argument in arguments { checkFunctions(argument, node: node, base: base, label: label) }
        }
    }

    private mutating func checkLiteral(_ node: YAMLNode, text: String, spec: FieldSpec, label: String) {
        if spec.secret == .required {
            report(
                .secretInPlainField, node.location,
                "\(label) is a credential and must come from the vault as ${{ secrets.<name> }}, not a literal")
        }
    }

    /// Scans every scalar under `node` for credentials and checks its expressions (values of
    /// free-form fields, and of keys lint does not know).
    mutating func checkAllScalars(_ node: YAMLNode, spec: FieldSpec, label: String, top: Bool = true) {
        switch node.value {
        case .scalar(let text, _):
            if !top { scanForCredential(node, text: text, label: label) }
            if Template.containsExpression(text) { checkTemplate(node, text: text, spec: spec, label: label) }
        case .sequence(let items): for item in items { checkAllScalars(item, spec: spec, label: label, top: false) }
        case .mapping(let pairs): for pair in pairs { checkAllScalars(pair.value, spec: spec, label: label, top: false) }
        }
    }

    // MARK: Positions inside values

    private func leadingSpaces(_ text: String) -> Int {
        text.prefix { $0 == " " || $0 == "\t" }.count
    }
}

/// The position of a character inside a scalar: exact when the value stands verbatim in the
/// file (a quote counts), else the value's start (escapes, folding, block scalars).
func offsetLocation(_ node: YAMLNode, offset: Int) -> SourceLocation {
    guard node.verbatim, let text = node.scalarText else { return node.location }
    var location = node.location
    let prefix = text.prefix(offset)
    location.column += prefix.unicodeScalars.count + (node.isQuoted ? 1 : 0)
    return location
}
