import PrecisCore

/// BART's incremental decoder: the BART family's, with post-LN layers and learned positions.
public typealias BartIncrementalDecoder = BartFamilyIncrementalDecoder

extension BartFamilyIncrementalDecoder {
    /// - Parameters: `encoderOutput` [sources, S, D] from `encoderHiddenStates`; `attentionMask` the
    ///   sources' mask; `rowSource` maps each decoding row to its source. Its products have the
    ///   model's `matmulPrecision`.
    public convenience init(model: BartModel, encoderOutput: FloatBuffer, attentionMask: [Int32], sources: Int,
                            sourceLength: Int, rowSource: [Int], maxLength: Int) {
        let w = model.decoderWeights
        self.init(w, packed: { model.generation.packedDecoder(w) }, bf16: { model.generation.bf16Weights(w) },
                  encoderOutput: encoderOutput, attentionMask: attentionMask, sources: sources, sourceLength: sourceLength,
                  rowSource: rowSource, maxLength: maxLength)
    }
}

/// Generation with BART: the encoder alone, and incremental decoders (with their packed weights)
/// cached between generations.
extension BartModel {
    /// The decoder as incremental decoding runs it: post-LN, positions learned (past their offset).
    var decoderWeights: BartFamilyDecoderWeights {
        let d = config.dModel
        return BartFamilyDecoderWeights(
            params: params, finalLogitsBias: finalLogitsBias, layout: layout, config: config.core, preNorm: false,
            embedScale: config.scaleEmbedding ? Float(d).squareRoot() : 1,
            positions: params.pointer + layout.decoderPositions + Self.positionOffset * d, bf16Kernel: bf16Kernel)
    }

    /// An incremental decoder for these sources: the previous one reset when the shape is the same
    /// (its buffers are reused), else a new one.
    public func incrementalDecoder(encoderOutput: FloatBuffer, attentionMask: [Int32], sources: Int, sourceLength: Int,
                                   rowSource: [Int], maxLength: Int) -> any IncrementalDecoding {
        generation.incrementalDecoder(decoderWeights, encoderOutput: encoderOutput, attentionMask: attentionMask, sources: sources,
                                      sourceLength: sourceLength, rowSource: rowSource, maxLength: maxLength)
    }

    /// Runs the encoder alone in evaluation mode (no dropout) and returns its last hidden state
    /// [B, S, D]; the batch's labels are not used.
    public func encoderHiddenStates(inputIds: [Int32], attentionMask: [Int32], batchSize: Int, sourceLength: Int) throws -> FloatBuffer {
        try runner.encoderHiddenStates(self, facts: facts, dModel: config.dModel, inputIds: inputIds, attentionMask: attentionMask,
                                       batchSize: batchSize, sourceLength: sourceLength) { ws in
            encode(ws, DropoutPlan(config: config.core, training: false, seed: 0))
            return UnsafePointer(ws.encoderOutput)
        }
    }
}
