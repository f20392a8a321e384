import Foundation
import Testing

@testable import SluiceModel

/// What the model knows of invariant 10 (tenants are confined): which addresses are not
/// public, what `network.allow` and `inputs.root` in sluice.yml accept, and the lint rules that
/// keep a run's caller from choosing a credential or (quietly) a host.
struct TenantConfinementTests {
    // MARK: Addresses

    @Test func nonPublicAddressesAreKnownInEveryForm() throws {
        let restricted = [
            "127.0.0.1", "127.1.2.3", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254",
            "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fc00::1", "fd00:ec2::254",
            "::ffff:127.0.0.1", "::ffff:7f00:1", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "2002:7f00:1::", "ff02::1",
            "2001:db8::1", "2001::1",
        ]
        for text in restricted {
            let address = try #require(IPAddress(text), "\(text)")
            #expect(address.restrictedKind != nil, "\(text) counts as public")
        }
        for text in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "172.32.0.1", "100.128.0.1"] {
            let address = try #require(IPAddress(text), "\(text)")
            #expect(address.restrictedKind == nil, "\(text): \(address.restrictedKind ?? "")")
        }
        #expect(IPAddress("169.254.169.254")?.restrictedKind == "link-local")
        #expect(IPAddress("[::ffff:127.0.0.1]")?.restrictedKind == "loopback")
    }

    @Test func onlyPlainSpellingsParseAsAddresses() {
        // Resolvers take these too; a URL's host is checked as what the resolver makes of it.
        for text in ["2130706433", "0x7f.1", "0177.0.0.1", "127.1", "1.2.3.4.5", "256.1.1.1", "::1::", "1:2:3:4:5:6:7:8:9", "", "[::1"] {
            #expect(IPAddress(text) == nil, "\(text)")
        }
        #expect(IPAddress("::ffff:127.0.0.1")?.description == "::ffff:7f00:1")
        #expect(IPAddress("2001:DB8:0:0:0:0:0:1")?.description == "2001:db8::1")
        #expect(IPAddress("10.0.0.1")?.isIPv4 == true)
    }

    @Test func theAllowListTakesAddressesBlocksAndHostNames() throws {
        let allow = try NetworkAllowList(["127.0.0.1", "10.0.0.0/8", "fd00::/8", "Internal.Example.com."])
        #expect(allow.allows(host: "x", address: IPAddress("127.0.0.1")!))
        #expect(allow.allows(host: "x", address: IPAddress("::ffff:127.0.0.1")!))
        #expect(!allow.allows(host: "x", address: IPAddress("127.0.0.2")!))
        #expect(allow.allows(host: "x", address: IPAddress("10.200.3.4")!))
        #expect(allow.allows(host: "x", address: IPAddress("fd12::1")!))
        #expect(allow.allows(host: "internal.example.com", address: IPAddress("192.168.1.1")!))
        #expect(!allow.allows(host: "other.example.com", address: IPAddress("192.168.1.1")!))
        #expect(!allow.allows(host: "x", address: IPAddress("::1")!))
        for bad in ["10.0.0.0/33", "10.0.0.0/", "http://10.0.0.1", "a b", "*.example.com"] {
            #expect(throws: NetworkAllowList.EntryError.self, "\(bad)") { try NetworkAllowList([bad]) }
        }
    }

    // MARK: Settings

    func project(_ settings: String) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-settings-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Data(settings.utf8).write(to: folder.appendingPathComponent("sluice.yml"))
        return folder
    }

    func load(_ settings: String, environment: [String: String] = [:]) async throws -> ProjectSettings {
        let folder = try project(settings)
        defer { try? FileManager.default.removeItem(at: folder) }
        return try await ProjectSettings.load(projectRoot: folder, environment: environment)
    }

    func error(_ settings: String, environment: [String: String] = [:]) async -> String {
        do {
            _ = try await load(settings, environment: environment)
            return "no error"
        } catch {
            return String(describing: error)
        }
    }

    @Test func inputRootsAndAllowedAddressesComeFromTheFileOrTheEnvironment() async throws {
        let settings = try await load(
            """
            inputs: { root: "data/{org}" }
            network:
              allow: [127.0.0.1, 10.0.0.0/8, internal.example.com]
            """)
        #expect(settings.inputRoot == "data/{org}")
        #expect(settings.inputRoot(for: "acme") == "data/acme")
        #expect(settings.networkAllow == (try NetworkAllowList(["127.0.0.1", "10.0.0.0/8", "internal.example.com"])))

        let overridden = try await load(
            "inputs:\n  root: data/{org}\n",
            environment: ["SLUICE_INPUTS_ROOT": "/srv/exports/{org}", "SLUICE_NETWORK_ALLOW": "::1, 192.168.0.0/16"])
        #expect(overridden.inputRoot(for: "globex") == "/srv/exports/globex")
        #expect(overridden.networkAllow == (try NetworkAllowList(["::1", "192.168.0.0/16"])))
        #expect(try await load("orgs: [acme]\n").networkAllow.isEmpty)
        #expect(try await load("orgs: [acme]\n").inputRoot == nil)
    }

    @Test func badInputRootsAndAllowEntriesAreRefusedWhereTheyAreWritten() async {
        #expect(
            await error("inputs: { root: \"data/{org}x\" }\n").hasPrefix(
                "sluice.yml:1:17: inputs.root: 'data/{org}x': {org} must be a whole folder name"))
        #expect(await error("inputs: { root: .sluice/inputs }\n").hasPrefix("sluice.yml:1:17: inputs.root: '.sluice/inputs' is inside .sluice/"))
        #expect(await error("inputs: { path: data }\n").hasPrefix("sluice.yml:1:11: unknown setting 'inputs.path'; inputs has root"))
        #expect(await error("inputs: data\n").hasPrefix("sluice.yml:1:9: inputs must be a mapping (root), not a string"))
        #expect(await error("network: { allow: 10.0.0.0/8 }\n").hasPrefix("sluice.yml:1:19: network.allow must be a list"))
        #expect(
            await error("network: { allow: [10.0.0.0/8, \"10.0.0.0/40\"] }\n")
                == "sluice.yml:1:32: network.allow: '10.0.0.0/40' is not an address block: write it like 10.0.0.0/8 or fd00::/8")
        #expect(await error("network: { allow: [\"http://x\"] }\n").hasPrefix("sluice.yml:1:20: network.allow: 'http://x' is not an address"))
        #expect(await error("orgs: [acme]\n", environment: ["SLUICE_NETWORK_ALLOW": "10.0.0.0/99"]).hasPrefix("SLUICE_NETWORK_ALLOW: '10.0.0.0/99'"))
        #expect(await error("orgs: [acme]\n", environment: ["SLUICE_INPUTS_ROOT": "x/{org}{org}"]).hasPrefix("SLUICE_INPUTS_ROOT: "))
    }

    // MARK: Lint

    @Test func aCredentialIsAlwaysWrittenInThePipeline() {
        for credential in ["${{ params.name }}", "webhooks/${{ params.name }}", "${{ env.CREDENTIAL }}", "${{ run.org }}/key"] {
            let result = loadPipeline(
                """
                pipeline: test_pipeline
                defaults: { timeout: 5m }
                params:
                  name: { type: string, default: openai/admin_key }
                steps:
                  - id: key
                    uses: kms_decrypt
                    with: { credential: "\(credential)", as: the_key }
                """)
            let found = result.diagnostics.filter { $0.rule == .invalidValue }.map(\.description)
            #expect(found.count == 1, "\(credential): \(result.diagnostics)")
            #expect(found.first?.contains("'credential' must be a literal credential name") == true, "\(found)")
        }
    }

    @Test func aParamDrivenURLWarnsOnlyWhereNoErrorSaysMore() {
        func rules(_ with: String) -> [LintRule] {
            loadPipeline(
                """
                pipeline: test_pipeline
                defaults: { timeout: 5m }
                params:
                  hook: { type: string, default: "https://hooks.example.com/x" }
                steps:
                  - id: key
                    uses: kms_decrypt
                    with: { credential: openai/admin_key, as: the_key }
                  - id: tell
                    uses: notify
                    needs: [key]
                    with: { \(with) }
                """
            ).diagnostics.map(\.rule).filter { $0 == .paramDrivenURL || $0 == .untrustedSecretDestination }
        }
        #expect(rules("url: \"${{ params.hook }}\"") == [.paramDrivenURL])
        #expect(rules("url: \"${{ params.hook || 'https://hooks.example.com/y' }}\"") == [.paramDrivenURL])
        // The step carries env.HOOK (a webhook URL can be a secret): an error says more.
        #expect(rules("url: \"${{ env.HOOK || params.hook }}\"") == [.untrustedSecretDestination])
        #expect(rules("url: \"${{ env.HOOK }}/${{ run.org }}\"") == [])
        #expect(rules("url: \"https://hooks.example.com/${{ params.hook }}\"") == [.paramDrivenURL])
        // A param in a message decides nothing about where the request goes.
        #expect(rules("url: \"${{ env.HOOK }}\", link: \"${{ params.hook }}\"") == [])
        #expect(LintRule.paramDrivenURL.defaultSeverity == .warning)
    }

    @Test func aParamPatternMatchesUpToTheVeryEnd() {
        let result = loadPipeline(
            """
            pipeline: test_pipeline
            defaults: { timeout: 5m }
            params:
              file: { type: string, pattern: ".+\\\\.csv", default: "x.csv\\n" }
            steps:
              - id: load
                uses: ingest
                with: { source: { format: csv, path: "${{ params.file }}" }, table: events_raw, schema: schemas/events_raw.json }
            """)
        let found = result.diagnostics.filter { $0.rule == .invalidParam }.map(\.message)
        #expect(found == ["param 'file': 'x.csv\\n' does not match its pattern .+\\.csv"], "\(result.diagnostics)")
    }
}
