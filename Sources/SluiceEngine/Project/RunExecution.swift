/// Where the runs a process creates execute: the switch between one machine and many.
public enum RunExecution: Sendable, Hashable {
    /// In the process that creates them (`sluice serve`, `sluice scheduler`, `sluice backfill`
    /// each execute their own runs): the default, SQLite on one machine.
    case inProcess
    /// In `sluice worker` processes: runs are created pending and left for workers to claim,
    /// each held by a lease its worker renews; a worker that stops loses its lease, and another
    /// worker takes the run over.
    case workers
}
