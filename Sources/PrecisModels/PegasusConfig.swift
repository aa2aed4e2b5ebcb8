import Foundation
import PrecisCore

/// Pegasus' `config.json`, as transformers' `PegasusConfig` defines it: keys in snake_case, unknown
/// keys ignored, missing keys given transformers' defaults (pad 0, eos 1, decoder start = pad). The
/// fields Pegasus shares with BART are in `core` (read as the config's own: `config.dModel`); an
/// optional `bos_token_id`, LayerDrop and the sinusoidal table's bound are Pegasus'.
@dynamicMemberLookup
public struct PegasusConfig: BartFamilyConfig, Codable, Sendable, Equatable {
    public var core = BartFamilyConfigCore(modelType: "pegasus", padTokenId: 0, eosTokenId: 1, decoderStartTokenId: 0,
                                           forcedEosTokenId: 1)
    public var encoderLayerdrop = 0.0
    public var decoderLayerdrop = 0.0
    /// Not a `PegasusConfig` field (transformers' base config leaves it unset); kept when a file has it.
    public var bosTokenId: Int? = nil

    public init() {}

    enum CodingKeys: String, CodingKey {
        case encoderLayerdrop = "encoder_layerdrop", decoderLayerdrop = "decoder_layerdrop"
        case bosTokenId = "bos_token_id"
    }

    public init(from decoder: Decoder) throws {
        try core.decode(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        encoderLayerdrop = try c.decodeIfPresent(Double.self, forKey: .encoderLayerdrop) ?? encoderLayerdrop
        decoderLayerdrop = try c.decodeIfPresent(Double.self, forKey: .decoderLayerdrop) ?? decoderLayerdrop
        bosTokenId = try c.decodeIfPresent(Int.self, forKey: .bosTokenId)
    }

    public func encode(to encoder: Encoder) throws {
        try core.encode(to: encoder, nullForcedBos: false)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(encoderLayerdrop, forKey: .encoderLayerdrop)
        try c.encode(decoderLayerdrop, forKey: .decoderLayerdrop)
        try c.encodeIfPresent(bosTokenId, forKey: .bosTokenId)
    }

    /// Parses `config.json` bytes; `file` names the source in errors.
    public static func parse(_ data: Data, file: String) throws -> PegasusConfig {
        let cfg = try ConfigDecoding.decode(PegasusConfig.self, data, file: file)
        try cfg.validate(file: file)
        return cfg
    }

    public func validate(file: String) throws {
        func fail(_ field: String, _ reason: String) -> ModelError {
            ModelError.invalidConfig(file: file, field: field, reason: reason)
        }
        let c = core
        if c.modelType != "pegasus" { throw fail("model_type", "expected \"pegasus\", got \"\(c.modelType)\"") }
        try c.validate(file: file, family: "Pegasus",
                       optionalIds: [(bosTokenId, "bos_token_id"), (c.forcedBosTokenId, "forced_bos_token_id"),
                                     (c.forcedEosTokenId, "forced_eos_token_id")])
        // LayerDrop skips whole layers at random: not implemented, so refused rather than ignored.
        if encoderLayerdrop != 0 {
            throw fail(CodingKeys.encoderLayerdrop.rawValue, "LayerDrop is not supported (must be 0, got \(encoderLayerdrop))")
        }
        if decoderLayerdrop != 0 {
            throw fail(CodingKeys.decoderLayerdrop.rawValue, "LayerDrop is not supported (must be 0, got \(decoderLayerdrop))")
        }
        // The sinusoidal table is built in memory (max_position_embeddings × d_model floats): far above
        // pegasus-x's 16384 × 1024, far below what would exhaust memory.
        let (table, overflow) = c.maxPositionEmbeddings.multipliedReportingOverflow(by: c.dModel)
        if overflow || table > 1 << 26 {
            throw fail("max_position_embeddings",
                       "max_position_embeddings \(c.maxPositionEmbeddings) × d_model \(c.dModel) is larger than Precis can hold (at most 2^26 values)")
        }
    }
}
