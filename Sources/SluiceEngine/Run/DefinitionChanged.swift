import SluiceStorage

/// A resume refused because the run's pipeline is no longer what the run was created from:
/// its pipeline file, a schema or a procedure it uses changed, was added or was removed. The
/// earlier steps' staging and outputs came from the old definition, so continuing from them
/// with the new one is a choice the user makes (`sluice run --resume RUN --force`).
public struct DefinitionChanged: Error, Sendable, Hashable, CustomStringConvertible {
    /// The run that was to be resumed.
    public var runID: String
    /// Its version, as stored with it.
    public var recorded: PipelineVersion
    /// The pipeline's version now.
    public var current: PipelineVersion
    /// What differs, in path order.
    public var changes: [PipelineFileChange]

    public init(runID: String, recorded: PipelineVersion, current: PipelineVersion, changes: [PipelineFileChange]) {
        self.runID = runID
        self.recorded = recorded
        self.current = current
        self.changes = changes
    }

    public var description: String {
        """
        run \(runID) ran version \(recorded.short) of its pipeline, which is now version \(current.short): \
        \(changes.map(\.description).joined(separator: ", "))
        """
    }
}
