import Foundation
import Testing
import PrecisCore
import PrecisTestSupport

/// `precis checkpoint verify`: a real process on real files — a model folder, a checkpoint with its
/// manifest, a corrupted file, a NaN among the weights.
@Suite struct CheckpointVerifyTests {
    func write(_ data: Data, _ path: String) throws { try data.write(to: URL(fileURLWithPath: path)) }

    /// A checkpoint folder from a model folder's files, with a manifest as CheckpointStore writes it.
    func checkpoint(from model: String, step: Int, in dir: String) throws -> String {
        let cp = dir + "/checkpoint-\(step)"
        try FileManager.default.createDirectory(atPath: cp, withIntermediateDirectories: true)
        var files: [String: [String: Any]] = [:]
        for name in ["config.json", "model.safetensors"] {
            let data = try Data(contentsOf: URL(fileURLWithPath: model + "/" + name))
            try write(data, cp + "/" + name)
            files[name] = ["size": data.count, "sha256": Hashing.sha256Hex(data)]
        }
        let manifest: [String: Any] = ["format": "precis-checkpoint-1", "step": step, "created": "2026-01-01T00:00:00Z", "files": files]
        try write(try JSONSerialization.data(withJSONObject: manifest), cp + "/manifest.json")
        return cp
    }

    /// The byte offset in a safetensors file of a trainable tensor's first value.
    func offsetOfAWeight(_ path: String) throws -> Int {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let n = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try #require(try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + n))) as? [String: Any])
        let name = try #require(header.keys.sorted().first { $0.contains("layers.0") && $0.hasSuffix(".weight") })
        let t = try #require(header[name] as? [String: Any])
        let offsets = try #require(t["data_offsets"] as? [Int])
        return 8 + n + offsets[0]
    }

    @Test func loadsModelFoldersAndCheckpointsAndNamesWhatIsWrong() throws {
        let dir = TestData.tempDir("cli")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = dir + "/model"
        #expect(try CLI.run(["init", "--config", "bart-tiny", "--out", model, "--seed", "3"]).status == 0)
        let cp = try checkpoint(from: model, step: 7, in: dir)

        let ok = try CLI.run(["checkpoint", "verify", cp, model])
        #expect(ok.status == 0, "\(ok.stderr)")
        let lines = ok.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 2)
        #expect(lines[0].hasPrefix("\(cp): step 7, ") && lines[0].contains(" parameters finite, parameters sha256 "))
        #expect(lines[1].hasPrefix("\(model): model folder, "))
        // The same parameters: the same digest.
        #expect(lines[0].split(separator: " ").last == lines[1].split(separator: " ").last)

        // One byte changed in the checkpoint: its manifest says so, naming the file.
        let weights = cp + "/model.safetensors"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: weights))
        let at = try offsetOfAWeight(weights)
        bytes[at] ^= 0x01
        try write(bytes, weights)
        let corrupt = try CLI.run(["checkpoint", "verify", cp])
        #expect(corrupt.status == 1)
        #expect(corrupt.stderr.contains("model.safetensors") && corrupt.stderr.contains("sha256"), "\(corrupt.stderr)")

        // A NaN among the model folder's weights (no manifest to catch it): named with its tensor.
        var folder = try Data(contentsOf: URL(fileURLWithPath: model + "/model.safetensors"))
        let nan = Float.nan.bitPattern
        for i in 0..<4 { folder[at + i] = UInt8(truncatingIfNeeded: nan >> (8 * UInt32(i))) }
        try write(folder, model + "/model.safetensors")
        let bad = try CLI.run(["checkpoint", "verify", model])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("not a finite number") && bad.stderr.contains("layers.0"), "\(bad.stderr)")
    }

    /// A coordinator killed while writing leaves `NAME.tmp-PID` in a checkpoint folder: `checkpoint
    /// verify` removes it (its process is gone), leaves a live writer's and everything else, and
    /// the checkpoint verifies.
    @Test func removesTheStaleTemporariesOfAKilledWriter() throws {
        let dir = TestData.tempDir("cli")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = dir + "/model"
        #expect(try CLI.run(["init", "--config", "bart-tiny", "--out", model, "--seed", "3"]).status == 0)
        let cp = try checkpoint(from: model, step: 5, in: dir)
        // A writer that really ran and was killed -9 before its rename: its pid is gone.
        let writer = Process()
        writer.executableURL = URL(fileURLWithPath: "/bin/sh")
        writer.arguments = ["-c", "printf '{\"global_step\": 5' > \"$0/trainer_state.json.tmp-$$\"; kill -9 $$", cp]
        try writer.run()
        writer.waitUntilExit()
        let stale = cp + "/trainer_state.json.tmp-\(writer.processIdentifier)"
        #expect(FileManager.default.fileExists(atPath: stale), "the killed writer left no file")
        let live = cp + "/manifest.json.tmp-\(getpid())"   // this test process is alive
        try write(Data("partial".utf8), live)

        let r = try CLI.run(["checkpoint", "verify", cp])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("removed \(stale)"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: stale))
        #expect(FileManager.default.fileExists(atPath: live), "a live process's temporary was removed")
        for name in ["manifest.json", "config.json", "model.safetensors"] {
            #expect(FileManager.default.fileExists(atPath: cp + "/" + name))
        }
    }
}
