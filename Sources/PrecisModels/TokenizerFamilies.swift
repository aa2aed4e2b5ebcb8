import Foundation

// Each family's `tokenizer_config.json`: transformers 5's tokenizer class for it, and when that
// class fits a tokenizer.json. transformers' family classes (unlike `TokenizersBackend`) do not
// load tokenizer.json as it is: they take its vocabulary (and merges) and rebuild the rest with the
// family's own normalizer, pre-tokenizer, post-processor and special tokens. A tokenizer.json is
// named with the family's class only when that rebuild gives the same tokenizer.

extension BartModel {
    /// BART's positions are learned up to `max_position_embeddings`.
    public var tokenizerModelMaxLength: Int { config.maxPositionEmbeddings }

    /// `BartTokenizer` (transformers 5: RoBERTa's byte-level BPE): a BPE vocabulary, no normalizer,
    /// the ByteLevel pre-tokenizer, `<s> $A </s>` (RobertaProcessing) with the model's bos and eos,
    /// and `<unk>` and `<mask>` in the vocabulary (the class would add them otherwise).
    public func tokenizerSettings(for t: TokenizerJSON) -> TokenizerSettings? {
        guard t.modelType == "BPE", t.normalizer == nil, TokenizerJSON.types(t.preTokenizer) == ["ByteLevel"],
              let post = t.postProcessor, post["type"] as? String == "RobertaProcessing",
              let bos = t.token(config.bosTokenId), let eos = t.token(config.eosTokenId),
              let pad = t.token(config.padTokenId), t.id(of: "<unk>") != nil, t.id(of: "<mask>") != nil,
              let sep = post["sep"] as? [Any], sep.first as? String == eos,
              let cls = post["cls"] as? [Any], cls.first as? String == bos else { return nil }
        let prefix = t.preTokenizer?["add_prefix_space"] as? Bool ?? false
        guard post["add_prefix_space"] as? Bool ?? prefix == prefix else { return nil }
        return TokenizerSettings(tokenizerClass: "BartTokenizer", keys: [
            "add_prefix_space": prefix, "bos_token": bos, "cls_token": bos, "eos_token": eos, "errors": "replace",
            "mask_token": "<mask>", "pad_token": pad, "sep_token": eos, "trim_offsets": post["trim_offsets"] as? Bool ?? true,
            "unk_token": "<unk>",
        ])
    }
}

extension T5Model {
    /// Relative positions set no limit: `n_positions` when the config has it, else 512 (what
    /// transformers gives the t5 checkpoints' tokenizers).
    public var tokenizerModelMaxLength: Int { config.nPositions ?? 512 }

    /// `T5Tokenizer`: a Unigram vocabulary laid out `<pad>`, `</s>`, `<unk>` (ids 0, 1, 2, the model's
    /// pad and eos), no normalizer or SentencePiece's precompiled one alone, WhitespaceSplit then
    /// Metaspace (prepended always), `$A </s>`, and `<extra_id_0>` … `<extra_id_{n-1}>` (any n) as
    /// the sentinels.
    public func tokenizerSettings(for t: TokenizerJSON) -> TokenizerSettings? {
        guard t.modelType == "Unigram", t.unkId == 2, config.padTokenId == 0, config.eosTokenId == 1,
              let pad = t.token(0), let eos = t.token(1), let unk = t.token(2),
              t.normalizer == nil || TokenizerJSON.types(t.normalizer) == ["Precompiled"],
              TokenizerJSON.types(t.preTokenizer) == ["WhitespaceSplit", "Metaspace"],
              Self.metaspaceAlways(t.preTokenizer), Self.endsWithEOS(t.postProcessor, eos: eos) else { return nil }
        var sentinels = 0
        for token in t.tokens.values where token.hasPrefix("<extra_id_") && token.hasSuffix(">") {
            guard Int(token.dropFirst("<extra_id_".count).dropLast()) != nil else { return nil }
            sentinels += 1
        }
        let names = (0..<sentinels).map { "<extra_id_\($0)>" }
        guard names.allSatisfy({ t.id(of: $0) != nil }) else { return nil }
        var keys: [String: Any] = ["eos_token": eos, "pad_token": pad, "unk_token": unk, "extra_ids": sentinels]
        if sentinels > 0 { keys["extra_special_tokens"] = names }
        return TokenizerSettings(tokenizerClass: "T5Tokenizer", keys: keys)
    }

    static func metaspaceAlways(_ pre: [String: Any]?) -> Bool {
        let parts = (pre?["pretokenizers"] as? [[String: Any]]) ?? (pre.map { [$0] } ?? [])
        guard let m = parts.first(where: { $0["type"] as? String == "Metaspace" }) else { return false }
        return m["replacement"] as? String == "\u{2581}" && m["prepend_scheme"] as? String == "always" && m["split"] as? Bool ?? true
    }

    /// A TemplateProcessing whose single-sequence template is `$A eos`.
    static func endsWithEOS(_ post: [String: Any]?, eos: String) -> Bool {
        guard let post, post["type"] as? String == "TemplateProcessing", let single = post["single"] as? [[String: Any]],
              single.count == 2, single[0]["Sequence"] != nil,
              (single[1]["SpecialToken"] as? [String: Any])?["id"] as? String == eos else { return false }
        return true
    }
}

extension PegasusModel {
    /// Pegasus' sinusoidal positions are built up to `max_position_embeddings`.
    public var tokenizerModelMaxLength: Int { config.maxPositionEmbeddings }

    /// `PegasusTokenizer`: the pretrained Pegasus layout only (`<pad>`, `</s>`, `<mask_1>`, `<mask_2>`,
    /// `<unk_2>` … `<unk_102>`, then `<unk>` with score 0), SentencePiece's precompiled normalizer,
    /// Metaspace (prepended always), `$A </s>`. Other vocabularies would gain the class's reserved
    /// tokens as new ids.
    public func tokenizerSettings(for t: TokenizerJSON) -> TokenizerSettings? {
        let offset = 103
        guard t.modelType == "Unigram", config.padTokenId == 0, config.eosTokenId == 1,
              t.token(0) == "<pad>", t.token(1) == "</s>", t.token(2) == "<mask_1>", t.token(3) == "<mask_2>",
              (2..<offset).allSatisfy({ t.id(of: "<unk_\($0)>") != nil }),
              let unk = t.unkId, t.token(unk) == "<unk>", t.score(unk) == 0,
              TokenizerJSON.types(t.normalizer).first == "Precompiled",
              TokenizerJSON.types(t.preTokenizer) == ["Metaspace"], T5Model.metaspaceAlways(t.preTokenizer),
              T5Model.endsWithEOS(t.postProcessor, eos: "</s>") else { return nil }
        return TokenizerSettings(tokenizerClass: "PegasusTokenizer", keys: [
            "eos_token": "</s>", "mask_token": "<mask_2>", "mask_token_sent": "<mask_1>", "offset": offset,
            "pad_token": "<pad>", "unk_token": "<unk>",
        ])
    }
}
