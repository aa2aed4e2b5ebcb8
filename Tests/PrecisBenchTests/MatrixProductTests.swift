import Testing
import PrecisBench
import PrecisModels

/// The hand-written count and shape list that `precis bench` used before the model described its
/// own products, kept here as the reference the derived ones are checked against.
enum Reference {
    /// Matrix-multiply FLOPs of one BART forward pass (backward is twice this).
    static func forwardFlops(_ c: BartConfig, batch b: Int, source s: Int, target t: Int) -> Double {
        let d = Double(c.dModel), ns = Double(b * s), nt = Double(b * t)
        let bs = Double(b), sd = Double(s), td = Double(t)
        let enc = 8 * ns * d * d + 4 * bs * sd * sd * d + 4 * ns * d * Double(c.encoderFfnDim)
        let dec = 8 * nt * d * d + 4 * bs * td * td * d          // self-attention
            + 4 * nt * d * d + 4 * ns * d * d + 4 * bs * td * sd * d  // cross-attention
            + 4 * nt * d * Double(c.decoderFfnDim)
        return Double(c.encoderLayers) * enc + Double(c.decoderLayers) * dec + 2 * nt * d * Double(c.vocabSize)
    }

    typealias Shape = (name: String, m: Int, n: Int, k: Int, transA: Bool, transB: Bool, calls: Int)

    /// (name, m, n, k, transA, transB, calls per step) for a BART config, as `GemmProfile.shapes` listed them.
    static func gemmShapes(_ c: BartConfig, batch b: Int, source s: Int, target t: Int) -> [Shape] {
        let d = c.dModel, ns = b * s, nt = b * t, dh = d / c.encoderAttentionHeads, e = c.encoderLayers, dl = c.decoderLayers
        let f = c.encoderFfnDim, v = c.vocabSize, h = c.encoderAttentionHeads
        return [
            ("enc proj x·Wᵀ", ns, d, d, false, true, 4 * e),
            ("enc proj dY·W", ns, d, d, false, false, 4 * e),
            ("enc proj dYᵀ·X", d, d, ns, true, false, 4 * e),
            ("enc fc1 x·Wᵀ", ns, f, d, false, true, e),
            ("enc fc2 x·Wᵀ", ns, d, f, false, true, e),
            ("enc fc1 dY·W", ns, d, f, false, false, e),
            ("enc fc2 dY·W", ns, f, d, false, false, e),
            ("enc fc1 dYᵀ·X", f, d, ns, true, false, e),
            ("enc fc2 dYᵀ·X", d, f, ns, true, false, e),
            ("enc attn Q·Kᵀ (per head)", s, s, dh, false, true, 2 * e * b * h),
            ("enc attn P·V (per head)", s, dh, s, false, false, 2 * e * b * h),
            ("enc attn Pᵀ·dC (per head)", s, dh, s, true, false, 2 * e * b * h),
            ("dec self Q·Kᵀ (per head)", t, t, dh, false, true, 2 * dl * b * h),
            ("dec self P·V (per head)", t, dh, t, false, false, 2 * dl * b * h),
            ("dec self Pᵀ·dC (per head)", t, dh, t, true, false, 2 * dl * b * h),
            ("dec cross Q·Kᵀ (per head)", t, s, dh, false, true, 2 * dl * b * h),
            ("dec cross P·V (per head)", t, dh, s, false, false, 2 * dl * b * h),
            ("dec cross Pᵀ·dC (per head)", s, dh, t, true, false, 2 * dl * b * h),
            ("dec proj x·Wᵀ", nt, d, d, false, true, 6 * dl),
            ("dec proj dYᵀ·X", d, d, nt, true, false, 6 * dl),
            ("dec cross K,V x·Wᵀ", ns, d, d, false, true, 2 * dl),
            ("dec cross K,V dYᵀ·X", d, d, ns, true, false, 2 * dl),
            ("dec ffn x·Wᵀ", nt, f, d, false, true, 3 * dl),
            ("lm head Y·Eᵀ", nt, v, d, false, true, 1),
            ("lm head dL·E", nt, d, v, false, false, 1),
            ("lm head dLᵀ·Y", v, d, nt, true, false, 1),
        ]
    }

    /// The old list with what it left out of the decoder: the input gradients dY·W of its six
    /// projections per layer and of cross-attention's K and V, and its FFN as the six products the
    /// encoder's has (it counted three products of fc1's forward shape).
    static func correctedGemmShapes(_ c: BartConfig, batch b: Int, source s: Int, target t: Int) -> [Shape] {
        let d = c.dModel, ns = b * s, nt = b * t, dl = c.decoderLayers, f = c.decoderFfnDim
        return gemmShapes(c, batch: b, source: s, target: t).filter { $0.name != "dec ffn x·Wᵀ" } + [
            ("dec proj dY·W", nt, d, d, false, false, 6 * dl),
            ("dec cross K,V dY·W", ns, d, d, false, false, 2 * dl),
            ("dec fc1 x·Wᵀ", nt, f, d, false, true, dl),
            ("dec fc2 x·Wᵀ", nt, d, f, false, true, dl),
            ("dec fc1 dY·W", nt, d, f, false, false, dl),
            ("dec fc2 dY·W", nt, f, d, false, false, dl),
            ("dec fc1 dYᵀ·X", f, d, nt, true, false, dl),
            ("dec fc2 dYᵀ·X", d, f, nt, true, false, dl),
        ]
    }
}

