import PrecisCore
import PrecisModels

/// `precis bench generate`: generated tokens per second for greedy and beam search on random
/// full-length sources, with EOS banned until the last step so every row generates exactly
/// `newTokens` tokens (as the PyTorch reference does with min_new_tokens = max_new_tokens).
public enum GenerateBenchmark {
    public struct Report: Sendable {
        public var numBeams: Int
        public var seconds: Double
        public var tokensPerSecond: Double
        public var peakRSSMiB: Double
        /// With `profile`: the phases of the best run (encoder, decoder set-up, decoder steps), in ms.
        public var phases: [(name: String, ms: Double)] = []
    }

    /// The beam sizes a comma-separated list names ("1,4"); entries that are not numbers are skipped.
    public static func beamSizes(_ list: String) -> [Int] {
        list.split(separator: ",").compactMap { Int($0) }
    }

    /// Generates `newTokens` tokens for each of `batch` random sources of `source` tokens with
    /// `numBeams` beams, `repeats` times (at least once); the fastest run is reported.
    public static func run(model: any Seq2SeqModel, batch: Int, source: Int, newTokens: Int, numBeams: Int, threads: Int,
                           repeats: Int, profile: Bool = false) throws -> Report {
        return try Compute.withThreads(threads) {
            let data = try Seq2SeqBatch.random(vocab: model.facts.vocabSize, batch: batch, source: source, target: 2, seed: 3)
            var g = GenerationSettings()
            g.numBeams = numBeams
            g.maxNewTokens = newTokens
            g.minNewTokens = newTokens
            g.earlyStopping = .yes
            g.forcedBosTokenId = model.facts.forcedBosTokenId
            g.forcedEosTokenId = nil
            var best = Double.infinity
            var phases: [(name: String, ms: Double)] = []
            for _ in 0..<max(1, repeats) {
                model.profiler.reset()
                model.profiler.enabled = profile
                let t0 = Timing.now()
                let out = try Generator.generate(model: model, inputIds: data.inputIds, attentionMask: data.attentionMask,
                                                 batchSize: batch, sourceLength: source, settings: g)
                let dt = Timing.now() - t0
                precondition(out.sequences.allSatisfy { $0.count == newTokens + 1 })
                if dt < best {
                    best = dt
                    phases = model.profiler.order.filter { $0.hasPrefix("generate") }.map { ($0, model.profiler.totals[$0]! * 1000) }
                }
                model.profiler.enabled = false
            }
            return Report(numBeams: numBeams, seconds: best, tokensPerSecond: Double(batch * newTokens) / best,
                          peakRSSMiB: Timing.peakRSSMiB(), phases: phases)
        }
    }
}
