import Foundation
import Testing

@testable import SluiceSecrets

/// Values and metadata are checked before anything is sealed; messages never hold the value.
struct ProviderTests {
    func code(_ provider: CredentialProvider, _ value: String) -> SecretsError.Code? {
        secretsErrorCode { try provider.check(SecretBytes(utf8: value)) }
    }

    @Test func emptyAndWhitespaceValuesAreRefusedForEveryProvider() {
        for provider in CredentialProvider.allCases {
            for value in ["", " ", "\n", "\t \r\n", "\u{00A0}\u{2003}", "\u{3000}"] {
                #expect(code(provider, value) == .valueEmpty, "\(provider) \(value.debugDescription)")
            }
        }
    }

    @Test func openAIKeysStartWithSkAndHaveALongTail() {
        #expect(code(.openai, openAIKey) == nil)
        #expect(code(.openai, "sk-abcdefghijklmnopqrstuvwxyz") == nil)
        #expect(code(.openai, "pk-abcdefghijklmnopqrstuvwxyz") == .valueFormat)
        #expect(code(.openai, "sk-short") == .valueFormat)
        #expect(code(.openai, "sk-abcdefghij klmnopqrstuvwxyz") == .valueFormat)
        #expect(code(.openai, "sk-abcdefghijklmnopqrstuvwxyz\n") == .valueFormat)
        #expect(code(.openai, anthropicKey) == .valueFormat)
        #expect(code(.openai, "sk-" + String(repeating: "a", count: 600)) == .valueFormat)
    }

    @Test func anthropicKeysStartWithSkAnt() {
        #expect(code(.anthropic, anthropicKey) == nil)
        #expect(code(.anthropic, openAIKey) == .valueFormat)
        #expect(code(.anthropic, "sk-ant-tooshort") == .valueFormat)
        #expect(code(.anthropic, "sk-ant-api03-abcdefghijklmnopqrstu$wxyz") == .valueFormat)
    }

    @Test func gcpValuesAreServiceAccountFilesWithTheirRequiredFields() throws {
        #expect(code(.gcp, serviceAccountJSON) == nil)
        #expect(code(.gcp, "not json") == .valueFormat)
        #expect(code(.gcp, "[1, 2]") == .valueFormat)
        var object = try #require(try JSONSerialization.jsonObject(with: Data(serviceAccountJSON.utf8)) as? [String: Any])
        func variant(_ change: (inout [String: Any]) -> Void) -> String {
            var copy = object
            change(&copy)
            return String(decoding: try! JSONSerialization.data(withJSONObject: copy), as: UTF8.self)
        }
        #expect(code(.gcp, variant { $0["type"] = "authorized_user" }) == .valueFormat)
        #expect(code(.gcp, variant { $0["type"] = nil }) == .valueFormat)
        for field in ["project_id", "private_key_id", "private_key", "client_email", "client_id", "token_uri"] {
            do {
                try CredentialProvider.gcp.check(SecretBytes(utf8: variant { $0[field] = nil }))
                Issue.record("accepted a service account without \(field)")
            } catch {
                #expect(error.code == .valueFormat)
                #expect(error.message.contains("\"\(field)\""))
            }
            #expect(code(.gcp, variant { $0[field] = "  " }) == .valueFormat, "blank \(field)")
        }
        #expect(code(.gcp, variant { $0["private_key"] = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" }) == .valueFormat)
        #expect(code(.gcp, variant { $0["client_email"] = "loader" }) == .valueFormat)
        #expect(code(.gcp, variant { $0["token_uri"] = "http://oauth2.googleapis.com/token" }) == .valueFormat)
        object["universe_domain"] = "googleapis.com"
        #expect(code(.gcp, variant { _ in }) == nil)
    }

    @Test func genericTakesAnyNonEmptyValue() {
        #expect(code(.generic, "p@ss w0rd") == nil)
        #expect(code(.generic, "postgres://u:p@host/db") == nil)
        #expect(secretsErrorCode { try CredentialProvider.generic.check(SecretBytes([0xFF, 0x00, 0x41])) } == nil)
    }

    @Test func unknownProvidersAreRefused() {
        #expect(secretsErrorCode { _ = try CredentialProvider(named: "aws") } == .providerUnknown)
        #expect(secretsErrorCode { _ = try CredentialProvider(named: "OpenAI") } == .providerUnknown)
        #expect(secretsErrorCode { _ = try CredentialProvider(named: "") } == .providerUnknown)
    }

    @Test func formatErrorsNeverContainTheValue() {
        let values: [(CredentialProvider, String)] = [
            (.openai, "sk-ABCDEFGHIJKLMNOPQRSTUVWXYZ012345 678"),
            (.openai, "xk-ABCDEFGHIJKLMNOPQRSTUVWXYZ012345678"),
            (.anthropic, "sk-ant-ABCDEFGHIJKLMNOPQRSTUVWX!YZ012345678"),
            (.gcp, #"{"type": "service_account", "private_key": "SECRETSECRETSECRET"}"#),
        ]
        for (provider, value) in values {
            do {
                try provider.check(SecretBytes(utf8: value))
                Issue.record("accepted \(provider)")
            } catch {
                #expect(!error.message.contains("ABCDEFGHIJ"))
                #expect(!error.message.contains("SECRETSECRET"))
            }
        }
    }

    @Test func metadataFollowsTheProvidersSchemaAndSizeLimit() throws {
        func code(_ provider: CredentialProvider, _ text: String?) -> SecretsError.Code? {
            secretsErrorCode { _ = try CredentialMetadata.validate(text, provider: provider) }
        }
        #expect(try CredentialMetadata.validate(nil, provider: .openai) == "{}")
        #expect(
            try CredentialMetadata.validate(#"{"owner": "data-team", "organization": "org-42"}"#, provider: .openai)
                == #"{"organization":"org-42","owner":"data-team"}"#)
        #expect(code(.openai, #"{"organization": "42"}"#) == .metadataInvalid)
        #expect(code(.openai, #"{"project": "proj_abc", "admin": true}"#) == nil)
        #expect(code(.openai, #"{"admin": "yes"}"#) == .metadataInvalid)
        #expect(code(.openai, #"{"workspace": "w"}"#) == .metadataInvalid)
        #expect(code(.anthropic, #"{"workspace": "w"}"#) == nil)
        #expect(code(.gcp, #"{"project_id": "p", "scopes": "bigquery"}"#) == nil)
        #expect(code(.gcp, #"{"owner": 5}"#) == .metadataInvalid)
        #expect(code(.generic, #"{"anything": "goes", "count": 3, "flag": false}"#) == nil)
        #expect(code(.generic, #"{"nested": {"a": 1}}"#) == .metadataInvalid)
        #expect(code(.generic, #"{"list": [1]}"#) == .metadataInvalid)
        #expect(code(.generic, #"{"Bad-Name": "x"}"#) == .metadataInvalid)
        #expect(code(.generic, "[1]") == .metadataInvalid)
        #expect(code(.generic, "{not json") == .metadataInvalid)
        #expect(code(.generic, #"{"owner": "\#(String(repeating: "x", count: 300))"}"#) == .metadataInvalid)
        let big = "{" + (0..<400).map { #""field_\#($0)": "0123456""# }.joined(separator: ",") + "}"
        #expect(code(.generic, big) == .metadataTooLarge)
    }
}
