import ArgumentParser
import Foundation
import PrecisCore
import PrecisModels
import PrecisTrain

/// `precis checkpoint verify DIR...`: loads checkpoints (or model folders) the way a resuming
/// coordinator does and checks what it loads.
struct CheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint", abstract: "Checkpoints and model folders.", subcommands: [Verify.self])

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify",
            abstract: "Load checkpoints or model folders: manifest (sizes, SHA-256), weights, AdamW moments; every value finite. Prints one line per folder with a digest of the parameters.")

        @Argument(help: "Checkpoint folders (checkpoint-<step>, with manifest.json) or model folders (config.json + model.safetensors).")
        var folders: [String]

        func run() throws {
            var failed = 0
            for dir in folders {
                // A killed writer's `NAME.tmp-PID` (its process gone) is not part of the checkpoint.
                for p in AtomicFile.removeStaleTemporaries(in: dir) {
                    Stdio.writeStderr("removed \(p): the temporary file of a write its process (gone) never finished\n")
                }
                do {
                    print(try CheckpointCheck.verify(dir).line)
                } catch {
                    Stdio.writeStderr("error: \(dir): \(error)\n")
                    failed += 1
                }
            }
            if failed > 0 { throw ExitCode(1) }
        }
    }
}

/// What `checkpoint verify` found in one folder.
struct CheckpointCheck {
    var line: String

    /// Verifies the manifest when there is one, loads the weights (and the moments of a checkpoint)
    /// and checks every value; the line names the step, the parameter count and the SHA-256 of the
    /// parameters' bytes in table order (equal digests: bitwise-equal parameters).
    static func verify(_ dir: String) throws -> CheckpointCheck {
        var step: String = "model folder"
        let manifest = (dir as NSString).appendingPathComponent(CheckpointStore.manifestName)
        if FileManager.default.fileExists(atPath: manifest) {
            try CheckpointStore(outputDir: (dir as NSString).deletingLastPathComponent).verify(dir)
            step = "step \(try CheckpointStore.readManifest(dir).step)"
        }
        let model = try ModelFolder.load(dir).model
        let count = model.table.count
        try OptimizerMoments.checkFinite(model.params.pointer, table: model.table, file: "model.safetensors", prefix: "")
        var moments = ""
        if FileManager.default.fileExists(atPath: (dir as NSString).appendingPathComponent(OptimizerMoments.fileName)) {
            _ = try OptimizerMoments.read(checkpoint: dir, table: model.table)
            moments = ", AdamW moments finite"
        }
        let digest = Hashing.sha256Hex(Data(bytes: model.params.pointer, count: count * MemoryLayout<Float>.size))
        return CheckpointCheck(line: "\(dir): \(step), \(count) parameters finite\(moments), parameters sha256 \(digest)")
    }
}
