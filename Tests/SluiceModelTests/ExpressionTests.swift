import Testing

@testable import SluiceModel

struct ExpressionTests {
    let context = ExpressionContext(
        params: ["day": .string("2026-03-01"), "limit": .number(5), "region": .string("")],
        run: ["org": .string("Acme"), "logical_date": .string("2026-03-02")],
        env: ["HOME": "/root"],
        stepOutputs: ["load": ["rows_written": .number(1200)]],
        secrets: ["openai_key": "sk-test"])

    func evaluate(_ text: String) throws -> ExpressionValue {
        try Template(parsing: text).evaluate(in: context)
    }

    @Test func aWholeValueExpressionKeepsItsType() throws {
        #expect(try evaluate("${{ params.limit }}") == .number(5))
        #expect(try evaluate("${{ steps.load.outputs.rows_written }}") == .number(1200))
        #expect(try evaluate("${{ params.limit == 5 }}") == .bool(true))
    }

    @Test func textAroundExpressionsInterpolates() throws {
        #expect(try evaluate("data/usage_${{ run.logical_date }}.csv") == .string("data/usage_2026-03-02.csv"))
        #expect(try evaluate("${{ lower(run.org) }}-${{ upper('x') }}") == .string("acme-X"))
    }

    @Test func orGivesTheFirstNonEmptyValue() throws {
        #expect(try evaluate("${{ params.region || 'us' }}") == .string("us"))
        #expect(try evaluate("${{ env.MISSING || env.HOME }}") == .string("/root"))
        #expect(try evaluate("${{ !params.region && true }}") == .bool(true))
    }

    @Test func dateAddMovesByDays() throws {
        #expect(try evaluate("${{ date_add(params.day, '-1d') }}") == .string("2026-02-28"))
        #expect(try evaluate("${{ date_add('2024-02-28', '2d') }}") == .string("2024-03-01"))
        #expect(throws: ExpressionContext.EvaluationError.self) { try evaluate("${{ date_add(params.day, '3h') }}") }
    }

    @Test func quotesInsideStringsAndTemplates() throws {
        #expect(try evaluate("${{ 'it''s' }}") == .string("it's"))
        #expect(try evaluate("${{ '}}' }}") == .string("}}"))
    }

    @Test func missingValuesAreErrorsNotEmptyStrings() {
        #expect(throws: ExpressionContext.EvaluationError.self) { try evaluate("${{ params.nope }}") }
        #expect(throws: ExpressionContext.EvaluationError.self) { try evaluate("${{ secrets.other }}") }
    }

    @Test func referencesCarryTheirOffsetsInTheValue() throws {
        let template = try Template(parsing: "a ${{ params.x || run.id }} b ${{ steps.s.outputs.o }}")
        #expect(template.references.map { $0.path.joined(separator: ".") } == ["params.x", "run.id", "steps.s.outputs.o"])
        #expect(template.references.map(\.offset) == [6, 18, 34])
    }

    @Test(arguments: [("${{ }}", 4), ("${{ a. }}", 7), ("${{ 'x }}", 0), ("${{ a b }}", 6), ("x ${{ a", 2), ("${{ a = b }}", 6)])
    func syntaxErrorsPointAtTheProblem(_ text: String, _ offset: Int) {
        do {
            _ = try Template(parsing: text)
            Issue.record("'\(text)' parsed")
        } catch {
            #expect(error.offset == offset)
        }
    }

    @Test func scopeResolvesEveryRootAndExplainsMistakes() {
        let scope = ReferenceScope(params: ["day"], stepOutputs: ["load": ["rows_read"]], secrets: ["key"])
        #expect(scope.resolve(["params", "day"]) == .ok)
        #expect(scope.resolve(["run", "logical_date"]) == .ok)
        #expect(scope.resolve(["env", "ANY_NAME"]) == .ok)
        #expect(scope.resolve(["steps", "load", "outputs", "rows_read"]) == .step("load"))
        #expect(scope.resolve(["secrets", "key"]) == .secret("key"))
        #expect(scope.resolve(["params", "dya"]) == .problem("unknown param 'dya'; did you mean 'day'?"))
        #expect(scope.resolve(["steps", "load", "rows_read"]) == .problem("'steps.load.rows_read': write steps.<id>.outputs.<name>"))
        var defaults = scope
        defaults.allowsParamsStepsAndSecrets = false
        #expect(defaults.resolve(["secrets", "key"]) == .problem("'secrets.key': a param default may read only run.* and env.*"))
    }
}
