import PrecisCore

/// Flat-buffer offsets of every trainable parameter of a BART-family model (BART, Pegasus), in
/// `named_parameters()` order: the shared embedding, then per stack its learned positions (BART
/// only), its layers and the one LayerNorm it has outside them — BART's `layernorm_embedding` (after
/// the embeddings), Pegasus' `layer_norm` (after the last layer).
struct BartFamilyLayout {
    struct EncoderLayer {
        var selfAttn: AttentionOffsets, ln1: NormOffsets, ffn: FeedForwardOffsets, ln2: NormOffsets
    }
    struct DecoderLayer {
        var selfAttn: AttentionOffsets, ln1: NormOffsets, crossAttn: AttentionOffsets, ln2: NormOffsets
        var ffn: FeedForwardOffsets, ln3: NormOffsets
    }

    var shared = 0
    /// The learned position tables (0 where positions are fixed).
    var encoderPositions = 0, decoderPositions = 0
    /// Each stack's LayerNorm outside its layers.
    var encoderNorm = NormOffsets(weight: 0, bias: 0), decoderNorm = NormOffsets(weight: 0, bias: 0)
    var encoder: [EncoderLayer] = []
    var decoder: [DecoderLayer] = []

    /// Other names a checkpoint may store a parameter under: the tied copies of `model.shared` (each
    /// stack's `embed_tokens`, `lm_head`) and every name without `model.` (a bare `BartModel` or
    /// `PegasusModel`).
    static func aliases(for name: String) -> [String] {
        var out: [String] = []
        if name == "model.shared.weight" {
            out = ["model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight", "lm_head.weight"]
        }
        if name.hasPrefix("model.") { out.append(String(name.dropFirst("model.".count))) }
        if name == "model.shared.weight" { out += ["encoder.embed_tokens.weight", "decoder.embed_tokens.weight"] }
        return out
    }

    /// transformers' `_init_weights`: N(0, `std`) for linear and embedding weights (the padding row of
    /// the token embedding zeroed), zero biases, LayerNorm weight 1 and bias 0.
    func initializeWeights(_ table: ParameterTable, params: FloatBuffer, std: Double, padTokenId: Int, dim: Int, seed: UInt64) {
        var rng = SeededRNG(seed: seed)
        for e in table.entries {
            let p = params.pointer + e.offset
            if e.name.hasSuffix(".bias") {
                Vec.zero(p, e.count)
            } else if e.name.contains("layer_norm") || e.name.contains("layernorm") {
                Vec.fill(p, 1, e.count)
            } else {
                for i in 0..<e.count { p[i] = Float(rng.normal() * std) }
            }
        }
        Vec.zero(params.pointer + shared + padTokenId * dim, dim)
    }

    /// - Parameters: `learnedPositionRows` the rows of each stack's learned position table (nil:
    ///   fixed positions, not parameters); `stackNorm` the name of each stack's LayerNorm outside its
    ///   layers (`layernorm_embedding`, `layer_norm`).
    static func build(_ c: BartFamilyConfigCore, learnedPositionRows: Int?, stackNorm: String) -> (ParameterTable, BartFamilyLayout) {
        var t = ParameterTable()
        var l = BartFamilyLayout()
        let d = c.dModel
        func linear(_ name: String, _ out: Int, _ inp: Int) -> (Int, Int) {
            (t.add(name + ".weight", [out, inp], decay: true), t.add(name + ".bias", [out], decay: false))
        }
        func norm(_ name: String) -> NormOffsets {
            NormOffsets(weight: t.add(name + ".weight", [d], decay: false), bias: t.add(name + ".bias", [d], decay: false))
        }
        func attention(_ name: String) -> AttentionOffsets {
            let k = linear(name + ".k_proj", d, d), v = linear(name + ".v_proj", d, d)
            let q = linear(name + ".q_proj", d, d), o = linear(name + ".out_proj", d, d)
            return AttentionOffsets(qw: q.0, qb: q.1, kw: k.0, kb: k.1, vw: v.0, vb: v.1, ow: o.0, ob: o.1)
        }
        func ffn(_ prefix: String, _ f: Int) -> FeedForwardOffsets {
            let a = linear(prefix + ".fc1", f, d), b = linear(prefix + ".fc2", d, f)
            return FeedForwardOffsets(w1: a.0, b1: a.1, w2: b.0, b2: b.1)
        }
        func positions(_ stack: String) -> Int {
            guard let rows = learnedPositionRows else { return 0 }
            return t.add("model.\(stack).embed_positions.weight", [rows, d], decay: true)
        }
        l.shared = t.add("model.shared.weight", [c.vocabSize, d], decay: true)
        l.encoderPositions = positions("encoder")
        for i in 0..<c.encoderLayers {
            let p = "model.encoder.layers.\(i)"
            let sa = attention(p + ".self_attn"), n1 = norm(p + ".self_attn_layer_norm")
            let f = ffn(p, c.encoderFfnDim), n2 = norm(p + ".final_layer_norm")
            l.encoder.append(EncoderLayer(selfAttn: sa, ln1: n1, ffn: f, ln2: n2))
        }
        l.encoderNorm = norm("model.encoder." + stackNorm)
        l.decoderPositions = positions("decoder")
        for i in 0..<c.decoderLayers {
            let p = "model.decoder.layers.\(i)"
            let sa = attention(p + ".self_attn"), n1 = norm(p + ".self_attn_layer_norm")
            let ca = attention(p + ".encoder_attn"), n2 = norm(p + ".encoder_attn_layer_norm")
            let f = ffn(p, c.decoderFfnDim), n3 = norm(p + ".final_layer_norm")
            l.decoder.append(DecoderLayer(selfAttn: sa, ln1: n1, crossAttn: ca, ln2: n2, ffn: f, ln3: n3))
        }
        l.decoderNorm = norm("model.decoder." + stackNorm)
        return (t, l)
    }
}
