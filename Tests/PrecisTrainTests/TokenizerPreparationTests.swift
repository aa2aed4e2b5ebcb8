import Foundation
import PrecisText
import PrecisTrain
import Testing
import PrecisTestSupport

/// The T5 recipe's tokenizer part: configs/train-samsum-t5.yaml and `precis train` training the
/// tokenizer a config names when it is missing.
@Suite struct TokenizerPreparationTests {
    @Test func theT5RecipeAsksForAUnigramTokenizerAndThePrefix() throws {
        let cfg = try TrainingConfig.load(TestData.repo.appendingPathComponent("configs/train-samsum-t5.yaml").path)
        let t = cfg.training
        #expect(t.model == "t5-scratch-small")
        #expect(t.tokenizer == "runs/tokenizer-unigram.json" && t.tokenizerModel == "unigram" && t.tokenizerVocabSize == 8192)
        #expect(t.sourcePrefix == "summarize: ")
        #expect(t.trainFile == "data/samsum/train.jsonl" && t.textColumn == "dialogue" && t.summaryColumn == "summary")
        #expect(t.learningRate == 5e-4 && t.labelSmoothingFactor == 0.1)
        // The BART recipe trains no tokenizer itself (make train does, as before).
        let bart = try TrainingConfig.load(TestData.repo.appendingPathComponent("configs/train-samsum.yaml").path)
        #expect(bart.training.tokenizerModel == nil)
    }

    @Test func aMissingUnigramTokenizerIsTrainedWithT5sSpecialTokensOnce() throws {
        let data = try smallData()
        let dir = TestData.tempDir("train")
        let yaml = """
        training:
          tokenizer: \(dir)/sub/tokenizer-unigram.json
          tokenizer_model: unigram
          tokenizer_vocab_size: 600
          train_file: \(data)
          source_prefix: "summarize: "
        """
        let cfg = try TrainingConfig.parse(yaml, file: "t5.yaml")
        var lines: [String] = []
        #expect(try TokenizerPreparation.ensure(cfg) { lines.append($0) })
        #expect(lines.first?.contains("unigram") == true)
        let path = "\(dir)/sub/tokenizer-unigram.json"
        let tok = try Tokenizer(contentsOfFile: path)
        #expect(tok.vocabSize == 600)
        #expect(tok.tokenToID("<pad>") == 0 && tok.tokenToID("</s>") == 1 && tok.tokenToID("<unk>") == 2)
        #expect((tok.model as? UnigramModel)?.unkID == 2)
        // The post-processor appends </s>; the prefix is tokenized like any text.
        let ids = try tok.encode("summarize: Amanda: I baked cookies. Do you want some?").ids
        #expect(ids.last == 1 && ids.filter { $0 == 1 }.count == 1 && !ids.contains(0))
        #expect(tok.decode(ids, skipSpecialTokens: true) == "summarize: Amanda: I baked cookies. Do you want some?")
        // Present now: not trained again.
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(try TokenizerPreparation.ensure(cfg) == false)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(dir)/sub") == ["tokenizer-unigram.json"])   // no temporary left
        // Without tokenizer_model a missing tokenizer is left to the training plan's error.
        let plain = try TrainingConfig.parse("training:\n  tokenizer: \(dir)/none.json\n", file: "p.yaml")
        #expect(try TokenizerPreparation.ensure(plain) == false)
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/none.json"))
    }

    @Test func badTokenizerKeysNameTheKey() {
        #expect(throws: ConfigError.invalid(file: "k.yaml", key: "training.tokenizer_model", reason: "'wordpiece' is not one of bpe, unigram")) {
            try TrainingConfig.parse("training:\n  tokenizer_model: wordpiece\n", file: "k.yaml")
        }
        #expect(throws: ConfigError.self) { try TrainingConfig.parse("training:\n  tokenizer_vocab_size: 5\n", file: "k.yaml") }
        #expect(throws: ConfigError.self) { try TrainingConfig.parse("training:\n  tokenizer_model: 3\n", file: "k.yaml") }
    }
}
