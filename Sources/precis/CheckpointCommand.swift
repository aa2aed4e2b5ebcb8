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
    enum Failure: Error, CustomStringConvertible {
        case nonFinite(file: String, tensor: String, index: Int, value: Float)
        case negativeSecondMoment(tensor: String, index: Int, value: Float)
        var description: String {
            switch self {
            case let .nonFinite(file, tensor, index, value): return "\(file): tensor \(tensor) holds \(value) at index \(index), not a finite number"
            case let .negativeSecondMoment(tensor, index, value): return "optimizer.safetensors: exp_avg_sq.\(tensor) holds \(value) at index \(index), below zero"
            }
        }
    }

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
        try checkFinite(model.params.pointer, model: model, file: "model.safetensors", prefix: "")
        var moments = ""
        let optimizer = (dir as NSString).appendingPathComponent("optimizer.safetensors")
        if FileManager.default.fileExists(atPath: optimizer) {
            let opt = try SafeTensorsFile(path: optimizer)
            let m = FloatBuffer(count: count), v = FloatBuffer(count: count)
            for e in model.table.entries {
                try opt.readFloats("exp_avg." + e.name, into: m.pointer + e.offset, expectShape: e.shape)
                try opt.readFloats("exp_avg_sq." + e.name, into: v.pointer + e.offset, expectShape: e.shape)
            }
            try checkFinite(m.pointer, model: model, file: "optimizer.safetensors", prefix: "exp_avg.")
            try checkFinite(v.pointer, model: model, file: "optimizer.safetensors", prefix: "exp_avg_sq.")
            for e in model.table.entries {
                for i in 0..<e.count where v.pointer[e.offset + i] < 0 {
                    throw Failure.negativeSecondMoment(tensor: e.name, index: i, value: v.pointer[e.offset + i])
                }
            }
            moments = ", AdamW moments finite"
        }
        let digest = Hashing.sha256Hex(Data(bytes: model.params.pointer, count: count * MemoryLayout<Float>.size))
        return CheckpointCheck(line: "\(dir): \(step), \(count) parameters finite\(moments), parameters sha256 \(digest)")
    }

    static func checkFinite(_ p: UnsafeMutablePointer<Float>, model: any Seq2SeqModel, file: String, prefix: String) throws {
        for e in model.table.entries {
            for i in 0..<e.count where !p[e.offset + i].isFinite {
                throw Failure.nonFinite(file: file, tensor: prefix + e.name, index: i, value: p[e.offset + i])
            }
        }
    }
}
