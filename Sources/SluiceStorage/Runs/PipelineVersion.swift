/// What a run's pipeline was made of when the run was created: the SHA-256 of each file it was
/// made from (the pipeline file, the schema files of the tables it reads and writes, the
/// procedures its steps run), and one hash over all of them. Two runs with one `hash` ran the
/// same definition; when the hashes differ, `changes(since:)` names the files that differ.
/// SluiceEngine computes it (`PipelineVersion.of`); the run store keeps it with the run.
public struct PipelineVersion: Sendable, Hashable, Codable {
    /// SHA-256, hex, over every file's path and hash in path order.
    public var hash: String
    /// Each file's SHA-256, hex, by its path relative to the project (`pipelines/x.yml`).
    public var files: [String: String]

    public init(hash: String, files: [String: String]) {
        self.hash = hash
        self.files = files
    }

    /// The first 12 hex digits of `hash`: what `sluice runs show` prints, as git prints a commit.
    public var short: String { String(hash.prefix(12)) }

    /// The files that differ between `earlier` and this version, in path order: changed (both
    /// have it, with other contents), added (only this one has it) or removed.
    public func changes(since earlier: PipelineVersion) -> [PipelineFileChange] {
        Set(files.keys).union(earlier.files.keys).sorted().compactMap { path in
            switch (earlier.files[path], files[path]) {
            case (let before?, let after?): before == after ? nil : PipelineFileChange(path: path, kind: .changed)
            case (nil, _?): PipelineFileChange(path: path, kind: .added)
            case (_?, nil): PipelineFileChange(path: path, kind: .removed)
            case (nil, nil): nil
            }
        }
    }
}

/// One file that differs between two versions of a pipeline.
public struct PipelineFileChange: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable, Codable {
        /// Both versions use the file; its contents differ.
        case changed
        /// Only the later version uses it (a step now writes a table with a schema, a new procedure).
        case added
        /// Only the earlier version used it (or it no longer exists).
        case removed
    }

    /// Relative to the project.
    public var path: String
    public var kind: Kind

    public init(path: String, kind: Kind) {
        self.path = path
        self.kind = kind
    }

    /// `pipelines/x.yml changed`.
    public var description: String { "\(path) \(kind.rawValue)" }
}
