import Foundation
import Testing
import PrecisCore
import PrecisModels

/// T5's step products (what `precis bench step` counts) against a count written out by hand.
@Suite struct T5MatrixProductTests {
    /// Forward FLOPs of a T5 step: every projection (no biases; inner width heads × d_kv), the FFN
    /// (two or three matrices), the heads' scores and context, the LM head.
    static func forwardFlops(_ c: T5Config, batch b: Int, source s: Int, target t: Int) -> Double {
        let d = Double(c.dModel), inner = Double(c.innerDim), ff = Double(c.dFf), v = Double(c.vocabSize)
        let ns = Double(b * s), nt = Double(b * t), ffnMatrices = c.isGatedAct ? 3.0 : 2.0
        let pairs = Double(b * c.numHeads), dkv = Double(c.dKv), S = Double(s), T = Double(t)
        let encoder = ns * (4 * inner * d + ffnMatrices * ff * d) * 2 + pairs * 4 * S * S * dkv
        let decoder = (nt * (6 * inner * d + ffnMatrices * ff * d) + ns * 2 * inner * d) * 2
            + pairs * 4 * T * T * dkv + pairs * 4 * T * S * dkv
        return Double(c.numLayers) * encoder + Double(c.decoderLayers) * decoder + 2 * nt * d * v
    }

    @Test(arguments: ["t5-tiny", "t5-small", "flan-t5-small"])
    func flopsEqualTheHandWrittenCount(_ preset: String) throws {
        let model = try ModelPresets.model(preset)
        let config = try #require((model as? T5Model)?.config)
        for (b, s, t) in [(1, 16, 8), (8, 256, 64), (3, 200, 40)] {
            let products = model.matrixProducts(batch: b, source: s, target: t)
            let forward = Self.forwardFlops(config, batch: b, source: s, target: t)
            #expect(Double(products.flops(.forward)) == forward, "\(preset) \(b)×\(s)×\(t)")
            #expect(Double(products.flops(.backward)) == 2 * forward, "\(preset) \(b)×\(s)×\(t)")
        }
    }
}
