import Foundation
import Testing
import PrecisModels

/// The config.json fuzzer's seeds (tools/fuzz/corpus/modelconfig/: BART, T5 v1.0, T5 v1.1/flan in
/// transformers 5's and the hub's forms, Pegasus), checked in the normal suite with the property
/// the fuzzer enforces: every seed is accepted by its family's parser, and a model built from a small
/// one writes a config.json (as checkpoints do) that reads back to the same model, byte for byte.
@Suite struct ConfigSeedTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("tools/fuzz/corpus/modelconfig")

    static var seeds: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: corpus.path)) ?? []).filter { $0.hasSuffix(".json") }.sorted()
    }

    @Test func everyFamilyHasSeeds() {
        let names = Self.seeds
        #expect(names.contains { $0.hasPrefix("bart") } && names.contains { $0.hasPrefix("pegasus") })
        #expect(names.contains("t5-v1_0-tiny.json") && names.contains("t5-v1_1-tiny-gated-gelu-untied.json"))
        #expect(names.contains("t5-hub-v4-tiny.json") && names.contains("flan-t5-small.json"))
    }

    @Test(arguments: seeds)
    func seedParsesAndSmallModelsRoundTripTheirConfig(_ name: String) throws {
        let data = try Data(contentsOf: Self.corpus.appendingPathComponent(name))
        let type = try #require((try JSONSerialization.jsonObject(with: data) as? [String: Any])?["model_type"] as? String)
        #expect(ModelRegistry.knownTypes.contains(type), "\(name): \(type)")
        switch type {
        case "bart": _ = try BartConfig.parse(data, file: name)
        case "t5": _ = try T5Config.parse(data, file: name)
        case "pegasus": _ = try PegasusConfig.parse(data, file: name)
        default: Issue.record("\(name): no parser for \(type)")
        }
        // The small ones (the real shapes would allocate hundreds of MB here) are built and round-tripped.
        guard name.contains("tiny") else { return }
        let model = try ModelRegistry.model(config: data, file: name)
        let written = try model.configJSON()
        let again = try ModelRegistry.model(config: written, file: "written \(name)")
        #expect(again.facts == model.facts, "\(name)")
        #expect(again.table == model.table, "\(name)")
        #expect(try again.configJSON() == written, "\(name)")
        if name.contains("untied") || name.contains("hub-v4") { #expect(!model.facts.tiedHead, "\(name)") }
    }
}
