import ArgumentParser
import Foundation
import SluiceModel

extension Sluice {
    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a new Sluice project with a working example pipeline that lints clean.")

        @Argument(help: "Folder to create the project in (created if missing).")
        var directory: String

        func run() throws {
            let folder = URL(fileURLWithPath: directory)
            let scaffold = ProjectScaffold()
            let clashes = scaffold.files.keys.sorted().filter {
                FileManager.default.fileExists(atPath: folder.appendingPathComponent($0).path)
            }
            guard clashes.isEmpty else {
                writeError("sluice init: \(directory) already has \(clashes.joined(separator: ", ")); nothing was written")
                throw ExitCode(1)
            }
            for (path, content) in scaffold.files.sorted(by: { $0.key < $1.key }) {
                let url = folder.appendingPathComponent(path)
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try Data(content.utf8).write(to: url)
                print("created \(directory)/\(path)")
            }
            print(
                """

                Next: cd \(directory) && sluice lint && sluice plan \(ProjectScaffold.pipelineID)
                """)
        }
    }
}
