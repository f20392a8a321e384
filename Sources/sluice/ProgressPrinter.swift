import Foundation
import SluiceEngine
import SluiceModel
import SluiceStorage
import Synchronization

/// Redraws a run's steps in place on a terminal while `sluice run` works.
final class ProgressPrinter: Sendable {
    private let state: Mutex<(progress: RunProgress, linesDrawn: Int)>

    init(_ plan: PipelinePlan) {
        state = Mutex((RunProgress(plan), 0))
    }

    func apply(_ event: RunEvent) {
        state.withLock { $0.progress.apply(event) }
        redraw()
    }

    func redraw() {
        let text = state.withLock { state -> String in
            let lines = state.progress.render()
            var text = state.linesDrawn > 0 ? "\u{1B}[\(state.linesDrawn)A" : ""
            // The lines carry step notes (failure reasons): escaped, unlike the cursor moves.
            for line in lines { text += "\u{1B}[2K" + printable(line) + "\n" }
            state.linesDrawn = lines.count
            return text
        }
        FileHandle.standardOutput.write(Data(text.utf8))
    }
}
