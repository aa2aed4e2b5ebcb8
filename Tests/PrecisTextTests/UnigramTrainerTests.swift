import Foundation
import PrecisText
import Testing

@Suite("Unigram training")
struct UnigramTrainerTests {
    /// The dialogues and summaries of the first `records` SAMSum train records (data/samsum, `make data`).
    static func samsumTexts(records: Int) throws -> [String] {
        let path = TokenizerFixtures.directory.deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("data/samsum/train.jsonl").path
        var texts: [String] = []
        var n = 0
        try JSONLines.forEachRecord(path: path) { (record, line) throws(TokenizerError) in
            guard n < records else { return }
            n += 1
            texts.append(try JSONLines.string(record, "dialogue", file: path, line: line))
            texts.append(try JSONLines.string(record, "summary", file: path, line: line))
        }
        return texts
    }

    /// Trained once: the same slice and vocab size as tools/golden/unigram_trainer.py's fixture.
    static let trained: Result<Tokenizer, Error> = Result {
        try Tokenizer.trainT5Unigram(Tokenizer.t5WordCounts(try samsumTexts(records: 300)), vocabSize: 800)
    }

    @Test("seeds are the characters by count, then the suffix-tree substrings by occurrences × length (tokenizers' own case)")
    func seeds() throws {
        var counts = WordCounts(byteLevel: false)
        counts.add(word: "This is a")
        counts.add(word: "こんにちは友達")
        let trainer = UnigramTrainer()
        let seeds = try trainer.seedPieces(Sentences(counts))
        // tokenizers' test_unigram_chars: the same pieces in the same order, the same scores.
        #expect(seeds.map(\.piece) == ["s", "i", " ", "達", "友", "ん", "は", "に", "ち", "こ", "h", "a", "T", "is ", "s "])
        let want = [-2.5649493574615367, -2.5649493574615367, -2.5649493574615367] + Array(repeating: -3.258096538021482, count: 10)
            + [-1.4663370687934272, -1.8718021769015916]
        for (s, w) in zip(seeds.map(\.score), want) { #expect(abs(s - w) < 1e-12) }
    }

    @Test("frequent substrings are exactly the right-branching repeats, checked against brute force")
    func substringsBruteForce() throws {
        let words = ["▁abracadabra", "▁abra", "▁cadabra", "▁barbara", "▁aaaa", "▁aaab", "▁ab"]
        var counts = WordCounts(byteLevel: false)
        for w in words { counts.add(word: w) }
        let trainer = UnigramTrainer(maxPieceLength: 5)
        var text: [UInt32] = []
        for w in words { text += w.unicodeScalars.map(\.value); text.append(0) }
        let found = trainer.frequentSubstrings(text)
        var got: [String: Int] = [:]
        for f in found {
            got[String(String.UnicodeScalarView(text[f.start..<(f.start + f.length)].map { Unicode.Scalar($0)! }))] = f.score
        }
        // Brute force: every substring of 2…5 characters without NUL, occurring twice or more,
        // followed by at least two different characters.
        var occurrences: [String: [UInt32]] = [:]
        for i in text.indices {
            for len in 2...5 where i + len < text.count {
                let s = text[i..<(i + len)]
                if s.contains(0) { break }
                occurrences[String(String.UnicodeScalarView(s.map { Unicode.Scalar($0)! })), default: []].append(text[i + len])
            }
        }
        var want: [String: Int] = [:]
        for (s, next) in occurrences where next.count >= 2 && Set(next).count >= 2 {
            want[s] = next.count * s.unicodeScalars.count
        }
        #expect(got == want)
        // Best score first, ties by the larger string.
        let scores = found.map(\.score)
        #expect(scores == scores.sorted(by: >))
    }

    @Test("digamma matches its series (ψ(1) = −γ, ψ(x+1) = ψ(x) + 1/x)")
    func digamma() {
        #expect(abs(UnigramTrainer.digamma(1) + 0.5772156649015329) < 1e-9)
        for x in [0.5, 2.25, 7.5, 100.0] {
            #expect(abs(UnigramTrainer.digamma(x + 1) - UnigramTrainer.digamma(x) - 1 / x) < 1e-9)
        }
    }

    @Test("the special tokens come first, the unknown token is added at 0 when not among them (tokenizers' test_unk_token)")
    func unknownToken() throws {
        var counts = WordCounts(byteLevel: false)
        counts.add(word: "The", count: 12)
        counts.add(word: "are", count: 11)
        let specials = [AddedToken("[SEP]", special: true), AddedToken("[CLS]", special: true)]
        let added = try UnigramTrainer(vocabSize: 20, specialTokens: specials, unkToken: "[UNK]").train(counts)
        #expect(added.pieces.prefix(3).map(\.piece) == ["[UNK]", "[SEP]", "[CLS]"])
        #expect(added.unkID == 0)
        let kept = try UnigramTrainer(vocabSize: 20, specialTokens: specials + [AddedToken("[UNK]", special: true)], unkToken: "[UNK]").train(counts)
        #expect(kept.pieces.prefix(3).map(\.piece) == ["[SEP]", "[CLS]", "[UNK]"])
        #expect(kept.unkID == 2)
        let none = try UnigramTrainer(vocabSize: 20).train(counts)
        #expect(none.pieces.first?.piece == "e")
        #expect(none.unkID == nil)
    }

    @Test("training on a SAMSum slice: T5 layout, close to tokenizers' UnigramTrainer on the same slice")
    func samsumSlice() throws {
        let tok = try Self.trained.get()
        let model = try #require(tok.model as? UnigramModel)
        #expect(tok.vocabSize == 800)
        #expect(model.pieces.prefix(3).map(\.piece) == ["<pad>", "</s>", "<unk>"])
        #expect(model.unkID == 2)
        // Scores fall after the special tokens.
        let scores = model.pieces.dropFirst(3).map(\.score)
        #expect(scores == scores.sorted(by: >))

        let python = try Tokenizer(contentsOfFile: TokenizerFixtures.path("unigram-trainer/samsum-train-300-unigram-800.json"))
        let theirs = try #require(python.model as? UnigramModel)
        let common = Set(model.pieces.map(\.piece)).intersection(theirs.pieces.map(\.piece)).count
        #expect(Double(common) >= 0.97 * Double(theirs.pieces.count), "pieces in common: \(common) of \(theirs.pieces.count)")
        // Tokens per character on the slice within 2 % of Python's vocabulary.
        let texts = try Self.samsumTexts(records: 300)
        var mine = 0, other = 0
        for t in texts {
            mine += try tok.encode(t, addSpecialTokens: false).ids.count
            other += try python.encode(t, addSpecialTokens: false).ids.count
        }
        #expect(abs(Double(mine - other)) <= 0.02 * Double(other), "tokens: Precis \(mine), tokenizers \(other)")
    }

    @Test("the trained tokenizer encodes with </s> appended, decodes back, and survives a save/load round trip")
    func roundTrip() throws {
        let tok = try Self.trained.get()
        let text = "Hannah: Hey, do you have Betty's number?\r\nAmanda: Lemme check"
        let ids = try tok.encode(text).ids
        #expect(ids.last == 1)
        #expect(!ids.dropLast().contains(2), "no unknown token for characters seen in training")
        #expect(tok.decode(ids, skipSpecialTokens: true) == "Hannah: Hey, do you have Betty's number? Amanda: Lemme check")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("precis-unigram-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try tok.save(to: path)
        let loaded = try Tokenizer(contentsOfFile: path)
        // The same pieces; scores as tokenizers reads them back (serde_json's parse, within an ulp or so).
        let mine = try #require(tok.model as? UnigramModel), back = try #require(loaded.model as? UnigramModel)
        #expect(back.pieces.map(\.piece) == mine.pieces.map(\.piece) && back.unkID == 2)
        #expect(zip(back.pieces, mine.pieces).allSatisfy { abs($0.score - $1.score) <= 1e-14 * max(1, abs($1.score)) })
        for t in try Self.samsumTexts(records: 40) {
            #expect(try loaded.encode(t).ids == tok.encode(t).ids)
        }
        // A character never seen becomes <unk>.
        #expect(try tok.encode("☃", addSpecialTokens: false).ids.contains(2))
    }

    @Test("training is deterministic")
    func deterministic() throws {
        let texts = try Self.samsumTexts(records: 60)
        let a = try Tokenizer.trainT5Unigram(Tokenizer.t5WordCounts(texts), vocabSize: 300)
        let b = try Tokenizer.trainT5Unigram(Tokenizer.t5WordCounts(texts), vocabSize: 300)
        #expect(a.toJSON() == b.toJSON())
    }

    @Test("bounds: a vocabulary too small for the alphabet, no data, byte-level words, bad parameters")
    func bounds() throws {
        let texts = try Self.samsumTexts(records: 20)
        #expect {
            try Tokenizer.trainT5Unigram(Tokenizer.t5WordCounts(texts), vocabSize: 10)
        } throws: { error in
            "\(error)".contains("vocab size 10 is too small") && "\(error)".contains("distinct characters")
        }
        #expect {
            try Tokenizer.trainT5Unigram(Tokenizer.t5WordCounts([String]()), vocabSize: 100)
        } throws: { error in "\(error)".contains("no words") }
        #expect {
            try Tokenizer.trainT5Unigram(Tokenizer.t5WordCounts(["", ""]), vocabSize: 100)
        } throws: { error in "\(error)".contains("no words") }
        #expect(throws: TokenizerError.self) { try UnigramTrainer(vocabSize: 100).train(WordCounts(byteLevel: true)) }
        #expect(throws: TokenizerError.self) { try UnigramTrainer(vocabSize: 0).train(Tokenizer.t5WordCounts(texts)) }
        #expect(throws: TokenizerError.self) { try UnigramTrainer(vocabSize: 100, shrinkingFactor: 1).train(Tokenizer.t5WordCounts(texts)) }
    }
}

