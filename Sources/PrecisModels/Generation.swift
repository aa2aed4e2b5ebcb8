import Foundation
import PrecisCore

/// Generation settings as transformers' `GenerationConfig` names them. Read from
/// `generation_config.json` when a folder has one, else from the generation keys of `config.json`.
public struct GenerationSettings: Sendable, Equatable {
    public var maxLength = 20
    public var maxNewTokens: Int? = nil
    public var minLength = 0
    public var minNewTokens: Int? = nil
    public var numBeams = 1
    public var numReturnSequences = 1
    public var lengthPenalty = 1.0
    /// transformers' `early_stopping`: true, false, or "never".
    public enum EarlyStopping: Sendable, Equatable { case yes, no, never }
    public var earlyStopping = EarlyStopping.no
    public var noRepeatNgramSize = 0
    public var doSample = false
    public var temperature = 1.0
    public var topK = 50
    public var topP = 1.0
    public var seed: UInt64 = 0
    public var bosTokenId: Int? = nil
    public var eosTokenIds: [Int] = []
    public var padTokenId: Int? = nil
    public var decoderStartTokenId: Int? = nil
    public var forcedBosTokenId: Int? = nil
    public var forcedEosTokenId: Int? = nil

    public init() {}

    /// Settings from a JSON object (generation_config.json or config.json); absent keys keep defaults.
    public init(json: [String: Any], file: String) throws {
        func int(_ k: String) throws -> Int? {
            guard let v = json[k], !(v is NSNull) else { return nil }
            guard let i = v as? Int else { throw ModelError.invalidConfig(file: file, field: k, reason: "expected an integer") }
            return i
        }
        func double(_ k: String) throws -> Double? {
            guard let v = json[k], !(v is NSNull) else { return nil }
            guard let d = (v as? NSNumber)?.doubleValue else { throw ModelError.invalidConfig(file: file, field: k, reason: "expected a number") }
            return d
        }
        if let v = try int("max_length") { maxLength = v }
        maxNewTokens = try int("max_new_tokens")
        if let v = try int("min_length") { minLength = v }
        minNewTokens = try int("min_new_tokens")
        if let v = try int("num_beams") { numBeams = v }
        if let v = try int("num_return_sequences") { numReturnSequences = v }
        if let v = try double("length_penalty") { lengthPenalty = v }
        if let v = json["early_stopping"], !(v is NSNull) {
            if let b = v as? Bool { earlyStopping = b ? .yes : .no }
            else if let s = v as? String, s == "never" { earlyStopping = .never }
            else { throw ModelError.invalidConfig(file: file, field: "early_stopping", reason: "expected true, false or \"never\"") }
        }
        if let v = try int("no_repeat_ngram_size") { noRepeatNgramSize = v }
        if let v = json["do_sample"] as? Bool { doSample = v }
        if let v = try double("temperature") { temperature = v }
        if let v = try int("top_k") { topK = v }
        if let v = try double("top_p") { topP = v }
        bosTokenId = try int("bos_token_id")
        if let v = json["eos_token_id"], !(v is NSNull) {
            if let i = v as? Int { eosTokenIds = [i] } else if let a = v as? [Int] { eosTokenIds = a } else {
                throw ModelError.invalidConfig(file: file, field: "eos_token_id", reason: "expected an integer or a list of integers")
            }
        }
        padTokenId = try int("pad_token_id")
        decoderStartTokenId = try int("decoder_start_token_id")
        forcedBosTokenId = try int("forced_bos_token_id")
        forcedEosTokenId = try int("forced_eos_token_id")
        try validate(file: file)
    }

    public func validate(file: String) throws {
        func check(_ ok: Bool, _ field: String, _ reason: String) throws {
            if !ok { throw ModelError.invalidConfig(file: file, field: field, reason: reason) }
        }
        try check(numBeams >= 1, "num_beams", "must be at least 1")
        try check(numReturnSequences >= 1 && numReturnSequences <= max(1, numBeams) || doSample, "num_return_sequences",
                  "must be between 1 and num_beams (\(numBeams))")
        try check(maxLength >= 1, "max_length", "must be positive")
        try check(temperature > 0, "temperature", "must be positive")
        try check(topP > 0 && topP <= 1, "top_p", "must be in (0, 1]")
    }

