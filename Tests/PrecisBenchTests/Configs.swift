import Foundation
import PrecisModels

/// The model configs the benchmark tests run and count.
enum Configs {
    /// A model small enough to step in milliseconds (and too small to lend the sgemm burst its operands).
    static func tiny() -> BartConfig {
        var c = BartConfig()
        c.vocabSize = 40; c.dModel = 16; c.encoderLayers = 2; c.decoderLayers = 2
        c.encoderAttentionHeads = 4; c.decoderAttentionHeads = 2; c.encoderFfnDim = 24; c.decoderFfnDim = 20
        c.maxPositionEmbeddings = 32; c.dropout = 0; c.attentionDropout = 0; c.activationDropout = 0; c.initStd = 0.2
        return c
    }

    /// A model of config `c` as the benchmarks get one: `config.json` bytes through the registry.
    static func model(_ c: BartConfig) throws -> any Seq2SeqModel {
        try ModelRegistry.model(config: try JSONEncoder().encode(c), file: "test config")
    }

    static func preset(_ name: String) throws -> BartConfig {
        try BartConfig.parse(Data(ModelPresets.all[name]!.utf8), file: name)
    }

    /// facebook/bart-base's shape: 6 + 6 layers of width 768, 12 heads, FFN 3072, vocabulary 50265.
    static func baseLike() -> BartConfig {
        var c = BartConfig()
        c.vocabSize = 50265; c.dModel = 768; c.encoderLayers = 6; c.decoderLayers = 6
        c.encoderAttentionHeads = 12; c.decoderAttentionHeads = 12; c.encoderFfnDim = 3072; c.decoderFfnDim = 3072
        return c
    }
}