@Suite struct MatrixProductTests {
    static let shapes = [(1, 16, 8), (8, 256, 64), (4, 1024, 128), (3, 200, 40)]

    static func configs() throws -> [(String, BartConfig)] {
        [("tiny test model", Configs.tiny()), ("bart-tiny", try Configs.preset("bart-tiny")),
         ("bart-small", try Configs.preset("bart-small")), ("bart-base-like", Configs.baseLike())]
    }

    @Test func flopsEqualTheHandWrittenCount() throws {
        for (name, c) in try Self.configs() {
            for (b, s, t) in Self.shapes {
                let products = BartModel.matrixProducts(c, batch: b, source: s, target: t)
                let forward = Reference.forwardFlops(c, batch: b, source: s, target: t)
                #expect(Double(products.flops(.forward)) == forward, "\(name) \(b)×\(s)×\(t)")
                #expect(Double(products.flops(.backward)) == 2 * forward, "\(name) \(b)×\(s)×\(t)")
                #expect(Double(products.flops()) == 3 * forward, "\(name) \(b)×\(s)×\(t)")
            }
        }
    }

    /// A model's products and the same config's, built without a model, are the same list.
    @Test func modelAndConfigGiveTheSameProducts() throws {
        let model = try Configs.model(try Configs.preset("bart-tiny"))
        #expect(model.matrixProducts(batch: 2, source: 32, target: 16)
                == BartModel.matrixProducts(try Configs.preset("bart-tiny"), batch: 2, source: 32, target: 16))
    }

    /// The old list took the encoder's heads and FFN width for the decoder too, so it is compared
    /// on the configs where they agree (all but the tiny test model; see the next test).
    @Test func gemmShapesAreTheHandWrittenListWithTheDecodersProductsCompleted() throws {
        for (name, c) in try Self.configs() where c.decoderAttentionHeads == c.encoderAttentionHeads
                                                 && c.decoderFfnDim == c.encoderFfnDim {
            for (b, s, t) in Self.shapes {
                let derived = GemmProfile.shapes(BartModel.matrixProducts(c, batch: b, source: s, target: t))
                let expected = Reference.correctedGemmShapes(c, batch: b, source: s, target: t)
                #expect(derived.count == expected.count, "\(name)")
                #expect(Set(derived.map(\.name)).count == derived.count, "one row per name")
                for e in expected {
                    let row = derived.first { $0.name == e.name }
                    #expect(row != nil, "\(name): \(e.name) missing")
                    guard let r = row else { continue }
                    #expect(r.m == e.m && r.n == e.n && r.k == e.k && r.transA == e.transA && r.transB == e.transB
                            && r.calls == e.calls, "\(name) \(b)×\(s)×\(t): \(e.name)")
                    #expect(r.perHead == e.name.contains("per head"), "\(e.name)")
                }
                // The shapes' work is the step's; the old list's fell short of it.
                let flops = derived.reduce(0) { $0 + 2 * $1.m * $1.n * $1.k * $1.calls }
                let old = Reference.gemmShapes(c, batch: b, source: s, target: t).reduce(0) { $0 + 2 * $1.m * $1.n * $1.k * $1.calls }
                #expect(Double(flops) == 3 * Reference.forwardFlops(c, batch: b, source: s, target: t))
                #expect(old < flops)
            }
        }
    }

    /// Strides as training passes them: a head's slice of Q, K, V or the context gradient sits in
    /// rows of the model's width; probabilities and whole-batch operands are dense.
    @Test func stridesAreTheStepsOwn() throws {
        let c = try Configs.preset("bart-small"), d = c.dModel, dh = d / c.encoderAttentionHeads
        let (b, s, t) = (2, 48, 24)
        for p in BartModel.matrixProducts(c, batch: b, source: s, target: t) {
            if p.perHead {
                func ld(_ cols: Int) -> Int { cols == dh ? d : cols }
                #expect(p.lda == ld(p.transA ? p.m : p.k) && p.ldb == ld(p.transB ? p.k : p.n) && p.ldc == ld(p.n), "\(p.name)")
            } else {
                #expect(p.lda == (p.transA ? p.m : p.k) && p.ldb == (p.transB ? p.k : p.n) && p.ldc == p.n, "\(p.name)")
            }
        }
    }

    /// The decoder's own widths and heads are used where they differ from the encoder's.
    @Test func decoderShapesComeFromTheDecodersLayers() throws {
        var c = Configs.baseLike()
        c.decoderFfnDim = 2048; c.decoderAttentionHeads = 8; c.decoderLayers = 2
        let (b, s, t) = (2, 128, 32)
        let products = BartModel.matrixProducts(c, batch: b, source: s, target: t)
        #expect(Double(products.flops()) == 3 * Reference.forwardFlops(c, batch: b, source: s, target: t))
        let shapes = GemmProfile.shapes(products)
        let fc1 = try #require(shapes.first { $0.name == "dec fc1 x·Wᵀ" })
        #expect(fc1.m == b * t && fc1.n == 2048 && fc1.k == 768 && fc1.calls == 2)
        let scores = try #require(shapes.first { $0.name == "dec cross Q·Kᵀ (per head)" })
        #expect(scores.m == t && scores.n == s && scores.k == 768 / 8 && scores.calls == 2 * 2 * b * 8)
        let encScores = try #require(shapes.first { $0.name == "enc attn Q·Kᵀ (per head)" })
        #expect(encScores.k == 768 / 12 && encScores.calls == 2 * 6 * b * 12)
    }
}
