import Foundation
import Testing

/// `sluice query --format table | csv | json`, on a warehouse a real run published.
struct QueryFormatTests {
    /// A project whose `notes` table holds commas, quotes, a line break, NULLs and an empty
    /// string, published by `sluice run`.
    func publishedNotes() async throws -> URL {
        let project = try temporaryFolder()
        for folder in ["schemas", "pipelines", "data"] {
            try FileManager.default.createDirectory(at: project.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        try Data(
            #"[{"name": "id", "type": "STRING", "mode": "REQUIRED"}, {"name": "note", "type": "STRING"}, {"name": "amount", "type": "FLOAT64"}]"#.utf8
        )
        .write(to: project.appendingPathComponent("schemas/notes_raw.json"))
        try Data("id,note,amount\n1,\"a,b\",5\n2,\"he said \"\"hi\"\"\",\n3,\"two\nlines\",7.5\n4,plain,\n5,\"\",1\n".utf8)
            .write(to: project.appendingPathComponent("data/notes.csv"))
        try Data(
            """
            pipeline: notes
            defaults: { timeout: 1m }
            steps:
              - { id: load, uses: ingest, with: { source: { format: csv, path: data/notes.csv }, table: notes_raw, schema: schemas/notes_raw.json } }
              - { id: keep, uses: merge_dedupe, with: { from: notes_raw, into: notes, key: [id], strategy: first_wins } }
            """.utf8
        ).write(to: project.appendingPathComponent("pipelines/notes.yml"))
        let run = try await sluice("run", "notes", in: project)
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        return project
    }

    static let select = "SELECT id, note, amount FROM notes ORDER BY id"

    @Test func csvQuotesWhatNeedsItDoublesQuotesAndLeavesNullEmpty() async throws {
        let project = try await publishedNotes()
        defer { try? FileManager.default.removeItem(at: project) }
        let result = try await sluice("query", "default", Self.select, "--format", "csv", in: project)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(
            result.stdout
                == "id,note,amount\r\n1,\"a,b\",5.0\r\n2,\"he said \"\"hi\"\"\",\r\n3,\"two\nlines\",7.5\r\n4,plain,\r\n5,\"\",1.0\r\n")
    }

    @Test func jsonIsAnArrayOfObjectsInColumnOrderWithNumbersAndNulls() async throws {
        let project = try await publishedNotes()
        defer { try? FileManager.default.removeItem(at: project) }
        let result = try await sluice("query", "default", Self.select, "--format", "json", in: project)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(
            result.stdout == """
                [
                  {"id": "1", "note": "a,b", "amount": 5.0},
                  {"id": "2", "note": "he said \\"hi\\"", "amount": null},
                  {"id": "3", "note": "two\\nlines", "amount": 7.5},
                  {"id": "4", "note": "plain", "amount": null},
                  {"id": "5", "note": "", "amount": 1.0}
                ]

                """)
        // What a script gets back from it.
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
        #expect(parsed.count == 5)
        #expect(parsed[2]["note"] as? String == "two\nlines")
        #expect(parsed[1]["amount"] is NSNull)
        #expect((parsed[2]["amount"] as? NSNumber)?.doubleValue == 7.5)
    }

    @Test func blobsAreBase64AndIntegersAndEmptyResultsKeepTheirShape() async throws {
        let project = try await publishedNotes()
        defer { try? FileManager.default.removeItem(at: project) }
        let literals = "SELECT X'00FF10' AS b, NULL AS n, 2 AS i, -0.25 AS r, '' AS e, 'x' AS \"odd \"\"name\"\"\""
        let csv = try await sluice("query", "default", literals, "--format", "csv", in: project)
        #expect(csv.stdout == "b,n,i,r,e,\"odd \"\"name\"\"\"\r\nAP8Q,,2,-0.25,\"\",x\r\n", "\(csv.stderr)")
        let json = try await sluice("query", "default", literals, "--format", "json", in: project)
        #expect(
            json.stdout == "[\n  {\"b\": \"AP8Q\", \"n\": null, \"i\": 2, \"r\": -0.25, \"e\": \"\", \"odd \\\"name\\\"\": \"x\"}\n]\n",
            "\(json.stderr)")
        let none = "SELECT id FROM notes WHERE id = 'nope'"
        #expect(try await sluice("query", "default", none, "--format", "json", in: project).stdout == "[]\n")
        #expect(try await sluice("query", "default", none, "--format", "csv", in: project).stdout == "id\r\n")
    }

    @Test func tableStaysTheDefault() async throws {
        let project = try await publishedNotes()
        defer { try? FileManager.default.removeItem(at: project) }
        let plain = try await sluice("query", "default", "SELECT id, amount FROM notes ORDER BY id", in: project)
        let table = try await sluice("query", "default", "SELECT id, amount FROM notes ORDER BY id", "--format", "table", in: project)
        #expect(plain.status == 0)
        #expect(plain.stdout == table.stdout)
        #expect(plain.stdout.contains("NULL"))
        #expect(plain.stdout.hasSuffix("(5 rows)\n"))
    }

    @Test func anUnknownFormatIsAUsageError() async throws {
        let project = try await publishedNotes()
        defer { try? FileManager.default.removeItem(at: project) }
        let result = try await sluice("query", "default", "SELECT 1", "--format", "xml", in: project)
        #expect(result.status == 2)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.contains("xml"), "\(result.stderr)")
        #expect(result.stderr.contains("table") && result.stderr.contains("csv") && result.stderr.contains("json"), "\(result.stderr)")
    }
}
