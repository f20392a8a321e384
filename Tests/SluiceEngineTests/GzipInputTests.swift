import Foundation
import SluiceModel
import SluiceStorage
import Testing

@testable import SluiceEngine

/// gzip-compressed input files, made with the `gzip` command, read by the real readers and
/// run through real pipelines on SQLite.
@Suite struct GzipInputTests {
    static let csv = """
        event_id,ts,day,org,amount
        e1,2026-03-01T10:00:00Z,2026-03-01,acme,5
        e2,"2026-03-01T11:00:00Z",2026-03-01,globex,"7.5"
        e3,2026-03-02T09:30:00Z,2026-03-02,acme,

        """

    static let jsonLines = """
        {"event_id": "e1", "ts": "2026-03-01T10:00:00Z", "amount": 5}
        {"event_id": "e2", "ts": "2026-03-01T11:00:00Z", "amount": 7.5}
        {"event_id": "e3", "ts": "2026-03-02T09:30:00Z", "amount": null}

        """

    /// `text` compressed by the `gzip` command.
    static func gzipped(_ text: String) throws -> [UInt8] {
        let folder = IngestFolder()
        let path = folder.file("text", text)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["gzip", "-n", "-f", path]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let compressed = try Data(contentsOf: URL(fileURLWithPath: path + ".gz"))
        #expect(compressed.starts(with: [0x1F, 0x8B]))
        return Array(compressed)
    }

    func values(_ records: [RawRecord]) -> [[SourceValue]] { records.map(\.values) }

    @Test func aGzipCSVReadsTheSameRecordsAsThePlainFile() throws {
        let folder = IngestFolder()
        var plain = try CSVReader(path: folder.file("events.csv", Self.csv), file: "events.csv")
        var compressed = try CSVReader(path: folder.bytes("events.csv.gz", try Self.gzipped(Self.csv)), file: "events.csv.gz")
        let expected = try readAll(&plain)
        let records = try readAll(&compressed)
        #expect(records.count == 3)
        #expect(values(records) == values(expected))
        #expect(records.map(\.line) == expected.map(\.line))
        #expect(records.map(\.raw) == expected.map(\.raw))
        // bytes_read counts the text read, after inflating.
        #expect(compressed.bytesRead == Self.csv.utf8.count)
        #expect(compressed.bytesRead == plain.bytesRead)
    }

    @Test func aGzipJSONLinesFileReadsTheSameRecordsAsThePlainFile() throws {
        let folder = IngestFolder()
        let fields = ["event_id", "ts", "amount"]
        var plain = try JSONLinesReader(path: folder.file("events.jsonl", Self.jsonLines), file: "events.jsonl", fields: fields)
        var compressed = try JSONLinesReader(
            path: folder.bytes("events.jsonl.gz", try Self.gzipped(Self.jsonLines)), file: "events.jsonl.gz", fields: fields)
        let expected = try readAll(&plain)
        let records = try readAll(&compressed)
        #expect(records.count == 3)
        #expect(values(records) == values(expected))
        #expect(records.map(\.line) == [1, 2, 3])
    }

    @Test func aGzipJSONArrayReadsTheSameRecordsAsThePlainFile() throws {
        let folder = IngestFolder()
        let json = """
            {"data": [
              {"event_id": "e1", "amount": 5},
              {"event_id": "e2", "amount": null}
            ]}

            """
        var plain = try JSONArrayReader(path: folder.file("events.json", json), fields: ["event_id", "amount"], items: "/data")
        var compressed = try JSONArrayReader(
            path: folder.bytes("events.json.gz", try Self.gzipped(json)), fields: ["event_id", "amount"], items: "/data")
        let expected = try readAll(&plain)
        let records = try readAll(&compressed)
        #expect(records.count == 2)
        #expect(values(records) == values(expected))
        #expect(records.map(\.line) == [2, 3])
    }

    @Test func detectionIsByTheMagicBytesNotTheName() throws {
        let folder = IngestFolder()
        // Compressed, without .gz in the name.
        var unnamed = try CSVReader(path: folder.bytes("events.csv", try Self.gzipped(Self.csv)), file: "events.csv")
        #expect(try readAll(&unnamed).count == 3)
        // Plain text behind a .gz name is read as the plain text it is.
        var plain = try CSVReader(path: folder.file("events.csv.gz", Self.csv), file: "events.csv.gz")
        let records = try readAll(&plain)
        #expect(records.map { $0.values.first } == [.text("e1", quoted: false), .text("e2", quoted: false), .text("e3", quoted: false)])
    }

    @Test func concatenatedMembersReadAsTheirConcatenation() throws {
        let folder = IngestFolder()
        let first = "event_id,amount\na,1\nb,2\n"
        let second = "c,3\n"
        let third = "d,4\ne,5\n"
        let bytes = try Self.gzipped(first) + Self.gzipped(second) + Self.gzipped("") + Self.gzipped(third)
        var reader = try CSVReader(path: folder.bytes("parts.csv.gz", bytes), file: "parts.csv.gz")
        let records = try readAll(&reader, limit: 2)
        #expect(records.map { $0.values.first } == ["a", "b", "c", "d", "e"].map { .text($0, quoted: false) })
        #expect(records.map(\.line) == [2, 3, 4, 5, 6])
        #expect(reader.bytesRead == (first + second + third).utf8.count)
    }

