import Foundation
import Testing
import PrecisCore
import PrecisData
import PrecisText
import PrecisTestSupport

/// BART's text infilling and sentence permutation (`DenoisingNoise`) on real SAMSum dialogues,
/// tokenized with the SAMSum tokenizer the tests share (byte-level BPE, `<mask>` = 8191).
@Suite struct DenoisingTests {
    static let tokenizer: Tokenizer = {
        try! Tokenizer(contentsOfFile: TestData.repo.appendingPathComponent("Tests/Fixtures/tokenizer/samsum-bpe-8192.json").path)
    }()
    static let classes = TokenClasses(tokenizer: tokenizer)
    static let mask: Int32 = 8191

    static func ids(_ text: String) -> [Int32] { try! tokenizer.encode(text).ids.map { Int32($0) } }
    static func id(_ token: String) -> Int { tokenizer.tokenToID(token)! }

    static let dialogues: [String] = {
        let lines = try! String(contentsOfFile: TestData.samsum("validation"), encoding: .utf8).split(separator: "\n").prefix(300)
        return lines.map { line in
            let o = try! JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            return o["dialogue"] as! String
        }
    }()

    static func noise(mask: Double, permute: Double, lambda: Double = 3) -> DenoisingNoise {
        DenoisingNoise(maskId: Self.mask, maskRatio: mask, poissonLambda: lambda, permuteSentenceRatio: permute, classes: classes)
    }

    static func apply(_ n: DenoisingNoise, _ ids: [Int32], seed: UInt64, maxLength: Int = 512) -> [Int32] {
        ids.withUnsafeBufferPointer { n.apply($0, seed: seed, maxLength: maxLength) }
    }

    /// The sentences of `ids` between `<s>` and `</s>`, cut as the noise cuts them.
    static func sentences(_ ids: [Int32]) -> [[Int32]] {
        let content = Array(ids.dropFirst().dropLast())
        var out: [[Int32]] = [[]]
        for (j, t) in content.enumerated() {
            if j > 0, classes.endsSentence[Int(content[j - 1])], !classes.blank[Int(t)] { out.append([]) }
            out[out.count - 1].append(t)
        }
        return out
    }

    /// Whether `text` is the pieces, each used once, in some order (a search with backtracking:
    /// one sentence may be the start of another).
    static func isConcatenation(_ text: [Int32], of pieces: [[Int32]]) -> Bool {
        var used = [Bool](repeating: false, count: pieces.count)
        func search(_ at: Int) -> Bool {
            if at == text.count { return !used.contains(false) }
            for (i, p) in pieces.enumerated() where !used[i] && at + p.count <= text.count && Array(text[at..<at + p.count]) == p {
                used[i] = true
                if search(at + p.count) { return true }
                used[i] = false
            }
            return false
        }
        return search(0)
    }

