import Foundation
import SluiceEngine
import SluiceProviders
import SluiceTestSupport
import Testing

@testable import SluiceModel

/// No file, however broken, may crash or hang lint: each gets one error with a position.
struct BadInputTests {
    /// Lints `data` as `pipelines/bad_input.yml` in a fresh project and returns the result.
    func lint(_ data: Data) throws -> [Diagnostic] {
        let project = try TemporaryProject()
        defer { project.remove() }
        try project.write("pipelines/bad_input.yml", data)
        let started = ContinuousClock.now
        let report = Linter(projectRoot: project.root, registry: ProcessorEnvironment.standard.registry).lint(paths: ["pipelines/bad_input.yml"])
        #expect(ContinuousClock.now - started < TestTime.patience, "lint must not stall on bad input")
        return report.diagnostics
    }

    @Test func binaryGarbageIsRefusedAtTheFirstBadByte() throws {
        var generator = SystemRandomNumberGenerator()
        var bytes = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes[0...5] = [0x61, 0x3A, 0x20, 0x62, 0x0A, 0xFF]  // "a: b\n" then an invalid byte on line 2
        let diagnostics = try lint(Data(bytes))
        #expect(
            diagnostics.map(\.description) == [
                "pipelines/bad_input.yml:2:1: error: byte 0xFF is not valid UTF-8; pipeline files must be UTF-8 text [yaml-syntax]"
            ])
    }

    @Test func aNulByteIsCalledBinary() throws {
        let diagnostics = try lint(Data("pipeline: x\nsteps: \u{0}\n".utf8))
        #expect(
            diagnostics.map(\.description) == ["pipelines/bad_input.yml:2:8: error: NUL byte: this is a binary file, not YAML text [yaml-syntax]"])
    }

    @Test func aTenMegabyteLineIsRefusedWhereTheLimitIsCrossed() throws {
        let text = "pipeline: bad_input\ndescription: " + String(repeating: "a", count: 10_000_000) + "\n"
        let diagnostics = try lint(Data(text.utf8))
        #expect(diagnostics.count == 1)
        #expect(diagnostics.first?.rule == .inputLimit)
        // Byte 1,048,576 is on line 2, after "pipeline: bad_input\n" (20 bytes).
        #expect(diagnostics.first?.location == SourceLocation(file: "pipelines/bad_input.yml", line: 2, column: 1_048_576 - 20 + 1))
    }

    @Test func tenThousandLevelsOfFlowNestingAreRefused() throws {
        let text = "pipeline: bad_input\nsteps: " + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000) + "\n"
        let diagnostics = try lint(Data(text.utf8))
        #expect(
            diagnostics.map(\.description) == [
                "pipelines/bad_input.yml:2:207: error: values nest deeper than 200 levels; pipeline files may not [input-limit]"
            ])
    }

    @Test func tenThousandLevelsOfBlockNestingAreRefused() throws {
        // `- - - … x`: every dash opens a sequence inside the last.
        let text = "pipeline: bad_input\nsteps:\n" + String(repeating: "- ", count: 10_000) + "x\n"
        let diagnostics = try lint(Data(text.utf8))
        #expect(
            diagnostics.map(\.description) == [
                "pipelines/bad_input.yml:3:1: error: values nest deeper than 200 levels; pipeline files may not [input-limit]"
            ])
    }

    @Test func deepIndentationIsRefused() throws {
        var text = "pipeline: bad_input\n"
        for level in 0..<300 { text += String(repeating: " ", count: level) + "k\(level):\n" }
        let diagnostics = try lint(Data(text.utf8))
        #expect(diagnostics.map(\.rule) == [.inputLimit])
        #expect(diagnostics.first?.location.line == 202)
    }

    static let billionLaughs: String = {
        var text = "pipeline: bad_input\na: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
        var previous = "a"
        for name in ["b", "c", "d", "e", "f", "g", "h", "i"] {
            text += "\(name): &\(name) [" + Array(repeating: "*\(previous)", count: 9).joined(separator: ",") + "]\n"
            previous = name
        }
        return text
    }()

    @Test func anAliasBombStopsAtTheNodeLimit() throws {
        let diagnostics = try lint(Data(Self.billionLaughs.utf8))
        #expect(diagnostics.map(\.rule) == [.inputLimit])
        #expect(diagnostics.first?.message.contains("more than 100000 values") == true)
        #expect(diagnostics.first?.location.line ?? 0 >= 2)
    }

    @Test(arguments: ["*i : 1\n", "z: {*i: 1}\n", "z: {[*i]: 1}\n", "[*i, 1]: 2\n"])
    func anAliasBombUsedAsAKeyIsRefusedBeforeParsing(_ tail: String) throws {
        let diagnostics = try lint(Data((Self.billionLaughs + tail).utf8))
        #expect(diagnostics.count == 1)
        #expect(diagnostics.first?.rule == .yamlSyntax)
        #expect(diagnostics.first?.location.line == 11)
        #expect(diagnostics.first?.message.contains("used as a mapping key") == true)
    }

    @Test func tabsForIndentationAreExplained() throws {
        let diagnostics = try lint(Data("pipeline: bad_input\nsteps:\n\t- id: a\n".utf8))
        #expect(
            diagnostics.map(\.description) == [
                "pipelines/bad_input.yml:3:1: error: found character that cannot start any token (while scanning for the next token started at 3:1); YAML does not allow tabs for indentation, use spaces [yaml-syntax]"
            ])
    }

    @Test func aDuplicateKeyIsReportedWhereItRepeats() throws {
        let diagnostics = try lint(Data("pipeline: bad_input\nsteps: []\npipeline: again\n".utf8))
        #expect(
            diagnostics.map(\.description) == [
                "pipelines/bad_input.yml:3:1: error: duplicate key 'pipeline'; it was already given at 1:1 [duplicate-key]"
            ])
    }

    @Test func latin1BytesAreNotUTF8() throws {
        let diagnostics = try lint(Data([0x61, 0x3A, 0x20, 0x63, 0x61, 0x66, 0xE9, 0x0A]))
        #expect(
            diagnostics.map(\.description) == [
                "pipelines/bad_input.yml:1:7: error: byte 0xE9 is not valid UTF-8; pipeline files must be UTF-8 text [yaml-syntax]"
            ])
    }

    @Test func anOverlongUTF8EncodingIsRefused() throws {
        // 0xC0 0xAF is "/" encoded in two bytes, which UTF-8 forbids.
        let diagnostics = try lint(Data([0x61, 0x3A, 0x20, 0xC0, 0xAF, 0x0A]))
        #expect(diagnostics.map(\.rule) == [.yamlSyntax])
        #expect(diagnostics.first?.location.column == 4)
    }

    @Test(arguments: ["", "\n\n", "# only a comment\n", "---\n"])
    func anEmptyFileSaysSo(_ text: String) throws {
        let diagnostics = try lint(Data(text.utf8))
        #expect(
            diagnostics.map(\.description) == [
                "pipelines/bad_input.yml:1:1: error: the file is empty; a pipeline file is a mapping with at least `pipeline:` and `steps:` [not-a-mapping]"
            ])
    }

    @Test func aListIsNotAPipeline() throws {
        let diagnostics = try lint(Data("- pipeline: bad_input\n- steps: []\n".utf8))
        #expect(
            diagnostics.map(\.description) == [
                "pipelines/bad_input.yml:1:1: error: a pipeline file must be a mapping with `pipeline:` and `steps:`, but this one is a list [not-a-mapping]"
            ])
    }

    @Test func aControlCharacterIsRefused() throws {
        let diagnostics = try lint(Data("pipeline: bad\u{7}input\n".utf8))
        #expect(
            diagnostics.map(\.description) == ["pipelines/bad_input.yml:1:14: error: control character U+0007 is not allowed in YAML [yaml-syntax]"])
    }

    @Test func twoDocumentsAreRefused() throws {
        let diagnostics = try lint(Data("pipeline: bad_input\n---\npipeline: other\n".utf8))
        #expect(
            diagnostics.map(\.description) == [
                "pipelines/bad_input.yml:2:1: error: expected a single document in the stream but found another document [yaml-syntax]"
            ])
    }

    /// Random mutations of a valid pipeline: whatever comes out, lint answers with diagnostics
    /// that have positions inside the file, and never crashes.
    @Test func mutatedPipelinesNeverCrashLint() throws {
        let source = try Data(contentsOf: fixtures.appendingPathComponent("lint/project/pipelines/valid_pipeline.yml"))
        var generator = SeededGenerator(seed: 42)
        let project = try TemporaryProject()
        defer { project.remove() }
        try FileManager.default.copyItem(
            at: fixtures.appendingPathComponent("lint/project/schemas"),
            to: project.root.appendingPathComponent("schemas"))
        let linter = Linter(projectRoot: project.root, registry: ProcessorEnvironment.standard.registry)
        let alphabet = Array(" \t\n:-[]{}&*!|>'\"#%@`,?${}()=0aZ_".utf8) + [0xC3, 0x80, 0xFF]
        for round in 0..<300 {
            var bytes = Array(source)
            for _ in 0..<Int.random(in: 1...8, using: &generator) {
                let position = Int.random(in: 0..<bytes.count, using: &generator)
                switch Int.random(in: 0...2, using: &generator) {
                case 0: bytes[position] = alphabet.randomElement(using: &generator)!
                case 1: bytes.insert(alphabet.randomElement(using: &generator)!, at: position)
                default: bytes.remove(at: position)
                }
            }
            let name = "pipelines/mutant_\(round).yml"
            try project.write(name, Data(bytes))
            let lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
            for diagnostic in linter.lint(file: name) where diagnostic.location.file == name {
                let line = diagnostic.location.line
                #expect(line >= 1 && line <= lines.count + 1)
                #expect(diagnostic.location.column >= 1)
                if line <= lines.count {
                    // A column is at most one past the line's last character (scalars, as counted).
                    let scalars = String(decoding: lines[line - 1], as: UTF8.self).unicodeScalars.count
                    #expect(diagnostic.location.column <= scalars + 1, "\(diagnostic)")
                }
            }
        }
    }
}

/// A small deterministic generator so fuzz rounds repeat exactly.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        // SplitMix64.
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
