import Foundation
import Testing
import PrecisCore
import PrecisModels

/// `tokenizer_config.json` of a saved folder: the family's class when it rebuilds the run's
/// tokenizer.json unchanged (else `TokenizersBackend`), `model_max_length` from the positions
/// limit, the special tokens. (tools/golden/check_model_folder.py loads such folders in transformers.)
@Suite struct TokenizerConfigTests {
    static func tokenizer(_ rel: String) throws -> (data: Data, json: TokenizerJSON) {
        let path = Fixtures.root.appendingPathComponent("tokenizer/" + rel).path
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return (data, try TokenizerJSON(data, file: path))
    }

    @Test func bartNamesBartTokenizerWithItsPositionsLimit() throws {
        let model = try ModelPresets.model("bart-tiny")
        let c = TokenizerConfig.object(for: model, tokenizer: try Self.tokenizer("samsum-bpe-8192.json").json)
        #expect(c["tokenizer_class"] as? String == "BartTokenizer")
        #expect(c["model_max_length"] as? Int == 256)  // bart-tiny's max_position_embeddings
        for (k, v) in ["bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>", "mask_token": "<mask>",
                       "cls_token": "<s>", "sep_token": "</s>"] {
            #expect(c[k] as? String == v, "\(k)")
        }
        #expect(c["add_prefix_space"] as? Bool == false && c["backend"] as? String == "tokenizers")
        // BART with a SentencePiece tokenizer: RoBERTa's class would rebuild it as byte-level BPE.
        let other = TokenizerConfig.object(for: model, tokenizer: try Self.tokenizer("unigram/t5.json").json)
        #expect(other["tokenizer_class"] as? String == TokenizerConfig.genericClass)
        // The special tokens are the tokens at the model's ids (BART's pad id 1 is this vocabulary's </s>).
        #expect(other["pad_token"] as? String == "</s>" && other["eos_token"] as? String == "<unk>")
    }

    @Test func t5NamesT5TokenizerWith512OrNPositions() throws {
        let model = try ModelPresets.model("t5-tiny")
        let t = try Self.tokenizer("unigram/t5.json").json
        let c = TokenizerConfig.object(for: model, tokenizer: t)
        #expect(c["tokenizer_class"] as? String == "T5Tokenizer")
        #expect(c["model_max_length"] as? Int == 512)
        #expect(c["eos_token"] as? String == "</s>" && c["pad_token"] as? String == "<pad>" && c["unk_token"] as? String == "<unk>")
        let sentinels = c["extra_special_tokens"] as? [String] ?? []
        #expect(c["extra_ids"] as? Int == sentinels.count && sentinels.count > 0 && sentinels.first == "<extra_id_0>")
        // A config with transformers 4's n_positions: that is the limit, and config.json keeps it.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("precis-tokcfg-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var json = try JSONSerialization.jsonObject(with: model.configJSON()) as! [String: Any]
        json["n_positions"] = 1024
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: dir + "/config.json"))
        let withPositions = try ModelRegistry.model(configFile: dir + "/config.json")
        #expect(TokenizerConfig.object(for: withPositions, tokenizer: t)["model_max_length"] as? Int == 1024)
        #expect(try String(decoding: withPositions.configJSON(), as: UTF8.self).contains("\"n_positions\" : 1024"))
        // The converter's Metaspace (prepend "first") is not what T5Tokenizer builds.
        let converter = TokenizerConfig.object(for: model, tokenizer: try Self.tokenizer("unigram/t5-converter.json").json)
        #expect(converter["tokenizer_class"] as? String == TokenizerConfig.genericClass)
    }

    @Test func pegasusNamesPegasusTokenizerOnlyForItsOwnLayout() throws {
        let model = try ModelPresets.model("pegasus-tiny")
        let own = TokenizerConfig.object(for: model, tokenizer: try Self.tokenizer("unigram/pegasus.json").json)
        #expect(own["tokenizer_class"] as? String == "PegasusTokenizer")
        #expect(own["model_max_length"] as? Int == 256)
        #expect(own["mask_token"] as? String == "<mask_2>" && own["mask_token_sent"] as? String == "<mask_1>" && own["offset"] as? Int == 103)
        let t5Layout = TokenizerConfig.object(for: model, tokenizer: try Self.tokenizer("unigram/t5.json").json)
        #expect(t5Layout["tokenizer_class"] as? String == TokenizerConfig.genericClass)
        #expect(t5Layout["eos_token"] as? String == "</s>" && t5Layout["unk_token"] as? String == "<unk>")
    }

    @Test func savedFilesAndBadTokenizers() throws {
        let model = try ModelPresets.model("bart-tiny")
        let t = try Self.tokenizer("samsum-bpe-8192.json")
        let files = try ModelFolder.tokenizerFiles(for: model, tokenizerJSON: t.data, file: "tok.json")
        #expect(files.map(\.name) == ["tokenizer.json", "tokenizer_config.json"])
        #expect(files[0].data == t.data)
        let text = String(decoding: files[1].data, as: UTF8.self)
        #expect(text.contains("\"tokenizer_class\" : \"BartTokenizer\"") && text.contains("\"model_max_length\" : 256"))
        for bad in ["", "[]", "{\"model\": {}}", "{\"model\": {\"type\": 3}}"] {
            #expect(throws: ModelError.self) { try ModelFolder.tokenizerFiles(for: model, tokenizerJSON: Data(bad.utf8), file: "bad.json") }
        }
    }
}
