import Foundation
import Testing
import PrecisCore
import PrecisModels
import PrecisTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A model folder's settings files are read only when they are small regular files. One that is
/// there but is a FIFO or a link to a device is an error naming it; before, an unreadable
/// generation_config.json was passed over and the settings silently taken from config.json.
@Suite struct ModelFolderFileTests {
    @Test func unreadableSettingsFilesAreErrorsNamingThem() throws {
        let dir = TestData.tempDir("models")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try ModelPresets.model("bart-tiny")
        model.initializeWeights(seed: 1)
        try ModelFolder.save(model, to: dir)
        let generation = dir + "/generation_config.json", config = dir + "/config.json"
        _ = try GenerationSettings.load(folder: dir)

        try FileManager.default.removeItem(atPath: generation)
        try FileManager.default.createSymbolicLink(atPath: generation, withDestinationPath: "/dev/zero")
        #expect(throws: ModelError.unreadableFile(path: generation, reason: "not a regular file")) {
            _ = try GenerationSettings.load(folder: dir)
        }
        // Missing, it falls back to config.json's generation keys, as transformers does.
        try FileManager.default.removeItem(atPath: generation)
        _ = try GenerationSettings.load(folder: dir)

        try FileManager.default.removeItem(atPath: config)
        #expect(mkfifo(config, 0o600) == 0)
        #expect(throws: ModelError.unreadableFile(path: config, reason: "not a regular file")) {
            _ = try ModelRegistry.model(configFile: config)
        }
        try FileManager.default.removeItem(atPath: config)
        #expect(throws: ModelError.missingFile(path: config)) { _ = try ModelRegistry.model(configFile: config) }
    }

    /// The weight files, in each format a folder may hold, and a tokenizer file being copied into a
    /// folder: a FIFO in the file's place is refused at once (opening it would wait for a writer for
    /// ever) and a link to a device is not read; the error names the file.
    @Test func weightAndTokenizerFilesThatAreNotRegularAreRefused() throws {
        let dir = TestData.tempDir("models")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try ModelPresets.model("bart-tiny")
        model.initializeWeights(seed: 1)
        try ModelFolder.save(model, to: dir)
        try FileManager.default.removeItem(atPath: dir + "/model.safetensors")
        for name in ["model.safetensors", "pytorch_model.bin"] {
            let path = dir + "/" + name
            for special in ["fifo", "/dev/zero"] {
                if special == "fifo" { #expect(mkfifo(path, 0o600) == 0) }
                else { try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: special) }
                do {
                    _ = try ModelFolder.loadWeights(into: model, folder: dir)
                    Issue.record("\(name) as \(special) was read")
                } catch {
                    #expect("\(error)".contains(path) && "\(error)".contains("not a regular file"), "\(error)")
                }
                try FileManager.default.removeItem(atPath: path)
            }
        }
        let tokenizer = dir + "/source-tokenizer.json", out = TestData.tempDir("models")
        defer { try? FileManager.default.removeItem(atPath: out) }
        #expect(mkfifo(tokenizer, 0o600) == 0)
        #expect(throws: ModelError.unreadableFile(path: tokenizer, reason: "not a regular file")) {
            try ModelFolder.saveTokenizer(for: model, tokenizerFile: tokenizer, to: out)
        }
    }
}
