import PrecisCore

extension ParameterTable {
    /// The weight matrices the linear layers and the LM head multiply by, for their bf16 copies
    /// (`BF16Weights`): every two-dimensional `….weight` except the embedding tables (tokens,
    /// positions, relative-position buckets), which are looked up, not multiplied; and the LM head
    /// W [vocab × dModel] at `head` (the shared embedding when tied), listed once.
    func productWeights(head: Int, vocab: Int, dModel: Int) -> [BF16Weights.Entry] {
        let lookups = ["shared.", "embed_tokens.", "embed_positions.", "relative_attention_bias."]
        var out = entries.filter { e in
            e.shape.count == 2 && e.name.hasSuffix(".weight") && e.offset != head
                && !lookups.contains { e.name.hasSuffix($0 + "weight") }
        }.map { BF16Weights.Entry(offset: $0.offset, outDim: $0.shape[0], inDim: $0.shape[1]) }
        out.append(BF16Weights.Entry(offset: head, outDim: vocab, inDim: dModel))
        return out
    }
}
