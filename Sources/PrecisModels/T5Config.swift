import Foundation
import PrecisCore

/// T5's `config.json`, as transformers' `T5Config` defines it: keys in snake_case, unknown keys
/// ignored, missing keys given transformers' defaults (t5-small's shape).
///
/// The LM head: transformers 5 always builds `lm_head` tied to `shared` and reads
/// `tie_word_embeddings` only to decide `scale_decoder_outputs` (the d_model^-0.5 factor before the
/// head); a checkpoint with its own `lm_head.weight` (T5 v1.1, flan-t5) is loaded untied. Here the
/// head is untied when the config says so (`tie_word_embeddings: false`, as v1.1 configs on the
/// hub do) or when it says `scale_decoder_outputs: false` (how transformers 5 saves such a model).
public struct T5Config: Codable, Sendable, Equatable {
    public var modelType = "t5"
    public var vocabSize = 32128
    public var dModel = 512
    public var dKv = 64
    public var dFf = 2048
    public var numLayers = 6
    /// nil: as many as `numLayers`.
    public var numDecoderLayers: Int? = nil
    public var numHeads = 8
    public var relativeAttentionNumBuckets = 32
    public var relativeAttentionMaxDistance = 128
    public var dropoutRate = 0.1
    public var layerNormEpsilon = 1e-6
    public var initializerFactor = 1.0
    /// `relu`, `gelu`, `gated-gelu` (gelu_new), `gated-relu`, `gated-silu`, …
    public var feedForwardProj = "relu"
    public var isEncoderDecoder = true
    public var useCache = true
    public var padTokenId = 0
    public var eosTokenId = 1
    /// nil: the pad id (T5 starts decoding from pad; transformers 5 no longer sets it).
    public var decoderStartTokenId: Int? = nil
    public var tieWordEmbeddings = true
    /// nil: as `tieWordEmbeddings` (transformers' derivation).
    public var scaleDecoderOutputs: Bool? = nil
    /// transformers 4's `n_positions` (the length T5 was pretrained on; relative positions set no
    /// limit): read and written back when a config has it, the tokenizer's `model_max_length`.
    public var nPositions: Int? = nil

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case modelType = "model_type", vocabSize = "vocab_size", dModel = "d_model", dKv = "d_kv", dFf = "d_ff"
        case numLayers = "num_layers", numDecoderLayers = "num_decoder_layers", numHeads = "num_heads"
        case relativeAttentionNumBuckets = "relative_attention_num_buckets"
        case relativeAttentionMaxDistance = "relative_attention_max_distance"
        case dropoutRate = "dropout_rate", layerNormEpsilon = "layer_norm_epsilon", initializerFactor = "initializer_factor"
        case feedForwardProj = "feed_forward_proj", isEncoderDecoder = "is_encoder_decoder", useCache = "use_cache"
        case padTokenId = "pad_token_id", eosTokenId = "eos_token_id", decoderStartTokenId = "decoder_start_token_id"
        case tieWordEmbeddings = "tie_word_embeddings", scaleDecoderOutputs = "scale_decoder_outputs"
        case nPositions = "n_positions"
        // Written (derived, as transformers writes them), never read.
        case denseActFn = "dense_act_fn", isGatedAct = "is_gated_act"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func get<T: Decodable>(_ key: CodingKeys, _ current: T) throws -> T {
            try c.decodeIfPresent(T.self, forKey: key) ?? current
        }
        modelType = try get(.modelType, modelType)
        vocabSize = try get(.vocabSize, vocabSize)
        dModel = try get(.dModel, dModel)
        dKv = try get(.dKv, dKv)
        dFf = try get(.dFf, dFf)
        numLayers = try get(.numLayers, numLayers)
        numDecoderLayers = try c.decodeIfPresent(Int.self, forKey: .numDecoderLayers)
        numHeads = try get(.numHeads, numHeads)
        relativeAttentionNumBuckets = try get(.relativeAttentionNumBuckets, relativeAttentionNumBuckets)
        relativeAttentionMaxDistance = try get(.relativeAttentionMaxDistance, relativeAttentionMaxDistance)
        dropoutRate = try get(.dropoutRate, dropoutRate)
        layerNormEpsilon = try get(.layerNormEpsilon, layerNormEpsilon)
        initializerFactor = try get(.initializerFactor, initializerFactor)
        feedForwardProj = try get(.feedForwardProj, feedForwardProj)
        isEncoderDecoder = try get(.isEncoderDecoder, isEncoderDecoder)
        useCache = try get(.useCache, useCache)
        padTokenId = try get(.padTokenId, padTokenId)
        eosTokenId = try get(.eosTokenId, eosTokenId)
        decoderStartTokenId = try c.decodeIfPresent(Int.self, forKey: .decoderStartTokenId)
        tieWordEmbeddings = try get(.tieWordEmbeddings, tieWordEmbeddings)
        scaleDecoderOutputs = try c.decodeIfPresent(Bool.self, forKey: .scaleDecoderOutputs)
        // Only a hint (the tokenizer's length limit): a value that is not a positive integer is dropped.
        if let n = try? c.decodeIfPresent(Int.self, forKey: .nPositions), n > 0 { nPositions = n }
    }

    /// As transformers 5 writes it for this model (with the derived `dense_act_fn` / `is_gated_act`).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(modelType, forKey: .modelType)
        try c.encode(vocabSize, forKey: .vocabSize)
        try c.encode(dModel, forKey: .dModel)
        try c.encode(dKv, forKey: .dKv)
        try c.encode(dFf, forKey: .dFf)
        try c.encode(numLayers, forKey: .numLayers)
        try c.encode(decoderLayers, forKey: .numDecoderLayers)
        try c.encode(numHeads, forKey: .numHeads)
        try c.encode(relativeAttentionNumBuckets, forKey: .relativeAttentionNumBuckets)
        try c.encode(relativeAttentionMaxDistance, forKey: .relativeAttentionMaxDistance)
        try c.encode(dropoutRate, forKey: .dropoutRate)
        try c.encode(layerNormEpsilon, forKey: .layerNormEpsilon)
        try c.encode(initializerFactor, forKey: .initializerFactor)
        try c.encode(feedForwardProj, forKey: .feedForwardProj)
        try c.encode(isEncoderDecoder, forKey: .isEncoderDecoder)
        try c.encode(useCache, forKey: .useCache)
        try c.encode(padTokenId, forKey: .padTokenId)
        try c.encode(eosTokenId, forKey: .eosTokenId)
        try c.encode(startTokenId, forKey: .decoderStartTokenId)
        try c.encode(tiedHead, forKey: .tieWordEmbeddings)
        try c.encode(scalesDecoderOutput, forKey: .scaleDecoderOutputs)
        try c.encode(denseActFn, forKey: .denseActFn)
        try c.encode(isGatedAct, forKey: .isGatedAct)
        try c.encodeIfPresent(nPositions, forKey: .nPositions)
    }

    // MARK: Derived as transformers derives them

    public var decoderLayers: Int { numDecoderLayers ?? numLayers }
    public var startTokenId: Int { decoderStartTokenId ?? padTokenId }
    /// The width of the attention's projections (heads × d_kv; need not be d_model).
    public var innerDim: Int { numHeads * dKv }
    /// `feed_forward_proj` "gated-X": the FFN is act(x·W0) ⊙ (x·W1).
    public var isGatedAct: Bool { feedForwardProj.split(separator: "-", omittingEmptySubsequences: false).first == "gated" }
    /// The activation's transformers name: the part after "gated-"; "gated-gelu" means gelu_new.
    public var denseActFn: String {
        if feedForwardProj == "gated-gelu" { return "gelu_new" }
        return String(feedForwardProj.split(separator: "-", omittingEmptySubsequences: false).last ?? "")
    }
    public var activation: Activation { Activation(transformersName: denseActFn)! }
    /// Whether the decoder's output is multiplied by d_model^-0.5 before the LM head.
    public var scalesDecoderOutput: Bool { scaleDecoderOutputs ?? tieWordEmbeddings }
    /// Whether the LM head is `shared.weight` (else `lm_head.weight`, a parameter of its own).
    public var tiedHead: Bool { tieWordEmbeddings && (scaleDecoderOutputs ?? true) }
    public var layerNormEps: Float { Float(layerNormEpsilon) }

    /// How many values the parameter buffer holds (nil if that overflows): the embedding, each
    /// block's attention (4 matrices; 8 in the decoder) and FFN, the norms, the position biases and
    /// an untied head.
    public var parameterCount: Int? {
        func mul(_ xs: Int...) -> Int? {
            var r = 1
            for x in xs {
                let (v, o) = r.multipliedReportingOverflow(by: x)
                if o { return nil }
                r = v
            }
            return r
        }
        func add(_ xs: Int?...) -> Int? {
            var r = 0
            for x in xs {
                guard let x else { return nil }
                let (v, o) = r.addingReportingOverflow(x)
                if o { return nil }
                r = v
            }
            return r
        }
        let attention = mul(4, innerDim, dModel), ffn = mul(isGatedAct ? 3 : 2, dFf, dModel)
        let encoderBlock = add(attention, ffn, mul(2, dModel)), decoderBlock = add(attention, attention, ffn, mul(3, dModel))
        return add(mul(tiedHead ? 1 : 2, vocabSize, dModel), encoderBlock.flatMap { mul($0, numLayers) },
                   decoderBlock.flatMap { mul($0, decoderLayers) }, mul(2, relativeAttentionNumBuckets, numHeads), mul(2, dModel))
    }

    /// Parses `config.json` bytes; `file` names the source in errors.
    public static func parse(_ data: Data, file: String) throws -> T5Config {
        let cfg = try ConfigDecoding.decode(T5Config.self, data, file: file)
        try cfg.validate(file: file)
        return cfg
    }

    public func validate(file: String) throws {
        func check(_ ok: Bool, _ field: CodingKeys, _ reason: String) throws {
            if !ok { throw ModelError.invalidConfig(file: file, field: field.rawValue, reason: reason) }
        }
        try check(modelType == "t5", .modelType, "expected \"t5\", got \"\(modelType)\"")
        for (v, k) in [(vocabSize, CodingKeys.vocabSize), (dModel, .dModel), (dKv, .dKv), (dFf, .dFf), (numHeads, .numHeads),
                       (relativeAttentionNumBuckets, .relativeAttentionNumBuckets),
                       (relativeAttentionMaxDistance, .relativeAttentionMaxDistance)] {
            try check(v > 0, k, "must be positive, got \(v)")
        }
        try check(numLayers >= 1, .numLayers, "must be at least 1 (block 0 holds the position bias), got \(numLayers)")
        try check(decoderLayers >= 1, .numDecoderLayers, "must be at least 1 (block 0 holds the position bias), got \(decoderLayers)")
        // Sizes that allocate: far above any real T5 (t5-11b: d_ff 65536, 128 heads; mT5: 250k ids),
        // far below what would exhaust memory or overflow the layout's arithmetic.
        for (v, k, hi) in [(vocabSize, CodingKeys.vocabSize, 1 << 22), (dModel, .dModel, 1 << 16), (dKv, .dKv, 1 << 12),
                           (dFf, .dFf, 1 << 18), (numHeads, .numHeads, 1 << 10), (numLayers, .numLayers, 1024),
                           (decoderLayers, .numDecoderLayers, 1024), (relativeAttentionNumBuckets, .relativeAttentionNumBuckets, 1 << 12),
                           (relativeAttentionMaxDistance, .relativeAttentionMaxDistance, 1 << 20)] {
            try check(v <= hi, k, "\(v) is larger than any model Precis can hold (at most \(hi))")
        }
        let (inner, o1) = numHeads.multipliedReportingOverflow(by: dKv)
        try check(!o1 && inner <= 1 << 16, .dKv, "num_heads \(numHeads) × d_kv \(dKv) is larger than any model Precis can hold (at most 65536)")
        // The bucket function halves the buckets twice (bidirectional) and takes log(max_distance /
        // exact buckets): fewer than 4 buckets or a distance within the exact ones divide by zero.
        try check(relativeAttentionNumBuckets >= 4, .relativeAttentionNumBuckets, "must be at least 4, got \(relativeAttentionNumBuckets)")
        try check(relativeAttentionMaxDistance > relativeAttentionNumBuckets / 2, .relativeAttentionMaxDistance,
                  "must exceed half of relative_attention_num_buckets (\(relativeAttentionNumBuckets)), got \(relativeAttentionMaxDistance)")
        let (embedding, o2) = vocabSize.multipliedReportingOverflow(by: dModel)
        try check(!o2 && embedding <= 1 << 32, .vocabSize,
                  "vocab_size \(vocabSize) × d_model \(dModel) is larger than any model Precis can hold (at most 2^32 values)")
        try check(parameterCount.map { $0 <= 1 << 34 } ?? false, .numLayers,
                  "the model would hold \(parameterCount.map(String.init) ?? "more than 2^63") values: larger than any model Precis can hold (at most 2^34)")
        let parts = feedForwardProj.split(separator: "-", omittingEmptySubsequences: false)
        try check((parts.count == 1 || (parts.count == 2 && parts[0] == "gated")) && Activation(transformersName: denseActFn) != nil,
                  .feedForwardProj,
                  "'\(feedForwardProj)' is not 'ACT' or 'gated-ACT' with ACT one of relu, gelu, gelu_new, silu")
        try check(dropoutRate >= 0 && dropoutRate < 1, .dropoutRate, "must be in [0, 1), got \(dropoutRate)")
        try check(layerNormEpsilon > 0 && layerNormEpsilon < 1, .layerNormEpsilon, "must be in (0, 1), got \(layerNormEpsilon)")
        try check(initializerFactor.isFinite && initializerFactor > 0, .initializerFactor, "must be positive, got \(initializerFactor)")
        for (v, k) in [(padTokenId, CodingKeys.padTokenId), (eosTokenId, .eosTokenId), (startTokenId, .decoderStartTokenId)] {
            try check(v >= 0 && v < vocabSize, k, "token id \(v) is outside the vocabulary (size \(vocabSize))")
        }
    }
}
