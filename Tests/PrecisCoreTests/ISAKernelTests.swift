import Foundation
import Testing
import PrecisCore

/// The AVX-512 kernels and their portable twins agree, and both agree with plain definitions, so
/// machines without AVX-512 (which CI may not be) run code that is tested here too.
@Suite struct ISAKernelTests {
    @Test(arguments: [Activation.gelu, .geluNew, .relu, .silu])
    func dispatchedActivationsMatchThePortableKernels(_ act: Activation) {
        let n = 100_003
        var rng = SeededRNG(seed: 9)
        let x = (0..<n).map { _ in Float(rng.normal() * 3) }, dy = (0..<n).map { _ in Float(rng.normal()) }
        var a = [Float](repeating: 0, count: n), b = a
        act.forward(&a, x, n)
        act.forwardSerial(&b, x, n)
        for i in 0..<n { #expect(abs(a[i] - b[i]) <= 1e-6 * max(1, abs(b[i])), "forward \(i)") }
        act.backward(&a, dy, x, n)
        act.backwardSerial(&b, dy, x, n)
        for i in 0..<n { #expect(abs(a[i] - b[i]) <= 1e-6 * max(1, abs(b[i])), "backward \(i)") }
        // Backward that recomputes the output in place over the input (one pass with AVX-512 GELU).
        var xs = x, g = dy
        act.backwardRecomputing(x: &xs, grad: &g, n)
        act.forwardSerial(&a, x, n)
        act.backwardSerial(&b, dy, x, n)
        for i in 0..<n {
            #expect(abs(xs[i] - a[i]) <= 1e-6 * max(1, abs(a[i])), "recomputed output \(i)")
            #expect(abs(g[i] - b[i]) <= 1e-6 * max(1, abs(b[i])), "recomputing backward \(i)")
        }
    }

    @Test(arguments: [(1, 16, 48), (3, 32, 100), (8, 64, 256), (13, 40, 24)])
    func packedProductsMatchADirectProduct(_ rows: Int, _ inDim: Int, _ outDim: Int) {
        var rng = SeededRNG(seed: UInt64(rows * 1000 + outDim))
        let w = (0..<(outDim * inDim)).map { _ in Float(rng.normal()) }
        let b = (0..<outDim).map { _ in Float(rng.normal()) }
        let x = (0..<(rows * inDim)).map { _ in Float(rng.normal()) }
        let packed = w.withUnsafeBufferPointer { wp in
            b.withUnsafeBufferPointer { PackedWeights(weight: wp.baseAddress!, bias: $0.baseAddress!, outDim: outDim, inDim: inDim) }
        }
        let ld = (outDim + 15) / 16 * 16
        var y = [Float](repeating: 0, count: rows * ld), yp = y
        packed.apply(&y, ldy: ld, x, rows: rows)
        // The portable kernel, 8 rows at a time as `apply` does.
        yp.withUnsafeMutableBufferPointer { out in
            x.withUnsafeBufferPointer { xb in
                var r0 = 0
                while r0 < rows {
                    let n = min(8, rows - r0)
                    packed.portable(out.baseAddress! + r0 * ld, ldy: ld, xb.baseAddress! + r0 * inDim, rows: n, blocks: 0..<packed.blocks)
                    r0 += n
                }
            }
        }
        for r in 0..<rows {
            for o in 0..<outDim {
                var want = Double(b[o])
                for i in 0..<inDim { want += Double(x[r * inDim + i]) * Double(w[o * inDim + i]) }
                #expect(abs(Double(y[r * ld + o]) - want) <= 1e-4 * max(1, abs(want)), "dispatched [\(r), \(o)]")
                #expect(abs(Double(yp[r * ld + o]) - want) <= 1e-4 * max(1, abs(want)), "portable [\(r), \(o)]")
            }
        }
    }
}
