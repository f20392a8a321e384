import Foundation
import SluiceEngine
import SluiceProviders

@testable import SluiceModel

/// The test target's fixture folder (copied as a resource).
let fixtures: URL = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!

/// A fresh folder under the system temp directory, removed by the caller with `remove()`.
struct TemporaryProject {
    let root: URL

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    func write(_ path: String, _ content: String) throws {
        try write(path, Data(content.utf8))
    }

    func write(_ path: String, _ data: Data) throws {
        let url = root.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: url)
    }

    func remove() {
        try? FileManager.default.removeItem(at: root)
    }
}

/// Loads YAML text, failing the test on a diagnostic.
func yaml(_ text: String, file: String = "test.yml") throws -> YAMLNode {
    switch YAMLLoader().load(Data(text.utf8), file: file) {
    case .success(let node?): return node
    case .success(nil): throw Diagnostic(.notAMapping, at: .start(of: file), "empty")
    case .failure(let diagnostic): throw diagnostic
    }
}

/// Loads a pipeline from text with the built-in registry.
func loadPipeline(_ text: String, file: String = "pipelines/test_pipeline.yml") -> PipelineLoader.Result {
    PipelineLoader(registry: ProcessorEnvironment.standard.registry).load(Data(text.utf8), file: file)
}