    @Test func tokenClassesComeFromTheTokenizer() {
        let c = Self.classes
        #expect(c.count == Self.tokenizer.vocabSize)
        for s in ["<s>", "</s>", "<pad>", "<mask>"] { #expect(c.special[Self.id(s)], "\(s)") }
        #expect(c.endsSentence[Self.id("Ċ")] && c.blank[Self.id("Ċ")] && c.spaceAfter[Self.id("Ċ")])
        #expect(c.endsSentence[Self.id(".")] && !c.blank[Self.id(".")] && !c.spaceBefore[Self.id(".")])
        #expect(c.endsSentence[Self.id("?")] && c.endsSentence[Self.id("!")])
        #expect(c.spaceBefore[Self.id("ĠAmanda")] && !c.endsSentence[Self.id("ĠAmanda")])
        #expect(!c.spaceBefore[Self.id("Amanda")] && !c.blank[Self.id("Amanda")])
    }

    /// With the mask ratio 0, the noise only permutes: the same sentences (whole, each with its
    /// line break) in another order, `<s>` and `</s>` in place; ratio 0 for both leaves the text as it is.
    @Test func permutationMovesWholeSentences() {
        var moved = 0, multi = 0
        for (k, d) in Self.dialogues.enumerated() {
            let ids = Self.ids(d)
            #expect(Self.apply(Self.noise(mask: 0, permute: 0), ids, seed: UInt64(k)) == ids)
            let out = Self.apply(Self.noise(mask: 0, permute: 1), ids, seed: UInt64(k))
            #expect(out.count == ids.count && out.first == ids.first && out.last == ids.last)
            let a = Self.sentences(ids)
            if a.count > 2 { multi += 1 }
            #expect(Self.isConcatenation(Array(out.dropFirst().dropLast()), of: a), "dialogue \(k): not its sentences in another order")
            if out != ids { moved += 1 }
        }
        // Nearly every dialogue with three or more sentences comes out in another order.
        #expect(moved >= multi * 9 / 10, "\(moved) of \(multi) permuted")
    }

    /// With the permutation off: what is left between the masks is the original's words in order,
    /// each mask stands for a run of whole words (or is an insertion), and about `mask_ratio` of
    /// the words are gone.
    @Test func infillingMasksWholeWordSpans() {
        let n = Self.noise(mask: 0.3, permute: 0)
        var words = 0, kept = 0, masks = 0
        for (k, d) in Self.dialogues.enumerated() {
            let ids = Self.ids(d)
            let out = Self.apply(n, ids, seed: UInt64(k) &* 7919)
            #expect(out.first == ids.first && out.last == ids.last)
            #expect(!zip(out, out.dropFirst()).contains { $0 == Self.mask && $1 == Self.mask }, "two masks in a row")
            // Walk the original: every piece between masks occurs in order, starting at a word start.
            let starts = Self.wordStarts(ids)
            var pos = 1
            var segment: [Int32] = []
            func place(_ seg: [Int32], afterMask: Bool) {
                guard !seg.isEmpty else { return }
                var at = pos
                if afterMask {
                    while at < ids.count && !(starts.contains(at) && Array(ids[at..<min(ids.count, at + seg.count)]) == seg) { at += 1 }
                }
                #expect(at < ids.count && Array(ids[at..<min(ids.count, at + seg.count)]) == seg, "dialogue \(k): a kept piece is not the original's")
                pos = at + seg.count
            }
            var afterMask = false
            for t in out.dropFirst().dropLast() {
                if t == Self.mask { place(segment, afterMask: afterMask); segment = []; afterMask = true; masks += 1 } else { segment.append(t) }
            }
            place(segment, afterMask: afterMask)
            words += starts.count
            kept += Self.wordStarts(out.filter { $0 != Self.mask }).count
        }
        let gone = 1 - Double(kept) / Double(words)
        // Spans start at distinct words but may overlap, so a little under the 30 % asked for is covered.
        #expect(gone > 0.22 && gone <= 0.31, "\(gone) of the words masked")
        // Span lengths average λ = 3 words (lengths 0 are insertions): fewer masks than words masked.
        #expect(Double(masks) < Double(words - kept) / 1.8, "\(masks) masks for \(words - kept) words")
    }

    static func wordStarts(_ ids: [Int32]) -> Set<Int> {
        var s = Set<Int>()
        for j in 1..<max(1, ids.count - 1) {
            let t = Int(ids[j])
            if j == 1 || classes.special[t] || classes.special[Int(ids[j - 1])]
                || (!classes.blank[t] && (classes.spaceBefore[t] || classes.spaceAfter[Int(ids[j - 1])])) {
                s.insert(j)
            }
        }
        return s
    }

    @Test func noiseIsAFunctionOfTheSeed() {
        let n = Self.noise(mask: 0.3, permute: 1)
        let ids = Self.ids(Self.dialogues[3])
        let a = Self.apply(n, ids, seed: DenoisingNoise.seed(runSeed: 42, step: 7, example: 3))
        #expect(a == Self.apply(n, ids, seed: DenoisingNoise.seed(runSeed: 42, step: 7, example: 3)))
        #expect(a != Self.apply(n, ids, seed: DenoisingNoise.seed(runSeed: 42, step: 8, example: 3)))
        #expect(a != Self.apply(n, ids, seed: DenoisingNoise.seed(runSeed: 43, step: 7, example: 3)))
        #expect(DenoisingNoise.seed(runSeed: 42, step: 7, example: 3) != DenoisingNoise.seed(runSeed: 42, step: 3, example: 7))
    }

    /// Insertions (spans of length 0, frequent with a small λ) never make a source longer than the
    /// model's positions allow; empty and all-special inputs come back unchanged.
    @Test func lengthsStayBoundedAndEdgeCasesPass() {
        let n = Self.noise(mask: 1.0, permute: 1, lambda: 0.2)
        for (k, d) in Self.dialogues.prefix(100).enumerated() {
            let ids = Self.ids(d)
            #expect(Self.apply(n, ids, seed: UInt64(k), maxLength: ids.count).count <= ids.count)
            #expect(Self.apply(n, ids, seed: UInt64(k), maxLength: ids.count + 3).count <= ids.count + 3)
        }
        #expect(Self.apply(n, [], seed: 1).isEmpty)
        #expect(Self.apply(n, [0, 2], seed: 1) == [0, 2])
        // An id outside the classes' vocabulary is treated as special: kept, never a crash.
        let odd: [Int32] = [0, 100_000, -5, 2]
        #expect(Self.apply(n, odd, seed: 1) == odd)
    }

    @Test func poissonSpanLengthsHaveMeanLambda() {
        var rng = SeededRNG(seed: 5)
        let n = Self.noise(mask: 0.3, permute: 0, lambda: 3)
        let draws = (0..<20_000).map { _ in n.spanLength(rng: &rng) }
        let mean = Double(draws.reduce(0, +)) / Double(draws.count)
        let zeros = Double(draws.filter { $0 == 0 }.count) / Double(draws.count)
        #expect(abs(mean - 3) < 0.06, "mean \(mean)")
        #expect(abs(zeros - exp(-3)) < 0.01, "P(0) \(zeros)")
    }

    /// The collator noises the sources and keeps the labels the clean text; two collators with the
    /// same seed (two processes) make the same batch.
    @Test func collatorNoisesSourcesOnly() throws {
        let texts = Self.dialogues.prefix(8).map(Self.ids)
        let ds = try TokenizedDataset(key: "k", sources: texts, targets: texts)
        let c = Collator(padId: 1, noise: Self.noise(mask: 0.3, permute: 1), seed: 42, maxSourceLength: 512)
        let b = try c.batch(Array(0..<8), from: ds, step: 5)
        let again = try Collator(padId: 1, noise: Self.noise(mask: 0.3, permute: 1), seed: 42, maxSourceLength: 512).batch(Array(0..<8), from: ds, step: 5)
        #expect(b.inputIds == again.inputIds && b.labels == again.labels)
        let plain = try Collator(padId: 1).batch(Array(0..<8), from: ds)
        #expect(b.labels == plain.labels)
        #expect(b.inputIds != plain.inputIds)
        #expect(b.inputIds.contains(Self.mask) && !plain.inputIds.contains(Self.mask))
        // Each row is its example's noise, whichever batch the example is in.
        let single = try c.batch([3], from: ds, step: 5)
        let row = Array(b.inputIds[3 * b.sourceLength..<4 * b.sourceLength].prefix { $0 != 1 })
        #expect(row == Array(single.inputIds.prefix { $0 != 1 }))
    }
}
