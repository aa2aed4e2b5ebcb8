import Foundation
import PrecisCore

/// BART's `config.json`, as transformers' `BartConfig` defines it: keys in snake_case, unknown keys
/// ignored, missing keys given transformers' defaults. The fields BART shares with Pegasus are in
/// `core` (read as the config's own: `config.dModel`); `bos_token_id` is BART's.
@dynamicMemberLookup
public struct BartConfig: BartFamilyConfig, Codable, Sendable, Equatable {
    public var core = BartFamilyConfigCore(modelType: "bart", padTokenId: 1, eosTokenId: 2, decoderStartTokenId: 2,
                                           forcedEosTokenId: 2)
    public var bosTokenId = 0

    public init() {}

    enum CodingKeys: String, CodingKey {
        case bosTokenId = "bos_token_id"
    }

    public init(from decoder: Decoder) throws {
        try core.decode(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        bosTokenId = try c.decodeIfPresent(Int.self, forKey: .bosTokenId) ?? bosTokenId
    }

    public func encode(to encoder: Encoder) throws {
        try core.encode(to: encoder, nullForcedBos: true)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(bosTokenId, forKey: .bosTokenId)
    }

    /// Parses `config.json` bytes; `file` names the source in errors.
    public static func parse(_ data: Data, file: String) throws -> BartConfig {
        let cfg = try ConfigDecoding.decode(BartConfig.self, data, file: file)
        try cfg.validate(file: file)
        return cfg
    }

    public func validate(file: String) throws {
        try core.validate(file: file, family: "BART")
    }
}
