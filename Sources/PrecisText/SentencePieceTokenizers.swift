import Foundation

/// `tokenizers` pipelines built from a SentencePiece Unigram model (`spiece.model`) as transformers
/// 5 builds them when a folder has no `tokenizer.json` (`T5Tokenizer` / `PegasusTokenizer`, the
/// `TokenizersBackend` classes, fed by `SentencePieceExtractor` and `T5Converter.convert_from_spm` /
/// `PegasusConverter.convert_from_spm`). The pipeline is written as the `tokenizer.json` document
/// transformers would save and parsed by ``Tokenizer/init(json:source:)``, so it is checked like any
/// other tokenizer file. Only the default special tokens are built (T5: `</s>`, `<unk>`, `<pad>` and
/// `extra_ids` sentinels; Pegasus: `<pad>`, `</s>`, `<mask_1>`, `<mask_2>`, `<unk_2>`… to `offset`).
public enum SentencePieceTokenizers {
    /// T5: the model's pieces then `<extra_id_{n-1}>` … `<extra_id_0>` (score 0); `unk_id` 2 (as
    /// transformers fixes it); normalizer: the precompiled charsmap when the model has one; pre-tokenizer
    /// WhitespaceSplit then Metaspace(▁, always, split); post-processor `$A </s>` / `$A </s> $B </s>`;
    /// special added tokens `<pad>`, `</s>`, `<unk>` and the sentinels.
    public static func t5(_ model: SentencePieceModel, extraIds: Int = 100, file: String) throws(TokenizerError) -> Tokenizer {
        try requireUnigram(model, file: file)
        guard extraIds >= 0, extraIds <= 100_000 else {
            throw .invalidField(file: file, field: "extra_ids", message: "\(extraIds) is not between 0 and 100000")
        }
        var vocab: [(String, Double)] = model.pieces.map { ($0.piece, Double($0.score)) }
        let sentinels = (0..<extraIds).reversed().map { "<extra_id_\($0)>" }
        vocab += sentinels.map { ($0, 0) }
        guard vocab.count > 2 else { throw .invalidField(file: file, field: "pieces", message: "T5 needs at least 3 pieces (unk_id is 2)") }
        var normalizer: JSONValue = .null
        if !model.precompiledCharsmap.isEmpty {
            normalizer = .object(["type": .string("Precompiled"), "precompiled_charsmap": .string(Data(model.precompiledCharsmap).base64EncodedString())])
        }
        let pre: JSONValue = .object(["type": .string("Sequence"), "pretokenizers": .array([.object(["type": .string("WhitespaceSplit")]), metaspace])])
        let ids = firstIDs(vocab)
        let eos = try id("</s>", ids, file)
        let specials = try ["<pad>", "</s>", "<unk>"].map { (t) throws(TokenizerError) in (t, try id(t, ids, file)) }
            + sentinels.map { ($0, ids[$0]!) }
        let post = template(single: [seq("A"), special("</s>")], pair: [seq("A"), special("</s>"), seq("B"), special("</s>")], eos: eos)
        return try build(vocab: vocab, unkID: 2, normalizer: normalizer, preTokenizer: pre, postProcessor: post,
                         added: specials, file: file)
    }