    /// Loads `generation_config.json` from a model folder, or the generation keys of `config.json`.
    public static func load(folder: String) throws -> GenerationSettings {
        for name in ["generation_config.json", "config.json"] {
            let path = (folder as NSString).appendingPathComponent(name)
            // A file that is missing falls through to the next; one that is there but cannot be
            // read is an error (settings silently taken from config.json would change the output).
            let data: Data
            do { data = try ModelError.readFile(path) } catch ModelError.missingFile { continue }
            guard let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw ModelError.invalidConfig(file: path, field: "(root)", reason: "not a JSON object")
            }
            return try GenerationSettings(json: obj, file: path)
        }
        throw ModelError.missingFile(path: (folder as NSString).appendingPathComponent("config.json"))
    }

    /// Total decoder length including the start token.
    var effectiveMaxLength: Int { maxNewTokens.map { $0 + 1 } ?? maxLength }
    var effectiveMinLength: Int { minNewTokens.map { $0 + 1 } ?? minLength }
}

/// Generated sequences: each row starts with the decoder start token; finished rows are padded.
public struct GenerationOutput: Sendable {
    /// [sources × numReturnSequences] sequences of equal length.
    public var sequences: [[Int32]]
    /// Beam search: the length-normalised score of each returned sequence.
    public var scores: [Double]?
}

/// Greedy search, beam search and sampling over any `Seq2SeqModel`, with transformers' logits processors
/// (min length, no-repeat n-grams, forced BOS / EOS) and stopping rules.
public enum Generator {
    public static func generate(model: any Seq2SeqModel, inputIds: [Int32], attentionMask: [Int32], batchSize: Int,
                                sourceLength: Int, settings g: GenerationSettings) throws -> GenerationOutput {
        let c = model.facts
        var g = g
        if g.eosTokenIds.isEmpty { g.eosTokenIds = [c.eosTokenId] }
        let start = Int32(g.decoderStartTokenId ?? c.decoderStartTokenId)
        let pad = Int32(g.padTokenId ?? c.padTokenId)
        let maxLength = g.effectiveMaxLength
        if let limit = c.maxTargetPositions, maxLength > limit {
            throw ModelError.invalidConfig(file: "generation settings", field: "max_length",
                                           reason: "\(maxLength) exceeds max_position_embeddings \(limit)")
        }
        let enc = try model.profiler.measure("generate: encoder") {
            try model.encoderHiddenStates(inputIds: inputIds, attentionMask: attentionMask,
                                          batchSize: batchSize, sourceLength: sourceLength)
        }
        if g.numBeams > 1 && !g.doSample {
            return beamSearch(model: model, enc: enc, mask: attentionMask, batch: batchSize, s: sourceLength,
                              g: g, start: start, pad: pad, maxLength: maxLength)
        }
        let copies = g.doSample ? g.numReturnSequences : 1
        let rowSource = (0..<batchSize).flatMap { Array(repeating: $0, count: copies) }
        let dec = model.profiler.measure("generate: decoder set-up (cross K/V)") {
            model.incrementalDecoder(encoderOutput: enc, attentionMask: attentionMask, sources: batchSize,
                                     sourceLength: sourceLength, rowSource: rowSource, maxLength: maxLength)
        }
        let rows = rowSource.count, v = c.vocabSize
        var seqs = Array(repeating: [start], count: rows)
        var done = Array(repeating: false, count: rows)
        var rng = SeededRNG(seed: g.seed)
        var scratch = [Float](repeating: 0, count: v)
        while seqs[0].count < maxLength && done.contains(false) {
            model.profiler.measure("generate: decoder steps") { dec.step(seqs.map { $0.last! }) }
            for r in 0..<rows {
                let row = UnsafeMutableBufferPointer(start: dec.logits + r * dec.logitsStride, count: v)
                processLogits(row, sequence: seqs[r], g: g, maxLength: maxLength)
                var next: Int32
                if g.doSample {
                    for j in 0..<v { scratch[j] = row[j] }
                    next = Int32(sample(&scratch, g: g, rng: &rng))
                } else {
                    next = Int32(argmax(row))
                }
                if done[r] { next = pad }
                seqs[r].append(next)
                if g.eosTokenIds.contains(Int(next)) { done[r] = true }
            }
        }
        return GenerationOutput(sequences: seqs, scores: nil)
    }

    // MARK: Logits processors

    /// transformers' logits processors: min length (EOS banned while the row is shorter), no-repeat
    /// n-grams, forced BOS at length 1, forced EOS at max_length − 1. transformers runs no-repeat before
    /// min length; each only sets scores to −∞ (forced ones last), so the order changes nothing.
    /// `sequence` is the row so far (decoder start included).
    static func processLogits(_ scores: UnsafeMutableBufferPointer<Float>, sequence: [Int32], g: GenerationSettings, maxLength: Int) {
        let curLen = sequence.count
        if curLen < g.effectiveMinLength {
            for e in g.eosTokenIds where e < scores.count { scores[e] = -.infinity }
        }
        let n = g.noRepeatNgramSize
        if n > 0 && curLen + 1 >= n {
            let prefix = Array(sequence[(curLen - n + 1)...])
            if curLen >= n {
                for i in 0...(curLen - n) where Array(sequence[i..<(i + n - 1)]) == prefix {
                    scores[Int(sequence[i + n - 1])] = -.infinity
                }
            }
        }
        if let b = g.forcedBosTokenId, curLen == 1 { force(scores, b) }
        if let e = g.forcedEosTokenId, curLen == maxLength - 1 { force(scores, e) }
    }

