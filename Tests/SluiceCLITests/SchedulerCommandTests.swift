import Foundation
import Testing

/// `sluice scheduler` and `sluice backfill` as a user runs them: the binary on a copy of the
/// example project.
struct SchedulerCommandTests {
    /// `id  pipeline  org X  fire-time  state` lines of `sluice scheduler --once`.
    func runLines(_ output: String) -> [[String]] {
        output.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
            .filter { $0.first?.hasPrefix("r") == true && $0.count == 6 }
    }

    @Test func schedulerOnceCatchesUpAndASecondLookFindsNothingDue() async throws {
        let project = try exampleProject()
        defer { try? FileManager.default.removeItem(at: project) }
        // genai_costs_daily: 02:30 UTC daily, catchup 3d, max_active_runs 1: three days are due.
        let first = try await sluice("scheduler", "--once", "pipelines/genai_costs_daily.yml", "--org", "acme", "--org", "globex", in: project)
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        let lines = runLines(first.stdout)
        #expect(lines.count == 6, "\(first.stdout)")
        #expect(lines.allSatisfy { $0[1] == "genai_costs_daily" && $0[5] == "succeeded" }, "\(first.stdout)")
        #expect(Set(lines.map { $0[3] }) == ["acme", "globex"])
        #expect(lines.allSatisfy { $0[4].hasSuffix("T02:30:00Z") })
        #expect(Set(lines.map { $0[4] }).count == 3)

        let second = try await sluice("scheduler", "--once", "pipelines/genai_costs_daily.yml", "--org", "acme", "--org", "globex", in: project)
        #expect(second.status == 0)
        #expect(second.stdout == "No runs were due.\n")
        let listed = try await sluice("runs", "list", "--org", "acme", in: project)
        for line in lines where line[3] == "acme" { #expect(listed.stdout.contains(line[0]), "\(listed.stdout)") }
    }

    @Test func theOrgsComeFromSluiceYmlAndAMistakeThereIsReportedWithItsPosition() async throws {
        let project = try exampleProject()
        defer { try? FileManager.default.removeItem(at: project) }
        try Data("orgs: [initech]\n".utf8).write(to: project.appendingPathComponent("sluice.yml"))
        let ran = try await sluice("scheduler", "--once", "pipelines/genai_costs_daily.yml", in: project)
        #expect(ran.status == 0, "\(ran.stderr)")
        #expect(runLines(ran.stdout).map { $0[3] } == ["initech", "initech", "initech"], "\(ran.stdout)")

        try Data("orgs: [initech]\nwarehouse: x\n".utf8).write(to: project.appendingPathComponent("sluice.yml"))
        let bad = try await sluice("scheduler", "--once", in: project)
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("sluice scheduler: sluice.yml:2:1: unknown setting 'warehouse'"), "\(bad.stderr)")
    }

    @Test func backfillCreatesTheMissedRunsOnceAndSaysWhichExisted() async throws {
        let project = try exampleProject()
        defer { try? FileManager.default.removeItem(at: project) }
        let dry = try await sluice(
            "backfill", "genai_costs_daily", "--from", "2026-03-01", "--to", "2026-03-03", "--org", "acme", "--dry-run", in: project)
        #expect(dry.status == 0)
        #expect(dry.stdout.contains("genai_costs_daily  org acme  2026-03-01  2026-03-01T02:30:00Z  schedule:2026-03-01T02:30:00Z"), "\(dry.stdout)")
        #expect(dry.stdout.contains("(dry run: 3 run(s) would be created"))
        #expect(try await sluice("runs", "list", "--org", "acme", in: project).stdout.contains("genai_costs_daily") == false)

        let first = try await sluice("backfill", "genai_costs_daily", "--from", "2026-03-01", "--to", "2026-03-03", "--org", "acme", in: project)
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        #expect(first.stdout.contains("3 succeeded, 0 failed, 0 existed already"), "\(first.stdout)")
        let again = try await sluice("backfill", "genai_costs_daily", "--from", "2026-03-02", "--to", "2026-03-04", "--org", "acme", in: project)
        #expect(again.status == 0)
        #expect(again.stdout.contains("1 succeeded, 0 failed, 2 existed already"), "\(again.stdout)")
        #expect(again.stdout.contains("2026-03-02T02:30:00Z  exists already (succeeded); left as it is"))

        let backwards = try await sluice("backfill", "genai_costs_daily", "--from", "2026-03-04", "--to", "2026-03-01", in: project)
        #expect(backwards.status == 2)
        #expect(backwards.stderr.contains("--from 2026-03-04 is after --to 2026-03-01"))
        let badDate = try await sluice("backfill", "genai_costs_daily", "--from", "March", "--to", "2026-03-01", in: project)
        #expect(badDate.status == 2)
        #expect(badDate.stderr.contains("--from takes a YYYY-MM-DD date, not 'March'"))
    }

    @Test func aBackfillOfAPipelineThatDecryptsCredentialsNeedsTheKeysAndCreatesNothingWithout() async throws {
        let project = try exampleProject()
        defer { try? FileManager.default.removeItem(at: project) }
        let environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("SLUICE_KEY") }
        let refused = try await run(
            sluiceBinary, ["backfill", "openai_usage_api", "--from", "2026-03-01", "--to", "2026-03-01", "--org", "acme"],
            in: project, environment: environment)
        #expect(refused.status == 1)
        #expect(
            refused.stderr.contains(
                "sluice backfill: pipeline 'openai_usage_api' decrypts credentials, and there are no keys (give --keyring, or set SLUICE_KEYRING or the passphrase variables)"
            ),
            "\(refused.stdout)\(refused.stderr)")
        #expect(try await sluice("runs", "list", "--org", "acme", in: project).stdout == "no runs yet\n")
    }

    @Test func theSchedulerStopsOnSIGTERM() async throws {
        let project = try exampleProject()
        defer { try? FileManager.default.removeItem(at: project) }
        let scheduler = try await LongRunningCommand.start(["scheduler", "--org", "acme", "pipelines/openai_usage_api.yml"], in: project)
        defer { scheduler.stop() }
        #expect(scheduler.firstLine == "sluice scheduler: scheduling for org(s) acme\n")
        let (status, rest) = try await scheduler.terminate()
        #expect(status == 0)
        #expect(rest == "sluice scheduler: stopped\n")
    }
}
