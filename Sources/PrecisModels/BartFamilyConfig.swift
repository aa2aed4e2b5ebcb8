import Foundation
import PrecisCore

/// The `config.json` fields BART and Pegasus share (transformers' `PegasusConfig` is `BartConfig` with
/// other defaults): sizes, dropout, special ids and flags under transformers' snake_case keys, with
/// the checks both make. `BartConfig` and `PegasusConfig` hold one as `core` and add their own fields.
public struct BartFamilyConfigCore: Sendable, Equatable {
    public var modelType: String
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
    public var padTokenId: Int
    public var eosTokenId: Int
    public var decoderStartTokenId: Int
    public var forcedBosTokenId: Int? = nil
    public var forcedEosTokenId: Int?
    public var tieWordEmbeddings = true
    public var isEncoderDecoder = true
    public var useCache = true

    /// PyTorch's nn.LayerNorm default; neither config has a key for it.
    public var layerNormEps: Float { 1e-5 }

    public var activation: Activation { Activation(transformersName: activationFunction)! }

    /// What callers read from the config (`Seq2SeqModel.facts`), with the model's BOS id.
    func facts(modelType: String, bosTokenId: Int?) -> Seq2SeqFacts {
        Seq2SeqFacts(modelType: modelType, vocabSize: vocabSize, dModel: dModel, padTokenId: padTokenId, eosTokenId: eosTokenId,
                     bosTokenId: bosTokenId, decoderStartTokenId: decoderStartTokenId, forcedBosTokenId: forcedBosTokenId,
                     forcedEosTokenId: forcedEosTokenId, maxSourcePositions: maxPositionEmbeddings,
                     maxTargetPositions: maxPositionEmbeddings, tiedHead: tieWordEmbeddings)
    }

    /// `generation_config.json` defaults derived from the config, as transformers derives them (the
    /// BOS and forced ids only when set).
    func generationDefaults(bosTokenId: Int?) -> [String: Any] {
        var g: [String: Any] = ["decoder_start_token_id": decoderStartTokenId, "eos_token_id": eosTokenId, "pad_token_id": padTokenId]
        if let b = bosTokenId { g["bos_token_id"] = b }
        if let f = forcedBosTokenId { g["forced_bos_token_id"] = f }
        if let f = forcedEosTokenId { g["forced_eos_token_id"] = f }
        return g
    }

    /// transformers' defaults for the family's model type and special ids.
    init(modelType: String, padTokenId: Int, eosTokenId: Int, decoderStartTokenId: Int, forcedEosTokenId: Int?) {
        self.modelType = modelType
        self.padTokenId = padTokenId
        self.eosTokenId = eosTokenId
        self.decoderStartTokenId = decoderStartTokenId
        self.forcedEosTokenId = forcedEosTokenId
    }

    enum CodingKeys: String, CodingKey {
        case modelType = "model_type", vocabSize = "vocab_size"
        case maxPositionEmbeddings = "max_position_embeddings", dModel = "d_model"
        case encoderLayers = "encoder_layers", decoderLayers = "decoder_layers"
        case encoderAttentionHeads = "encoder_attention_heads", decoderAttentionHeads = "decoder_attention_heads"
        case encoderFfnDim = "encoder_ffn_dim", decoderFfnDim = "decoder_ffn_dim"
        case activationFunction = "activation_function", dropout
        case attentionDropout = "attention_dropout", activationDropout = "activation_dropout"
        case initStd = "init_std", scaleEmbedding = "scale_embedding"
        case padTokenId = "pad_token_id", eosTokenId = "eos_token_id"
        case decoderStartTokenId = "decoder_start_token_id"
        case forcedBosTokenId = "forced_bos_token_id", forcedEosTokenId = "forced_eos_token_id"
        case tieWordEmbeddings = "tie_word_embeddings", isEncoderDecoder = "is_encoder_decoder"
        case useCache = "use_cache"
    }

    /// Reads the shared keys over these defaults: a missing key (or a null, but for the forced
    /// tokens, where null means "none") keeps its default.
    mutating func decode(from decoder: Decoder) throws {
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
        eosTokenId = try get(.eosTokenId, eosTokenId)
        decoderStartTokenId = try get(.decoderStartTokenId, decoderStartTokenId)
        if c.contains(.forcedBosTokenId) { forcedBosTokenId = try c.decodeIfPresent(Int.self, forKey: .forcedBosTokenId) }
        if c.contains(.forcedEosTokenId) { forcedEosTokenId = try c.decodeIfPresent(Int.self, forKey: .forcedEosTokenId) }
        tieWordEmbeddings = try get(.tieWordEmbeddings, tieWordEmbeddings)
        isEncoderDecoder = try get(.isEncoderDecoder, isEncoderDecoder)
        useCache = try get(.useCache, useCache)
    }

    /// Writes the shared keys; an unset `forced_bos_token_id` is written as null (BART) or left out
    /// (Pegasus), as transformers writes each.
    func encode(to encoder: Encoder, nullForcedBos: Bool) throws {
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
        try c.encode(eosTokenId, forKey: .eosTokenId)
        try c.encode(decoderStartTokenId, forKey: .decoderStartTokenId)
        if nullForcedBos { try c.encode(forcedBosTokenId, forKey: .forcedBosTokenId) }
        else { try c.encodeIfPresent(forcedBosTokenId, forKey: .forcedBosTokenId) }
        try c.encode(forcedEosTokenId, forKey: .forcedEosTokenId)
        try c.encode(tieWordEmbeddings, forKey: .tieWordEmbeddings)
        try c.encode(isEncoderDecoder, forKey: .isEncoderDecoder)
        try c.encode(useCache, forKey: .useCache)
    }

    /// The checks both configs make; `family` names the architecture in messages, `optionalIds` are
    /// further ids checked against the vocabulary when set.
    func validate(file: String, family: String, optionalIds: [(Int?, String)] = []) throws {
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
        func checkId(_ v: Int, _ field: String) throws {
            if !(v >= 0 && v < vocabSize) {
                throw ModelError.invalidConfig(file: file, field: field, reason: "token id \(v) is outside the vocabulary (size \(vocabSize))")
            }
        }
        for (v, k) in [(padTokenId, CodingKeys.padTokenId), (eosTokenId, .eosTokenId), (decoderStartTokenId, .decoderStartTokenId)] {
            try checkId(v, k.rawValue)
        }
        for (v, field) in optionalIds { if let v { try checkId(v, field) } }
        try check(tieWordEmbeddings, .tieWordEmbeddings, "untied LM heads are not supported for \(family)")
        // Sizes that allocate: far above any real model of the family (mBART: 250k ids, bart-large and
        // pegasus-large: d 1024, 12 and 16 layers), far below what would exhaust memory or overflow the
        // layout's arithmetic.
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
}

/// A config that holds a `BartFamilyConfigCore` reads and writes its fields as its own
/// (`config.dModel`), through `@dynamicMemberLookup`.
public protocol BartFamilyConfig {
    var core: BartFamilyConfigCore { get set }
}

extension BartFamilyConfig {
    public subscript<T>(dynamicMember field: WritableKeyPath<BartFamilyConfigCore, T>) -> T {
        get { core[keyPath: field] }
        set { core[keyPath: field] = newValue }
    }

    public subscript<T>(dynamicMember field: KeyPath<BartFamilyConfigCore, T>) -> T { core[keyPath: field] }
}