    static func force(_ scores: UnsafeMutableBufferPointer<Float>, _ token: Int) {
        for j in 0..<scores.count { scores[j] = -.infinity }
        scores[token] = 0
    }

    static func argmax(_ x: UnsafeMutableBufferPointer<Float>) -> Int {
        var best = 0
        for j in 1..<x.count where x[j] > x[best] { best = j }
        return best
    }

    /// Temperature, top-k, top-p (in transformers' warper order), then a draw from the softmax.
    static func sample(_ logits: inout [Float], g: GenerationSettings, rng: inout SeededRNG) -> Int {
        let v = logits.count
        if g.temperature != 1 { for j in 0..<v { logits[j] /= Float(g.temperature) } }
        if g.topK > 0 && g.topK < v {
            let kth = logits.sorted(by: >)[g.topK - 1]
            for j in 0..<v where logits[j] < kth { logits[j] = -.infinity }
        }
        let m = logits.max()!
        var probs = logits.map { Double(exp($0 - m)) }
        let total = probs.reduce(0, +)
        for j in 0..<v { probs[j] /= total }
        if g.topP < 1 {
            // Keep the smallest set of most likely tokens whose mass reaches top_p (at least one).
            let order = (0..<v).sorted { probs[$0] > probs[$1] }
            var mass = 0.0, keep = Set<Int>()
            for j in order {
                keep.insert(j); mass += probs[j]
                if mass >= g.topP { break }
            }
            for j in 0..<v where !keep.contains(j) { probs[j] = 0 }
            let t = probs.reduce(0, +)
            for j in 0..<v { probs[j] /= t }
        }
        var u = rng.uniform(), acc = 0.0
        for j in 0..<v {
            acc += probs[j]
            if u < acc { return j }
        }
        u = 0
        return probs.lastIndex { $0 > 0 } ?? 0
    }

    // MARK: Beam search

