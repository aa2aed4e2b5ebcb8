import Foundation
import PrecisText
import Testing

@Suite("BPE training")
struct TrainerTests {
    /// The texts of golden-sample.jsonl, which tools/golden/make_tokenizer_golden.py trained
    /// sample-bpe-1000.json on (ByteLevelBPETokenizer, vocab 1000 with <mask>, min_frequency 2).
    static func sampleTexts() throws -> [String] {
        try TokenizerFixtures.lines("golden-sample.jsonl", as: GoldenText.self).map(\.text)
    }

    @Test("training on the sample reproduces Python's vocab, merges and tokenizer.json")
    func matchesPython() throws {
        let python = try Tokenizer(contentsOfFile: TokenizerFixtures.path("sample-bpe-1000.json"))
        let trained = try Tokenizer.trainBARTByteLevelBPE(Tokenizer.bartWordCounts(try Self.sampleTexts()), vocabSize: 1000)
        let mine = try #require(trained.model as? BPEModel)
        let theirs = try #require(python.model as? BPEModel)
        #expect(mine.vocab == theirs.vocab)
        #expect(mine.merges.count == theirs.merges.count)
        let firstDifference = zip(mine.merges, theirs.merges).enumerated().first { $0.element.0 != $0.element.1 }
        #expect(firstDifference == nil, "first different merge: \(String(describing: firstDifference))")
        #expect(trained.vocabSize == 1000)
        #expect(trained.tokenToID("<mask>") == 999)
        // The whole file is the same JSON value as the one Python saved.
        let pythonJSON = try JSONValue.parse(String(contentsOfFile: TokenizerFixtures.path("sample-bpe-1000.json"), encoding: .utf8))
        #expect(trained.toJSON() == pythonJSON)
    }

    @Test("the special tokens, alphabet and first merges are laid out like BpeTrainer's")
    func layout() throws {
        var counts = WordCounts(byteLevel: false)
        for (w, c) in [("roses", 1), ("are", 2), ("red", 1), ("voilets", 1), ("blue", 1), ("BERT", 1), ("is", 2),
                       ("big", 1), ("and", 1), ("so", 1), ("GPT-2", 1)] {
            counts.add(word: w, count: c)
        }
        let trainer = BPETrainer(vocabSize: 30, minFrequency: 2, specialTokens: [AddedToken("[UNK]", special: true)])
        let (vocab, merges) = trainer.train(counts)
        // Special token, then the alphabet sorted by code point, then merged tokens.
        #expect(vocab.prefix(4) == ["[UNK]", "-", "2", "B"])
        // Ties on count are broken by the smaller pair of ids: ("a","r") comes before ("i","s"),
        // both occur twice; ("r","e") occurs 3 times (are×2, red) and is merged first.
        #expect(merges.first.map { [$0.0, $0.1] } == ["r", "e"])
        #expect(merges.map { $0.0 + $0.1 }.contains("are"))
        #expect(merges.allSatisfy { vocab.contains($0.0 + $0.1) })
        // min_frequency 2 stops before pairs seen once.
        #expect(vocab.count < 30)
    }

    @Test("a trained tokenizer saves to tokenizer.json and loads back identically")
    func saveAndLoad() throws {
        let texts = ["Hello there!\r\nHow are you?", "Fine, thanks. And you?", "I'm fine too :-)"] + (0..<50).map { "line \($0) of text" }
        let tok = try Tokenizer.trainBARTByteLevelBPE(Tokenizer.bartWordCounts(texts), vocabSize: 300)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("precis-trained-\(getpid()).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try tok.save(to: path)
        let loaded = try Tokenizer(contentsOfFile: path)
        #expect(loaded.toJSON() == tok.toJSON())
        for t in texts + ["unseen wörds 😀 <mask>"] {
            #expect(try loaded.encode(t).ids == tok.encode(t).ids)
            #expect(loaded.decode(try loaded.encode(t).ids, skipSpecialTokens: true) == t.replacingOccurrences(of: " <mask>", with: ""))
        }
        #expect(try tok.encode("Hello").ids.first == 0)
        #expect(try tok.encode("Hello").ids.last == 2)
    }

    @Test("training parameters are checked")
    func badParameters() {
        #expect(throws: TokenizerError.self) {
            try Tokenizer.trainBARTByteLevelBPE(Tokenizer.bartWordCounts(["x"]), vocabSize: 100)
        }
        #expect(throws: TokenizerError.self) {
            try Tokenizer.trainBARTByteLevelBPE(WordCounts(byteLevel: false), vocabSize: 1000)
        }
    }
}
