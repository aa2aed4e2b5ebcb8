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
}