    /// transformers 5.x `_beam_search`, per source: log-softmax, processors, plus the running beam
    /// score; keep the top K = max(2, 1 + #eos)·beams continuations; those that hit a stopping
    /// criterion (EOS, or reaching max length) and rank in the top `beams` may enter the finished set,
    /// scored by logprob / generated_length^length_penalty (the decoder start token not counted); the
    /// best continuations that did not stop keep running. The early-stop heuristic and the stopping
    /// rule are transformers' `_check_early_stop_heuristic` and `_beam_search_has_unfinished_sequences`.
    static func beamSearch(model: any Seq2SeqModel, enc: FloatBuffer, mask: [Int32], batch: Int, s: Int,
                           g: GenerationSettings, start: Int32, pad: Int32, maxLength: Int) -> GenerationOutput {
        let beams = g.numBeams, v = model.facts.vocabSize
        let rowSource = (0..<batch).flatMap { Array(repeating: $0, count: beams) }
        let dec = model.profiler.measure("generate: decoder set-up (cross K/V)") {
            model.incrementalDecoder(encoderOutput: enc, attentionMask: mask, sources: batch,
                                     sourceLength: s, rowSource: rowSource, maxLength: maxLength)
        }
        let keep = max(2, 1 + g.eosTokenIds.count) * beams
        let lp = g.lengthPenalty
        let penalty: Float = -1.0e9
        var running = Array(repeating: [start], count: batch * beams)
        var runScores = [Float](repeating: 0, count: batch * beams)
        for b in 0..<batch { for k in 1..<beams { runScores[b * beams + k] = penalty } }
        // The finished set: `beams` slots per source, sorted best first.
        var finSeq = Array(repeating: [start], count: batch * beams)
        var finScore = [Float](repeating: penalty, count: batch * beams)
        var finDone = [Bool](repeating: false, count: batch * beams)
        var open = [Bool](repeating: true, count: batch)
        var curLen = 1
        var logProbs = [Float](repeating: 0, count: beams * v)
        var stop = false
        func lengthNorm(_ len: Int) -> Float { Float(pow(Double(len), lp)) }
        while !stop {
            model.profiler.measure("generate: decoder steps") { dec.step(running.map { $0.last! }) }
            var nextRunning: [[Int32]] = [], nextScores: [Float] = [], nextFrom: [Int] = []
            var allHit = true
            for b in 0..<batch {
                for k in 0..<beams {
                    let r = b * beams + k
                    logProbs.withUnsafeMutableBufferPointer { buf in
                        let row = UnsafeMutableBufferPointer(rebasing: buf[(k * v)..<((k + 1) * v)])
                        LogSoftmax.forward(row.baseAddress!, dec.logits + r * dec.logitsStride, rows: 1, cols: v)
                        processLogits(row, sequence: running[r], g: g, maxLength: maxLength)
                        for j in 0..<v { row[j] += runScores[r] }
                    }
                }
                let top = topK(logProbs, keep)
                let topScores = top.map { logProbs[$0] }
                let topSeqs = top.map { running[b * beams + $0 / v] + [Int32($0 % v)] }
                let hits = topSeqs.map { g.eosTokenIds.contains(Int($0.last!)) || curLen + 1 >= maxLength }
                if hits.contains(false) { allHit = false }
                // Running beams: the best continuations, those that stopped pushed down by 1e9.
                let runCand = (0..<keep).map { topScores[$0] + (hits[$0] ? penalty : 0) }
                for j in topK(runCand, beams) {
                    nextRunning.append(topSeqs[j]); nextScores.append(runCand[j]); nextFrom.append(b * beams + top[j] / v)
                }
                // Finished set: merge the old slots with the candidates that just finished in the top `beams`.
                let full = (0..<beams).allSatisfy { finDone[b * beams + $0] } && g.earlyStopping == .yes
                var mergedScore: [Float] = (0..<beams).map { finScore[b * beams + $0] }
                var mergedSeq: [[Int32]] = (0..<beams).map { finSeq[b * beams + $0] }
                var mergedDone: [Bool] = (0..<beams).map { finDone[b * beams + $0] }
                for j in 0..<keep {
                    let justFinished = hits[j] && j < beams
                    var sc = topScores[j] / lengthNorm(curLen + 1 - 1)
                    if full { sc += penalty }
                    if !open[b] { sc += penalty }
                    if !justFinished { sc += penalty }
                    mergedScore.append(sc); mergedSeq.append(topSeqs[j]); mergedDone.append(justFinished)
                }
                for (slot, j) in topK(mergedScore, beams).enumerated() {
                    finSeq[b * beams + slot] = mergedSeq[j]
                    finScore[b * beams + slot] = mergedScore[j]
                    finDone[b * beams + slot] = mergedDone[j]
                }
            }
            dec.reorder(nextFrom)
            running = nextRunning; runScores = nextScores
            curLen += 1
            for b in 0..<batch where open[b] {
                let hypothetical = g.earlyStopping == .never && lp > 0 ? maxLength - 1 : curLen - 1
                let best = runScores[b * beams] / lengthNorm(hypothetical)
                let worstFinished = (0..<beams).map { finScore[b * beams + $0] }.min()!
                open[b] = (0..<beams).contains { best > (finDone[b * beams + $0] ? worstFinished : penalty) }
            }
            let allFinished = !finDone.contains(false) && g.earlyStopping == .yes
            stop = !open.contains(true) || allFinished || allHit || curLen >= maxLength
        }
        var sequences: [[Int32]] = [], scores: [Double] = []
        for b in 0..<batch {
            for k in 0..<g.numReturnSequences {
                sequences.append(finSeq[b * beams + k]); scores.append(Double(finScore[b * beams + k]))
            }
        }
        let longest = sequences.map(\.count).max() ?? 1
        // transformers' `_beam_search` fills with `pad_token_id or eos_token_id[0]`: a pad id of 0 is
        // falsy there, so finished hypotheses are padded with the first eos id instead.
        let fill = pad != 0 ? pad : (g.eosTokenIds.first.map(Int32.init) ?? -1)
        sequences = sequences.map { $0 + Array(repeating: fill, count: longest - $0.count) }
        return GenerationOutput(sequences: sequences, scores: scores)
    }

    /// Indices of the k largest values, largest first; ties keep the lower index first.
    static func topK(_ x: [Float], _ k: Int) -> [Int] {
        // A sorted list of the best k so far; most values fail the threshold test, so this is ~O(n).
        var best: [Int] = []
        best.reserveCapacity(k + 1)
        for i in 0..<x.count {
            if best.count == k, !(x[i] > x[best[k - 1]]) { continue }
            var pos = best.count
            while pos > 0 && x[i] > x[best[pos - 1]] { pos -= 1 }
            best.insert(i, at: pos)
            if best.count > k { best.removeLast() }
        }
        return best
    }
}
