import Foundation
import SluiceModel
import SluiceStorage

/// A kind of record steps keep with their run (a data test's result, a quarantined row): its
/// name in the run store and, for records that replace earlier ones, their key.
public struct StepRecordKind<Record: Codable & Sendable>: Sendable {
    public let name: String
    /// A record saved again under the same key replaces the step's earlier one; nil keys add.
    let key: @Sendable (Record) -> String?

    public init(_ name: String, key: @escaping @Sendable (Record) -> String? = { _ in nil }) {
        self.name = name
        self.key = key
    }
}

/// What a step that declares `stepRecords` keeps with its run, beyond its outputs. The
/// processor names the kind; the run store keeps the records as JSON and knows nothing of them.
public struct StepRecorder: Sendable {
    let store: any RunStore
    let runID: String
    let stepID: String

    public init(store: any RunStore, runID: String, stepID: String) {
        self.store = store
        self.runID = runID
        self.stepID = stepID
    }

    /// The records of `kind` the org's runs created since `since` kept (this run's included).
    public func orgRecords<Record>(_ kind: StepRecordKind<Record>, org: String, since: Date) async throws -> [Record] {
        let decoder = JSONDecoder()
        return try await store.stepRecords(org: org, kind: kind.name, since: since).map { try decoder.decode(Record.self, from: $0.json) }
    }

    public func keep<Record>(_ records: [Record], as kind: StepRecordKind<Record>) async throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let bodies = try records.map { StepRecordBody(key: kind.key($0), json: try encoder.encode($0)) }
        try await store.saveStepRecords(runID, step: stepID, kind: kind.name, bodies)
    }
}

extension RunStore {
    /// The run's records of `kind`, every step's, in the order they were first kept.
    public func records<Record>(of runID: String, _ kind: StepRecordKind<Record>) async throws -> [Record] {
        let decoder = JSONDecoder()
        return try await stepRecords(of: runID, kind: kind.name).map { try decoder.decode(Record.self, from: $0.json) }
    }
}