    /// Pegasus: `<pad>`, `</s>`, `<mask_1>`, `<mask_2>`, `<unk_2>` … `<unk_{offset-1}>` (score −100), then
    /// the model's pieces from the third on; `unk_id` the first `(<unk>, 0)` entry after the first;
    /// normalizer: precompiled charsmap then `" {2,}"` → `" "` (without a charsmap: `"\n"` → `" "` first);
    /// pre-tokenizer Metaspace(▁, always, split); post-processor `$A </s>` / `$A $B </s>`; every entry
    /// before the model's pieces, and `<unk>`, are special added tokens.
    public static func pegasus(_ model: SentencePieceModel, offset: Int = 103, file: String) throws(TokenizerError) -> Tokenizer {
        try requireUnigram(model, file: file)
        guard offset >= 2, offset <= 100_000 else {
            throw .invalidField(file: file, field: "offset", message: "\(offset) is not between 2 and 100000")
        }
        var vocab: [(String, Double)] = [("<pad>", 0), ("</s>", 0), ("<mask_1>", 0), ("<mask_2>", 0)]
        vocab += (2..<offset).map { ("<unk_\($0)>", -100) }
        let reserved = vocab.count
        vocab += model.pieces.dropFirst(2).map { ($0.piece, Double($0.score)) }
        guard let unkID = vocab.indices.dropFirst().first(where: { vocab[$0].0 == "<unk>" && vocab[$0].1 == 0 }) else {
            throw .invalidField(file: file, field: "pieces", message: "no '<unk>' piece with score 0 after the first two pieces (Pegasus needs one)")
        }
        var norms: [JSONValue] = []
        if !model.precompiledCharsmap.isEmpty {
            norms.append(.object(["type": .string("Precompiled"), "precompiled_charsmap": .string(Data(model.precompiledCharsmap).base64EncodedString())]))
        } else {
            norms.append(replace("\n", " "))
        }
        norms.append(replace(" {2,}", " "))
        let ids = firstIDs(vocab)
        let specials = vocab[0..<reserved].map { ($0.0, ids[$0.0]!) } + [("<unk>", unkID)]
        let post = template(single: [seq("A"), special("</s>")], pair: [seq("A"), seq("B"), special("</s>")], eos: ids["</s>"]!)
        return try build(vocab: vocab, unkID: unkID, normalizer: .object(["type": .string("Sequence"), "normalizers": .array(norms)]),
                         preTokenizer: metaspace, postProcessor: post, added: specials, file: file)
    }

    // MARK: pieces of the document

    static let metaspace: JSONValue = .object(["type": .string("Metaspace"), "replacement": .string("\u{2581}"), "prepend_scheme": .string("always"), "split": .bool(true)])

    static func requireUnigram(_ model: SentencePieceModel, file: String) throws(TokenizerError) {
        guard model.modelType == .unigram else {
            throw .unsupported(file: file, field: "trainer_spec.model_type", value: "\(model.modelType)", supported: ["unigram"])
        }
    }

    static func replace(_ pattern: String, _ content: String) -> JSONValue {
        .object(["type": .string("Replace"), "pattern": .object(["Regex": .string(pattern)]), "content": .string(content)])
    }

    static func seq(_ id: String) -> JSONValue { .object(["Sequence": .object(["id": .string(id), "type_id": .int(0)])]) }
    static func special(_ id: String) -> JSONValue { .object(["SpecialToken": .object(["id": .string(id), "type_id": .int(0)])]) }

    static func template(single: [JSONValue], pair: [JSONValue], eos: Int) -> JSONValue {
        .object(["type": .string("TemplateProcessing"), "single": .array(single), "pair": .array(pair),
                 "special_tokens": .object(["</s>": .object(["id": .string("</s>"), "ids": .array([.int(eos)]), "tokens": .array([.string("</s>")])])])])
    }

    /// Token → first id holding it.
    static func firstIDs(_ vocab: [(String, Double)]) -> [String: Int] {
        var ids: [String: Int] = [:]
        for (i, v) in vocab.enumerated() where ids[v.0] == nil { ids[v.0] = i }
        return ids
    }

    static func id(_ token: String, _ ids: [String: Int], _ file: String) throws(TokenizerError) -> Int {
        guard let i = ids[token] else {
            throw .invalidField(file: file, field: "pieces", message: "the model has no piece '\(token)' (special tokens outside the vocabulary are not supported)")
        }
        return i
    }

    static func build(vocab: [(String, Double)], unkID: Int, normalizer: JSONValue, preTokenizer: JSONValue,
                      postProcessor: JSONValue, added: [(String, Int)], file: String) throws(TokenizerError) -> Tokenizer {
        let addedTokens: [JSONValue] = added.sorted { $0.1 < $1.1 }.map {
            .object(["id": .int($0.1), "content": .string($0.0), "single_word": .bool(false), "lstrip": .bool(false), "rstrip": .bool(false),
                     "normalized": .bool(false), "special": .bool(true)])
        }
        let model: JSONValue = .object(["type": .string("Unigram"), "unk_id": .int(unkID),
                                        "vocab": .array(vocab.map { .array([.string($0.0), .double($0.1)]) }), "byte_fallback": .bool(false)])
        let doc: JSONValue = .object(["version": .string("1.0"), "truncation": .null, "padding": .null, "added_tokens": .array(addedTokens),
                                      "normalizer": normalizer, "pre_tokenizer": preTokenizer, "post_processor": postProcessor,
                                      "decoder": metaspace, "model": model])
        return try Tokenizer(json: doc, source: file)
    }
}
