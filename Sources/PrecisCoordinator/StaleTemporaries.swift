import Foundation
import PrecisCore

/// A coordinator killed while it wrote a file atomically (`trainer_state.json`, a checkpoint's
/// files, an evaluation's predictions) leaves `NAME.tmp-PID` behind. On start (and so on every
/// `--resume`) the coordinator removes those of its output folder and of the folders directly in it
/// (`checkpoint-N`, `eval-*`, `runs`) whose process is gone; nothing else is touched
/// (`AtomicFile.staleTemporaries` says exactly what counts).
enum StaleTemporaries {
    /// Removes them; returns the paths removed.
    static func clean(outputDir: String) -> [String] {
        var dirs = [outputDir]
        if let names = try? FileManager.default.contentsOfDirectory(atPath: outputDir) {
            for name in names.sorted() {
                let p = (outputDir as NSString).appendingPathComponent(name)
                var st = stat()
                // Folders only, never through a link (a link may point anywhere).
                if lstat(p, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR { dirs.append(p) }
            }
        }
        return dirs.flatMap { AtomicFile.removeStaleTemporaries(in: $0) }
    }
}
