import Foundation
import PrecisCore

/// BART's `config.json`, as transformers' `BartConfig` defines it: keys in snake_case, unknown keys
/// ignored, missing keys given transformers' defaults.
public struct BartConfig: Codable, Sendable, Equatable {
    public var modelType = "bart"
    public var vocabSize = 50265
    public var maxPositionEmbeddings = 1024
    public var dModel = 1024
    public var encoderLayers = 12
    public var decoderLayers = 12
    public var encoderAttentionHeads = 16
    public var decoderAttentionHeads = 16
    public var encoderFfnDim = 4096
    public var decoderFfnDim = 4096
    public var activationFunction = "gelu"
    public var dropout = 0.1
    public var attentionDropout = 0.0
    public var activationDropout = 0.0
    public var initStd = 0.02
    public var scaleEmbedding = false
    public var padTokenId = 1
    public var bosTokenId = 0
    public var eosTokenId = 2
    public var decoderStartTokenId = 2
    public var forcedBosTokenId: Int? = nil
    public var forcedEosTokenId: Int? = 2
    public var tieWordEmbeddings = true
    public var isEncoderDecoder = true
    public var useCache = true

    /// PyTorch's nn.LayerNorm default; BART has no config key for it.
    public var layerNormEps: Float { 1e-5 }

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case modelType = "model_type", vocabSize = "vocab_size"
        case maxPositionEmbeddings = "max_position_embeddings", dModel = "d_model"
        case encoderLayers = "encoder_layers", decoderLayers = "decoder_layers"
        case encoderAttentionHeads = "encoder_attention_heads", decoderAttentionHeads = "decoder_attention_heads"
        case encoderFfnDim = "encoder_ffn_dim", decoderFfnDim = "decoder_ffn_dim"
        case activationFunction = "activation_function", dropout
        case attentionDropout = "attention_dropout", activationDropout = "activation_dropout"
        case initStd = "init_std", scaleEmbedding = "scale_embedding"
        case padTokenId = "pad_token_id", bosTokenId = "bos_token_id", eosTokenId = "eos_token_id"
        case decoderStartTokenId = "decoder_start_token_id"
        case forcedBosTokenId = "forced_bos_token_id", forcedEosTokenId = "forced_eos_token_id"
        case tieWordEmbeddings = "tie_word_embeddings", isEncoderDecoder = "is_encoder_decoder"
        case useCache = "use_cache"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func get<T: Decodable>(_ key: CodingKeys, _ current: T) throws -> T {
            try c.decodeIfPresent(T.self, forKey: key) ?? current
        }
        modelType = try get(.modelType, modelType)
        vocabSize = try get(.vocabSize, vocabSize)
        maxPositionEmbeddings = try get(.maxPositionEmbeddings, maxPositionEmbeddings)
        dModel = try get(.dModel, dModel)
        encoderLayers = try get(.encoderLayers, encoderLayers)
        decoderLayers = try get(.decoderLayers, decoderLayers)
        encoderAttentionHeads = try get(.encoderAttentionHeads, encoderAttentionHeads)
        decoderAttentionHeads = try get(.decoderAttentionHeads, decoderAttentionHeads)
        encoderFfnDim = try get(.encoderFfnDim, encoderFfnDim)
        decoderFfnDim = try get(.decoderFfnDim, decoderFfnDim)
        activationFunction = try get(.activationFunction, activationFunction)
        dropout = try get(.dropout, dropout)
        attentionDropout = try get(.attentionDropout, attentionDropout)
        activationDropout = try get(.activationDropout, activationDropout)
        initStd = try get(.initStd, initStd)
        scaleEmbedding = try get(.scaleEmbedding, scaleEmbedding)
        padTokenId = try get(.padTokenId, padTokenId)
        bosTokenId = try get(.bosTokenId, bosTokenId)
        eosTokenId = try get(.eosTokenId, eosTokenId)
        decoderStartTokenId = try get(.decoderStartTokenId, decoderStartTokenId)
        // An explicit null means "none" for the forced tokens.
        if c.contains(.forcedBosTokenId) { forcedBosTokenId = try c.decodeIfPresent(Int.self, forKey: .forcedBosTokenId) }
        if c.contains(.forcedEosTokenId) { forcedEosTokenId = try c.decodeIfPresent(Int.self, forKey: .forcedEosTokenId) }
        tieWordEmbeddings = try get(.tieWordEmbeddings, tieWordEmbeddings)
        isEncoderDecoder = try get(.isEncoderDecoder, isEncoderDecoder)
        useCache = try get(.useCache, useCache)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(modelType, forKey: .modelType)
        try c.encode(vocabSize, forKey: .vocabSize)
        try c.encode(maxPositionEmbeddings, forKey: .maxPositionEmbeddings)
        try c.encode(dModel, forKey: .dModel)
        try c.encode(encoderLayers, forKey: .encoderLayers)
        try c.encode(decoderLayers, forKey: .decoderLayers)
        try c.encode(encoderAttentionHeads, forKey: .encoderAttentionHeads)
        try c.encode(decoderAttentionHeads, forKey: .decoderAttentionHeads)
        try c.encode(encoderFfnDim, forKey: .encoderFfnDim)
        try c.encode(decoderFfnDim, forKey: .decoderFfnDim)
        try c.encode(activationFunction, forKey: .activationFunction)
        try c.encode(dropout, forKey: .dropout)
        try c.encode(attentionDropout, forKey: .attentionDropout)
        try c.encode(activationDropout, forKey: .activationDropout)
        try c.encode(initStd, forKey: .initStd)
        try c.encode(scaleEmbedding, forKey: .scaleEmbedding)
        try c.encode(padTokenId, forKey: .padTokenId)
        try c.encode(bosTokenId, forKey: .bosTokenId)
        try c.encode(eosTokenId, forKey: .eosTokenId)
        try c.encode(decoderStartTokenId, forKey: .decoderStartTokenId)
        try c.encode(forcedBosTokenId, forKey: .forcedBosTokenId)
        try c.encode(forcedEosTokenId, forKey: .forcedEosTokenId)
        try c.encode(tieWordEmbeddings, forKey: .tieWordEmbeddings)
        try c.encode(isEncoderDecoder, forKey: .isEncoderDecoder)
        try c.encode(useCache, forKey: .useCache)
    }

    /// Parses `config.json` bytes; `file` names the source in errors.
    public static func parse(_ data: Data, file: String) throws -> BartConfig {
        let cfg = try ConfigDecoding.decode(BartConfig.self, data, file: file)
        try cfg.validate(file: file)
        return cfg
    }

    public func validate(file: String) throws {
        func check(_ ok: Bool, _ field: CodingKeys, _ reason: String) throws {
            if !ok { throw ModelError.invalidConfig(file: file, field: field.rawValue, reason: reason) }
        }
        try check(vocabSize > 0, .vocabSize, "must be positive, got \(vocabSize)")
        try check(dModel > 0, .dModel, "must be positive, got \(dModel)")
        try check(maxPositionEmbeddings > 0, .maxPositionEmbeddings, "must be positive")
        try check(encoderLayers >= 0, .encoderLayers, "must not be negative")
        try check(decoderLayers >= 0, .decoderLayers, "must not be negative")
        try check(encoderAttentionHeads > 0 && dModel % encoderAttentionHeads == 0, .encoderAttentionHeads,
                  "d_model \(dModel) must be divisible by encoder_attention_heads \(encoderAttentionHeads)")
        try check(decoderAttentionHeads > 0 && dModel % decoderAttentionHeads == 0, .decoderAttentionHeads,
                  "d_model \(dModel) must be divisible by decoder_attention_heads \(decoderAttentionHeads)")
        try check(encoderFfnDim > 0, .encoderFfnDim, "must be positive")
        try check(decoderFfnDim > 0, .decoderFfnDim, "must be positive")
        try check(Activation(transformersName: activationFunction) != nil, .activationFunction,
                  "unsupported activation '\(activationFunction)' (gelu, gelu_new, gelu_pytorch_tanh, relu, silu)")
        for (v, k) in [(dropout, CodingKeys.dropout), (attentionDropout, .attentionDropout), (activationDropout, .activationDropout)] {
            try check(v >= 0 && v < 1, k, "must be in [0, 1), got \(v)")
        }
        for (v, k) in [(padTokenId, CodingKeys.padTokenId), (eosTokenId, .eosTokenId), (decoderStartTokenId, .decoderStartTokenId)] {
            try check(v >= 0 && v < vocabSize, k, "token id \(v) is outside the vocabulary (size \(vocabSize))")
        }
        try check(tieWordEmbeddings, .tieWordEmbeddings, "untied LM heads are not supported for BART")
        // Sizes that allocate: far above any real BART (mBART: 250k ids, bart-large: d 1024, 12 layers),
        // far below what would exhaust memory or overflow the layout's arithmetic.
        for (v, k, hi) in [(vocabSize, CodingKeys.vocabSize, 1 << 22), (dModel, .dModel, 1 << 16),
                           (encoderFfnDim, .encoderFfnDim, 1 << 18), (decoderFfnDim, .decoderFfnDim, 1 << 18),
                           (encoderLayers, .encoderLayers, 1024), (decoderLayers, .decoderLayers, 1024),
                           (maxPositionEmbeddings, .maxPositionEmbeddings, 1 << 20)] {
            try check(v <= hi, k, "\(v) is larger than any model Precis can hold (at most \(hi))")
        }
        let (embedding, overflow) = vocabSize.multipliedReportingOverflow(by: dModel)
        try check(!overflow && embedding <= 1 << 32, .vocabSize,
                  "vocab_size \(vocabSize) × d_model \(dModel) is larger than any model Precis can hold (at most 2^32 values)")
    }

    public var activation: Activation { Activation(transformersName: activationFunction)! }
}
