import Foundation
import Synchronization
import Testing
import PrecisCore
import PrecisModels

/// The interface everything outside `PrecisModels` uses: no other module names a concrete
/// architecture, and what the interface promises (facts, gradient reports, optional position
/// limits) holds for the architectures there are.
@Suite struct Seq2SeqModelTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The Swift files under `dir`, recursively.
    static func swiftFiles(_ dir: URL) -> [URL] {
        let walker = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: nil)
        return (walker?.allObjects as? [URL] ?? []).filter { $0.pathExtension == "swift" }
    }

    /// The identifiers on a line that is not a comment.
    static func identifiers(_ line: Substring) -> Set<Substring> {
        let code = line.drop { $0 == " " || $0 == "\t" }
        if code.hasPrefix("//") { return [] }
        return Set(code.split { !($0.isLetter || $0.isNumber || $0 == "_") })
    }

    /// Every type `Sources/PrecisModels` declares whose name starts with a registered `model_type`
    /// (`BartModel`, `BartConfig`, `BartIncrementalDecoder`, … and whatever T5 or Pegasus add) is
    /// named nowhere else in `Sources/` (comment lines aside).
    @Test func onlyPrecisModelsNamesAConcreteArchitecture() throws {
        let sources = Self.repo.appendingPathComponent("Sources")
        let prefixes = ModelRegistry.knownTypes.map { $0.prefix(1).uppercased() + $0.dropFirst() }
        var concrete = Set<Substring>()
        for file in Self.swiftFiles(sources.appendingPathComponent("PrecisModels")) {
            for line in try String(contentsOf: file, encoding: .utf8).split(separator: "\n") {
                let words = line.split { $0 == " " || $0 == "(" || $0 == ":" || $0 == "<" || $0 == "{" }
                for (i, w) in words.enumerated().dropLast()
                where ["class", "struct", "enum", "protocol", "typealias", "actor"].contains(w) {
                    let name = words[i + 1]
                    if prefixes.contains(where: { name.hasPrefix($0) }) { concrete.insert(name) }
                }
            }
        }
        #expect(concrete.isSuperset(of: ["BartModel", "BartConfig", "BartIncrementalDecoder"]), "\(concrete.sorted())")
        let modules = try FileManager.default.contentsOfDirectory(atPath: sources.path).filter { $0 != "PrecisModels" }
        #expect(modules.count > 10)
        var scanned = 0
        for module in modules {
            for file in Self.swiftFiles(sources.appendingPathComponent(module)) {
                let lines = try String(contentsOf: file, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
                for (n, line) in lines.enumerated() {
                    let named = Self.identifiers(line).intersection(concrete)
                    #expect(named.isEmpty, "Sources/\(module)/\(file.lastPathComponent):\(n + 1) names \(named.sorted()): use any Seq2SeqModel and its facts")
                }
                scanned += 1
            }
        }
        #expect(scanned > 50)
    }

    /// A model as the other modules get one: from `config.json` bytes through the registry.
    static func registryModel(maxPositions: Int = 32) throws -> any Seq2SeqModel {
        let json = """
            {"model_type": "bart", "vocab_size": 40, "d_model": 16, "encoder_layers": 2, "decoder_layers": 2,
             "encoder_attention_heads": 4, "decoder_attention_heads": 2, "encoder_ffn_dim": 24, "decoder_ffn_dim": 20,
             "max_position_embeddings": \(maxPositions), "dropout": 0.1, "pad_token_id": 1, "bos_token_id": 0,
             "eos_token_id": 2, "decoder_start_token_id": 2, "forced_bos_token_id": 0, "forced_eos_token_id": 2,
             "init_std": 0.2}
            """
        return try ModelRegistry.model(config: Data(json.utf8), file: "test config")
    }

    @Test func factsAreTheConfigsAsCallersNeedThem() throws {
        let model = try Self.registryModel(maxPositions: 48)
        let f = model.facts
        #expect(f.modelType == "bart" && f.vocabSize == 40 && model.vocabSize == 40 && f.dModel == 16)
        #expect(f.padTokenId == 1 && f.eosTokenId == 2 && f.bosTokenId == 0 && f.decoderStartTokenId == 2)
        #expect(f.forcedBosTokenId == 0 && f.forcedEosTokenId == 2)
        #expect(f.maxSourcePositions == 48 && f.maxTargetPositions == 48)
        #expect(f.tiedHead)
        // The generation defaults a folder gets are the same facts.
        let g = try GenerationSettings(json: model.generationDefaults, file: "defaults")
        #expect(g.padTokenId == f.padTokenId && g.eosTokenIds == [f.eosTokenId] && g.decoderStartTokenId == f.decoderStartTokenId
                && g.forcedBosTokenId == f.forcedBosTokenId && g.forcedEosTokenId == f.forcedEosTokenId)
    }

    /// nil limits (relative positions, as T5 will have) accept any length; a limit names the field.
    @Test func batchesAreCheckedAgainstOptionalPositionLimits() throws {
        let long = try Seq2SeqBatch(batchSize: 1, sourceLength: 40, targetLength: 36, inputIds: Array(repeating: 5, count: 40),
                                    attentionMask: Array(repeating: 1, count: 40), labels: Array(repeating: 6, count: 36))
        try long.validate(vocabSize: 40, maxSourcePositions: nil, maxTargetPositions: nil)
        try long.validate(vocabSize: 40, maxSourcePositions: 40, maxTargetPositions: nil)
        #expect(throws: ModelError.badBatch(field: "input_ids", reason: "length 40 exceeds max_position_embeddings 39")) {
            try long.validate(vocabSize: 40, maxSourcePositions: 39, maxTargetPositions: nil)
        }
        #expect(throws: ModelError.badBatch(field: "labels", reason: "length 36 exceeds max_position_embeddings 32")) {
            try long.validate(vocabSize: 40, maxSourcePositions: nil, maxTargetPositions: 32)
        }
        #expect(throws: ModelError.self) { try long.validate(vocabSize: 6, maxSourcePositions: nil, maxTargetPositions: nil) }
        // A model checks its own limits.
        let model = try Self.registryModel(maxPositions: 32)
        #expect(throws: ModelError.badBatch(field: "input_ids", reason: "length 40 exceeds max_position_embeddings 32")) {
            _ = try model.step(long, options: StepOptions(), logitsOut: nil)
        }
    }

    /// What a worker relies on to push while backward runs: every range reported before the end
    /// lies between two of `gradientCuts`, none is reported twice, its gradient is final when
    /// reported (the end of the step leaves it as it was), and the whole buffer is reported last.
    /// Holds for whatever lane count the pool gives the step (its rows are cut over the lanes).
    @Test func gradientsAreFinalWhenReportedAndTheReportsCoverTheCuts() throws {
        let model = try Self.registryModel()
        model.initializeWeights(seed: 4)
        var rng = SeededRNG(seed: 11)
        let rows = 5, s = 12, t = 9
        let batch = try Seq2SeqBatch(
            batchSize: rows, sourceLength: s, targetLength: t,
            inputIds: (0..<(rows * s)).map { _ in Int32(3 + rng.next() % 37) }, attentionMask: Array(repeating: 1, count: rows * s),
            labels: (0..<(rows * t)).map { i in i % t < t - i / t ? Int32(3 + rng.next() % 37) : -100 })
        final class Reports: Sendable {
            let seen = Mutex<[(range: Range<Int>, values: [Float], loss: CrossEntropy.Result)]>([])
        }
        let reports = Reports(), grads = model.grads
        model.zeroGradients()
        model.onGradientsFinal = { r, loss in
            let values = Array(UnsafeBufferPointer(start: grads.pointer + r.lowerBound, count: r.count))
            reports.seen.withLock { $0.append((r, values, loss)) }
        }
        defer { model.onGradientsFinal = nil }
        let result = try model.step(batch, options: StepOptions(training: true, seed: 3), logitsOut: nil)
        // Every report carries the batch's loss, the one `step` returns (a worker's pushes carry it).
        #expect(reports.seen.withLock { $0 }.allSatisfy { $0.loss.lossSum.bitPattern == result.lossSum.bitPattern && $0.loss.count == result.count })
        #expect(result.count > 0)
        let seen = reports.seen.withLock { $0 }
        let final = grads.array, cuts = model.gradientCuts
        #expect(seen.last?.range == 0..<final.count)
        let early = seen.dropLast()
        // Each decoder layer, the decoder's positions and its embedding LayerNorm, each encoder layer.
        #expect(early.count == 2 + 2 + 2)
        #expect(Set(early.flatMap { [$0.range.lowerBound, $0.range.upperBound] } + [0, final.count]) == Set(cuts))
        var covered = Set<Int>()
        for (range, values, _) in early {
            #expect(cuts.contains(range.lowerBound) && cuts.contains(range.upperBound), "\(range)")
            #expect(covered.isDisjoint(with: range), "\(range) reported twice")
            covered.formUnion(range)
            #expect(values == Array(final[range]), "\(range) changed after it was reported final")
            #expect(values.contains { $0 != 0 }, "\(range) has a gradient")
        }
        // The decoder is reported before the encoder (backward's order).
        let encoder = try #require(model.table.entries.first { $0.name.hasPrefix("model.encoder.layers.") })
        let firstEncoder = try #require(early.firstIndex { $0.range.contains(encoder.offset) })
        #expect(early[..<firstEncoder].allSatisfy { $0.range.lowerBound > encoder.offset })
    }
}