@Suite("Unigram encoding fast paths")
struct UnigramFastPathTests {
    @Test("a literal-run Replace (\" {2,}\") finds the regex's matches without the regex VM")
    func literalRun() throws {
        let spaces = ReplaceNormalizer.literalRun(" {2,}"), xs = ReplaceNormalizer.literalRun("x+")
        #expect(spaces?.scalar == " " && spaces?.minimum == 2)
        #expect(xs?.scalar == "x" && xs?.minimum == 1)
        for p in ["\\s{2,}", " {2}", " {2,3}", "ab+", "[ ]{2,}", " {0,}", ".+", " {,2}"] {
            #expect(ReplaceNormalizer.literalRun(p) == nil, "\(p)")
        }
        let fast = ReplaceNormalizer(pattern: .regex(try OnigRegex(" {2,}")), content: "▁")
        let slow = ReplaceNormalizer(pattern: .regex(try OnigRegex("[ ]{2,}")), content: "▁")
        #expect(fast.run != nil && slow.run == nil)
        var rng = SystemRandomNumberGenerator()
        let alphabet: [Character] = [" ", " ", "a", "▁", "\n", "é"]
        for _ in 0..<300 {
            let text = String((0..<Int.random(in: 0...24, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! })
            var a = NormalizedText(text), b = NormalizedText(text)
            fast.normalize(&a)
            slow.normalize(&b)
            #expect(a.scalars == b.scalars && a.origins == b.origins, "\(text.debugDescription)")
        }
    }

    @Test("the word cache gives the ids of a fresh segmentation")
    func cache() throws {
        let tok = try Tokenizer(contentsOfFile: TokenizerFixtures.path("unigram/t5.json"))
        let model = try #require(tok.model as? UnigramModel)
        let uncached = try UnigramModel(pieces: model.pieces, unkID: model.unkID, byteFallback: model.byteFallback, cacheCapacity: 0)
        #expect(model.cache != nil && uncached.cache == nil)
        for text in try UnigramTrainerTests.samsumTexts(records: 30) {
            for word in text.split(separator: " ") {
                let w = Array(("▁" + word).utf8)
                var a: [Int] = [], b: [Int] = [], c: [Int] = []
                w.withUnsafeBufferPointer { p in
                    model.tokenize(word: p, byteLevel: false, into: &a)   // fills the cache
                    model.tokenize(word: p, byteLevel: false, into: &b)   // from the cache
                    uncached.tokenize(word: p, byteLevel: false, into: &c)
                }
                #expect(a == c && b == c, "\(word)")
            }
        }
    }
}
