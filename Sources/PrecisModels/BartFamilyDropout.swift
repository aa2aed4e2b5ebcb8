import PrecisCore

/// Every place a BART-family model (BART, Pegasus) drops out, by name: forward and backward ask for
/// the same site, which fixes its probability (hidden, attention or activation dropout) and its mask
/// stream.
enum BartFamilyDropoutSite: Equatable {
    /// After the encoder's embeddings (BART: after their LayerNorm).
    case encoderEmbedding
    case encoder(Int, EncoderLayerSite)
    /// After the decoder's embeddings (BART: after their LayerNorm).
    case decoderEmbedding
    case decoder(Int, DecoderLayerSite)

    /// The sites of encoder layer l (raw values are part of the stream ids: never renumber).
    enum EncoderLayerSite: UInt32 {
        case attentionProbabilities = 0, attentionOutput = 1, activation = 2, ffnOutput = 3
    }

    /// The sites of decoder layer l (raw values are part of the stream ids: never renumber).
    enum DecoderLayerSite: UInt32 {
        case selfAttentionProbabilities = 0, selfAttentionOutput = 1, crossAttentionProbabilities = 2
        case crossAttentionOutput = 3, activation = 4, ffnOutput = 5
    }

    /// The mask stream: encoder sites from 1000, decoder sites from 100 000, 16 per layer, the
    /// embedding's first.
    var stream: UInt32 {
        switch self {
        case .encoderEmbedding: return 1000
        case let .encoder(l, k): return 1000 + 16 * UInt32(l + 1) + k.rawValue
        case .decoderEmbedding: return 100_000
        case let .decoder(l, k): return 100_000 + 16 * UInt32(l + 1) + k.rawValue
        }
    }
}

/// Dropout probabilities and the seed of one step, and the rows of the batch a lane runs.
struct DropoutPlan {
    var hidden: Float
    var attention: Float
    var activation: Float
    var seed: UInt64
    /// The lane's rows of the batch (see `DropoutSite.firstRow`).
    var firstRow = 0
    var rows = 1

    /// The step's plan for a BART-family config: its three probabilities in training, none in evaluation.
    init(config: BartFamilyConfigCore, training: Bool, seed: UInt64) {
        hidden = training ? Float(config.dropout) : 0
        attention = training ? Float(config.attentionDropout) : 0
        activation = training ? Float(config.activationDropout) : 0
        self.seed = seed
    }

    private init(hidden: Float, attention: Float, activation: Float, seed: UInt64) {
        self.hidden = hidden; self.attention = attention; self.activation = activation; self.seed = seed
    }

    /// No dropout anywhere.
    static let off = DropoutPlan(hidden: 0, attention: 0, activation: 0, seed: 0)

    /// The plan for the lane that runs `rows` of the batch.
    func lane(_ rows: Range<Int>) -> DropoutPlan {
        var d = self
        d.firstRow = rows.lowerBound
        d.rows = max(1, rows.count)
        return d
    }

    /// The site's probability and mask stream for this step and lane.
    func site(_ site: BartFamilyDropoutSite) -> DropoutSite {
        let p: Float
        switch site {
        case .encoderEmbedding, .decoderEmbedding: p = hidden
        case let .encoder(_, k):
            switch k {
            case .attentionProbabilities: p = attention
            case .activation: p = activation
            case .attentionOutput, .ffnOutput: p = hidden
            }
        case let .decoder(_, k):
            switch k {
            case .selfAttentionProbabilities, .crossAttentionProbabilities: p = attention
            case .activation: p = activation
            case .selfAttentionOutput, .crossAttentionOutput, .ffnOutput: p = hidden
            }
        }
        return DropoutSite(p: p, seed: seed, stream: site.stream, firstRow: firstRow, rows: rows)
    }
}
