import PrecisCore

/// Pegasus' incremental decoder: the BART family's, with pre-LN layers and sinusoidal positions
/// (`PegasusModel.incrementalDecoder` makes one).
public typealias PegasusIncrementalDecoder = BartFamilyIncrementalDecoder

/// Generation with Pegasus: the encoder alone, and incremental decoders (with their packed weights)
/// cached between generations.
extension PegasusModel {
    /// The decoder as incremental decoding runs it: pre-LN, sinusoidal positions.
    var decoderWeights: BartFamilyDecoderWeights {
        BartFamilyDecoderWeights(params: params, finalLogitsBias: finalLogitsBias, layout: layout, config: config.core,
                                 preNorm: true, embedScale: embedScale, positions: positions.pointer, bf16Kernel: bf16Kernel)
    }

    /// An incremental decoder for these sources: the previous one reset when the shape is the same
    /// (its buffers are reused), else a new one.
    public func incrementalDecoder(encoderOutput: FloatBuffer, attentionMask: [Int32], sources: Int, sourceLength: Int,
                                   rowSource: [Int], maxLength: Int) -> any IncrementalDecoding {
        generation.incrementalDecoder(decoderWeights, encoderOutput: encoderOutput, attentionMask: attentionMask, sources: sources,
                                      sourceLength: sourceLength, rowSource: rowSource, maxLength: maxLength)
    }

    /// Runs the encoder alone in evaluation mode (no dropout) and returns its last hidden state
    /// [B, S, D] (after its final LayerNorm); the batch's labels are not used.
    public func encoderHiddenStates(inputIds: [Int32], attentionMask: [Int32], batchSize: Int, sourceLength: Int) throws -> FloatBuffer {
        try runner.encoderHiddenStates(self, facts: facts, dModel: config.dModel, inputIds: inputIds, attentionMask: attentionMask,
                                       batchSize: batchSize, sourceLength: sourceLength) { ws in
            encode(ws, DropoutPlan(config: config.core, training: false, seed: 0))
            return UnsafePointer(ws.encoderNorm.y)
        }
    }
}
