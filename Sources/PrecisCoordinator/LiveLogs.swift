import Foundation
import PrecisTrain

/// What a run leaves on disk as it goes, for people watching it: `output_dir/trainer_state.json`
/// rewritten (atomically) at every logging step and evaluation, so a run stopped at any point keeps
/// its log_history; and, with `report_to: tensorboard`, the scalars appended to an event file in
/// `logging_dir`. A failure to write either is logged once and does not stop training.
struct LiveLogs {
    /// The event file, opened at the first logged step.
    var tensorBoard: TensorBoardWriter?
    /// TensorBoard failed once (the folder or file could not be written): not tried again.
    var tensorBoardFailed = false
    /// trainer_state.json failed: said once.
    var stateFailureLogged = false
}

extension Coordinator {
    /// A logging step or an evaluation at `step` was added to the log history: write it out.
    func publishLogs(step: Int, scalars: [(tag: String, value: Double)]) {
        let dir = cfg.training.outputDir
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try trainerState(globalStep: step).write(to: (dir as NSString).appendingPathComponent("trainer_state.json"))
        } catch {
            if !liveLogs.stateFailureLogged { log("warning: \(dir)/trainer_state.json not written: \(error)") }
            liveLogs.stateFailureLogged = true
        }
        guard cfg.training.reportsToTensorBoard, !liveLogs.tensorBoardFailed else { return }
        do {
            if liveLogs.tensorBoard == nil {
                let logDir = cfg.training.loggingDir ?? TensorBoardWriter.defaultLoggingDir(outputDir: dir)
                let writer = try TensorBoardWriter(directory: logDir)
                liveLogs.tensorBoard = writer
                log("TensorBoard: \(writer.path)")
            }
            try liveLogs.tensorBoard?.add(scalars, step: step)
        } catch {
            log("warning: TensorBoard logging stopped: \(error)")
            liveLogs.tensorBoardFailed = true
            liveLogs.tensorBoard = nil
        }
    }
}