    @Test func aTruncatedGzipFileFailsNamingTheFileAndTheByte() throws {
        let folder = IngestFolder()
        var text = "event_id,amount\n"
        for index in 0..<20_000 { text += "e\(index),\(index % 97)\n" }
        let whole = try Self.gzipped(text)
        for cut in [whole.count - 4, whole.count / 2, 10, 2] {
            let path = folder.bytes("cut.csv.gz", Array(whole.prefix(cut)))
            let failure = stepFailure { () throws(StepFailure) in
                var reader = try CSVReader(path: path, file: "data/cut.csv.gz")
                _ = try readAll(&reader)
            }
            #expect(failure?.code == .unreadableInput, "cut at \(cut)")
            #expect(failure?.message.contains("'data/cut.csv.gz'") == true, "\(failure?.message ?? "")")
            #expect(failure?.message.contains("truncated") == true, "\(failure?.message ?? "")")
            #expect(failure?.message.contains("at byte \(cut) of the file") == true, "\(failure?.message ?? "")")
        }
    }

    @Test func damagedOrTrailingBytesFailWithTheOffset() throws {
        let folder = IngestFolder()
        let whole = try Self.gzipped(Self.csv)
        // The magic, then bytes that are not a gzip header.
        let header = folder.bytes("bad.csv.gz", [0x1F, 0x8B, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x01])
        let badHeader = stepFailure { () throws(StepFailure) in
            var reader = try CSVReader(path: header, file: "bad.csv.gz")
            _ = try readAll(&reader)
        }
        #expect(badHeader?.code == .unreadableInput)
        #expect(badHeader?.message.contains("gzip input file 'bad.csv.gz' can't be read at byte") == true, "\(badHeader?.message ?? "")")
        #expect(badHeader?.message.contains("not valid gzip data") == true, "\(badHeader?.message ?? "")")
        // A damaged checksum.
        var corrupt = whole
        corrupt[corrupt.count - 6] ^= 0xFF
        let checksum = stepFailure { () throws(StepFailure) in
            var reader = try CSVReader(path: folder.bytes("crc.csv.gz", corrupt), file: "crc.csv.gz")
            _ = try readAll(&reader)
        }
        #expect(checksum?.message.contains("incorrect data check") == true, "\(checksum?.message ?? "")")
        // Something that is not a member after the last one.
        let trailing = stepFailure { () throws(StepFailure) in
            var reader = try CSVReader(path: folder.bytes("tail.csv.gz", whole + Array("oops\n".utf8)), file: "tail.csv.gz")
            _ = try readAll(&reader)
        }
        #expect(trailing?.message.contains("at byte \(whole.count) of the file") == true, "\(trailing?.message ?? "")")
    }

    @Test func aLargeGzipFileStreamsInBoundedBatches() throws {
        let folder = IngestFolder()
        // A million identical rows: ~45 MB of text, a few hundred KB compressed, read 1 MiB at a time.
        let row = "e,2026-03-01T10:00:00Z,2026-03-01,acme,12345\n"
        let text = "event_id,ts,day,org,amount\n" + String(repeating: row, count: 1_000_000)
        let path = folder.bytes("big.csv.gz", try Self.gzipped(text))
        var reader = try CSVReader(path: path, file: "big.csv.gz")
        var count = 0
        while true {
            let batch = try reader.next(limit: 10_000)
            if batch.isEmpty { break }
            count += batch.count
        }
        #expect(count == 1_000_000)
        #expect(reader.bytesRead == text.utf8.count)
    }
}

/// gzip exports through whole runs: what is published, quarantined, and the step's outputs.
@Suite struct GzipPipelineTests {
    @Test func aGzipExportLoadsWithBadRowLinesOfTheDecompressedText() async throws {
        let project = try PipelineProject()
        defer { project.remove() }
        let csv = """
            event_id,ts,day,org,amount
            e1,2026-03-01T10:00:00Z,2026-03-01,acme,5
            e2,yesterday,2026-03-01,acme,1
            e3,2026-03-02T10:00:00Z,2026-03-02,acme,2

            """
        try Data(try GzipInputTests.gzipped(csv)).write(to: project.root.appendingPathComponent("data/events.csv.gz"))
        let run = try await project.run("merge_events", yaml: PipelineProject.mergePipeline(file: "data/events.csv.gz", maxBadRows: "1"))
        #expect(run.state == .succeeded, "\(run.reason)")
        let quarantined = try await project.store.quarantined(of: run.id)
        #expect(quarantined.map { "\($0.file):\($0.line):\($0.column)" } == ["data/events.csv.gz:3:4"])
        #expect(quarantined.first?.raw == "e2,yesterday,2026-03-01,acme,1")
        #expect(try await project.outputs(run, "load")["bytes_read"] == .number(Double(csv.utf8.count)))
        #expect(try await project.rows("SELECT event_id FROM events ORDER BY event_id") == [["e1"], ["e3"]])
    }

    @Test func aTruncatedGzipExportFailsTheStepAndPublishesNothing() async throws {
        let project = try PipelineProject()
        defer { project.remove() }
        var csv = "event_id,ts,day,org,amount\n"
        for index in 0..<5_000 { csv += "e\(index),2026-03-01T10:00:00Z,2026-03-01,acme,\(index)\n" }
        let whole = try GzipInputTests.gzipped(csv)
        try Data(whole.prefix(whole.count - 100)).write(to: project.root.appendingPathComponent("data/events.csv.gz"))
        let run = try await project.run("merge_events", yaml: PipelineProject.mergePipeline(file: "data/events.csv.gz", maxBadRows: "1"))
        #expect(run.state == .failed)
        let step = try await project.store.steps(of: run.id).first { $0.stepID == "load" }
        #expect(step?.errorCode == "unreadable_input")
        #expect(step?.reason.contains("gzip input file 'data/events.csv.gz' can't be read at byte") == true, "\(step?.reason ?? "")")
        #expect(try await project.tableExists("events") == false)
        #expect(try await project.tableExists("events_raw") == false)
    }
}
