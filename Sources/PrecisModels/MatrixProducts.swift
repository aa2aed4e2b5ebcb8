import PrecisCore

/// One kind of matrix product a training step runs, as `BLAS.gemm` takes it:
/// C (m × n) = op(A) · op(B), op(A) m × k, op(B) k × n, with the leading dimensions training uses,
/// `count` times per step (over the whole batch, before lanes split its rows).
public struct MatrixProduct: Sendable, Equatable {
    /// The half of the step that runs it: backward runs two products for each forward one.
    public enum Pass: String, Sendable {
        case forward, backward
    }

    /// A label for the product's shape class, e.g. `enc fc1 x·Wᵀ` or `dec self Q·Kᵀ (per head)`:
    /// products of one layer kind, shape and kernel share it, forward and backward alike.
    public var name: String
    public var m: Int, n: Int, k: Int
    public var transA: Bool, transB: Bool
    public var lda: Int, ldb: Int, ldc: Int
    public var count: Int
    public var pass: Pass
    /// One (batch row, head) pair's product of attention, run by `HeadGemm` on one thread; its
    /// operands are a head's slice of rows as wide as the model. The others are whole-batch
    /// products run by OpenBLAS.
    public var perHead: Bool

    /// A product over dense operands (leading dimension = the row length) unless strides are given.
    public init(name: String, m: Int, n: Int, k: Int, transA: Bool, transB: Bool, count: Int, pass: Pass,
                perHead: Bool = false, lda: Int? = nil, ldb: Int? = nil, ldc: Int? = nil) {
        self.name = name
        self.m = m; self.n = n; self.k = k
        self.transA = transA; self.transB = transB
        self.lda = lda ?? (transA ? m : k)
        self.ldb = ldb ?? (transB ? k : n)
        self.ldc = ldc ?? n
        self.count = count; self.pass = pass; self.perHead = perHead
    }

    /// Floating-point operations of all `count` products (a multiply-add is two).
    public var flops: Int { 2 * m * n * k * count }

    /// Everything but the count: two products of one kind add up their counts.
    func isSameKind(as o: MatrixProduct) -> Bool {
        var a = self
        a.count = o.count
        return a == o
    }
}

extension Sequence where Element == MatrixProduct {
    /// The floating-point operations of these products, of one pass or (nil) of both.
    public func flops(_ pass: MatrixProduct.Pass? = nil) -> Int {
        reduce(0) { $0 + (pass == nil || $1.pass == pass ? $1.flops : 0) }
    }
}

/// A model that can list the matrix products its training step runs for a batch shape (what
/// `precis bench` counts and times).
public protocol MatrixProductDescribing {
    /// Every matrix product of one training step (forward and backward) on `batch` rows of `source`
    /// input and `target` label positions, products of one kind counted together.
    func matrixProducts(batch: Int, source: Int, target: Int) -> [MatrixProduct]
}

/// Collects a step's products: identical ones add up their counts, in the order first seen.
struct MatrixProductList {
    private(set) var products: [MatrixProduct] = []

    mutating func add(_ p: MatrixProduct) {
        if let i = products.firstIndex(where: { $0.isSameKind(as: p) }) {
            products[i].count += p.count
        } else {
            products.append(p)
        }
    }

    /// A linear layer y = x·Wᵀ + b over `rows` rows, W = [out, in]: forward y = x·Wᵀ; backward the
    /// input gradient dX = dY·W and the weight gradient dW = dYᵀ·X.
    mutating func linear(_ name: String, weight w: [Int], rows: Int, labels: (String, String, String) = ("x·Wᵀ", "dY·W", "dYᵀ·X")) {
        precondition(w.count == 2, "\(name): a linear weight has two dimensions, this one \(w)")
        let out = w[0], inp = w[1]
        add(MatrixProduct(name: "\(name) \(labels.0)", m: rows, n: out, k: inp, transA: false, transB: true, count: 1, pass: .forward))
        add(MatrixProduct(name: "\(name) \(labels.1)", m: rows, n: inp, k: out, transA: false, transB: false, count: 1, pass: .backward))
        add(MatrixProduct(name: "\(name) \(labels.2)", m: out, n: inp, k: rows, transA: true, transB: false, count: 1, pass: .backward))
    }

    /// Attention's products for each of `batch` × `heads` (row, head) pairs, `tq` queries over `tk`
    /// keys, heads of `dim / heads` columns in rows of `dim` floats; probabilities are dense tiles.
    /// Forward: scores Q·Kᵀ and context P·V. Backward: dP = dC·Vᵀ (a Q·Kᵀ shape), dV = Pᵀ·dC,
    /// dQ = dS·K (a P·V shape) and dK = dSᵀ·Q (a Pᵀ·dC shape).
    mutating func heads(_ name: String, batch: Int, queries tq: Int, keys tk: Int, dim: Int, heads h: Int) {
        let dh = dim / h, pairs = batch * h
        func product(_ label: String, _ m: Int, _ n: Int, _ k: Int, _ ta: Bool, _ tb: Bool, _ lda: Int, _ ldb: Int, _ ldc: Int,
                     _ pass: MatrixProduct.Pass) {
            add(MatrixProduct(name: "\(name) \(label) (per head)", m: m, n: n, k: k, transA: ta, transB: tb, count: pairs,
                              pass: pass, perHead: true, lda: lda, ldb: ldb, ldc: ldc))
        }
        product("Q·Kᵀ", tq, tk, dh, false, true, dim, dim, tk, .forward)    // scores
        product("P·V", tq, dh, tk, false, false, tk, dim, dim, .forward)    // context
        product("Q·Kᵀ", tq, tk, dh, false, true, dim, dim, tk, .backward)   // dP = dC·Vᵀ
        product("Pᵀ·dC", tk, dh, tq, true, false, tk, dim, dim, .backward)  // dV = Pᵀ·dC
        product("P·V", tq, dh, tk, false, false, tk, dim, dim, .backward)   // dQ = dS·K
        product("Pᵀ·dC", tk, dh, tq, true, false, tk, dim, dim, .backward)  // dK = dSᵀ·Q
    }
}

extension BartModel {
    public func matrixProducts(batch: Int, source: Int, target: Int) -> [MatrixProduct] {
        Self.matrixProducts(config: config.core, table: table, batch: batch, source: source, target: target)
    }

    /// The products of a BART config's training step, without allocating a model.
    public static func matrixProducts(_ config: BartConfig, batch: Int, source: Int, target: Int) -> [MatrixProduct] {
        matrixProducts(config: config.core, table: layout(config).0, batch: batch, source: source, target: target)
    }

    /// Walks the layers as `step` runs them, with the weights' shapes read from the parameter table:
    /// each encoder layer's self-attention and FFN (over batch × source rows), each decoder layer's
    /// causal self-attention, cross-attention (queries over batch × target rows, keys and values
    /// projected from the encoder output) and FFN, and the LM head tied to the shared embedding (the
    /// same walk serves Pegasus).
    static func matrixProducts(config c: BartFamilyConfigCore, table: ParameterTable, batch b: Int, source s: Int,
                               target t: Int) -> [MatrixProduct] {
        func weight(_ module: String) -> [Int] {
            guard let e = table[module + ".weight"] else { preconditionFailure("no parameter \(module).weight") }
            return e.shape
        }
        var list = MatrixProductList()
        let ns = b * s, nt = b * t
        for l in 0..<c.encoderLayers {
            let layer = "model.encoder.layers.\(l)", attn = layer + ".self_attn"
            for proj in ["q_proj", "k_proj", "v_proj"] { list.linear("enc proj", weight: weight("\(attn).\(proj)"), rows: ns) }
            list.heads("enc attn", batch: b, queries: s, keys: s, dim: weight(attn + ".q_proj")[0], heads: c.encoderAttentionHeads)
            list.linear("enc proj", weight: weight(attn + ".out_proj"), rows: ns)
            list.linear("enc fc1", weight: weight(layer + ".fc1"), rows: ns)
            list.linear("enc fc2", weight: weight(layer + ".fc2"), rows: ns)
        }
        for l in 0..<c.decoderLayers {
            let layer = "model.decoder.layers.\(l)", selfAttn = layer + ".self_attn", cross = layer + ".encoder_attn"
            for proj in ["q_proj", "k_proj", "v_proj"] { list.linear("dec proj", weight: weight("\(selfAttn).\(proj)"), rows: nt) }
            list.heads("dec self", batch: b, queries: t, keys: t, dim: weight(selfAttn + ".q_proj")[0], heads: c.decoderAttentionHeads)
            list.linear("dec proj", weight: weight(selfAttn + ".out_proj"), rows: nt)
            list.linear("dec proj", weight: weight(cross + ".q_proj"), rows: nt)
            for proj in ["k_proj", "v_proj"] { list.linear("dec cross K,V", weight: weight("\(cross).\(proj)"), rows: ns) }
            list.heads("dec cross", batch: b, queries: t, keys: s, dim: weight(cross + ".q_proj")[0], heads: c.decoderAttentionHeads)
            list.linear("dec proj", weight: weight(cross + ".out_proj"), rows: nt)
            list.linear("dec fc1", weight: weight(layer + ".fc1"), rows: nt)
            list.linear("dec fc2", weight: weight(layer + ".fc2"), rows: nt)
        }
        list.linear("lm head", weight: weight("model.shared"), rows: nt, labels: ("Y·Eᵀ", "dL·E", "dLᵀ·Y"))
        return list.products
    }
}
