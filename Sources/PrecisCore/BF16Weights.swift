/// The bf16 copies of a model's weight matrices that its products read: for each weight W
/// [out × in] in the flat parameter buffer, op(B) = Wᵀ packed for the forward product x·Wᵀ and
/// op(B) = W packed for the input gradient dY·W, made again by `refresh()` from the fp32 master
/// values (once per step, after the parameters changed), never once per product.
///
/// `@unchecked Sendable` because `refresh` rewrites the packed copies while no product reads them:
/// `refresh()` at the start of a pass, before its lanes start; `refresh(_:)` during a pass for
/// weights no lane has reached yet, published to the lanes by `ParameterGate`'s release store.
/// Otherwise the copies and the index are only read, by any number of threads.
public final class BF16Weights: @unchecked Sendable {
    /// One weight matrix W [outDim × inDim] at `offset` in the flat buffer.
    public struct Entry: Sendable, Equatable {
        public var offset: Int
        public var outDim: Int
        public var inDim: Int
        public init(offset: Int, outDim: Int, inDim: Int) {
            self.offset = offset; self.outDim = outDim; self.inDim = inDim
        }
    }

    public let kernel: BF16Kernel
    public let entries: [Entry]
    private let base: UnsafePointer<Float>
    /// Address of a weight's first float → its entry.
    private let index: [Int: Int]
    private var forwardPacks: [PackedBF16Matrix]
    private var backwardPacks: [PackedBF16Matrix]

    /// Copies of the weights `entries` of the buffer at `base` (which must outlive this value),
    /// packed now. Throws when a shape does not pack (see `PackedBF16Matrix`).
    public init(kernel: BF16Kernel, base: UnsafePointer<Float>, entries: [Entry]) throws(BF16Error) {
        self.kernel = kernel; self.base = base; self.entries = entries
        var index: [Int: Int] = [:]
        for (i, e) in entries.enumerated() { index[Int(bitPattern: base + e.offset)] = i }
        self.index = index
        var f: [PackedBF16Matrix] = [], b: [PackedBF16Matrix] = []
        for e in entries {
            f.append(try PackedBF16Matrix(base + e.offset, ldb: e.inDim, transposed: true, k: e.inDim, n: e.outDim))
            b.append(try PackedBF16Matrix(base + e.offset, ldb: e.inDim, transposed: false, k: e.outDim, n: e.inDim))
        }
        forwardPacks = f; backwardPacks = b
    }

    /// Packs every weight again from the buffer's current values (no allocation: each copy keeps its storage).
    public func refresh() {
        for i in entries.indices { repack(i) }
    }

    /// Packs again the weights that start inside `range` of the flat buffer (the parameters that
    /// just arrived, while lanes may read the copies of other weights).
    public func refresh(_ range: Range<Int>) {
        for (i, e) in entries.enumerated() where range.contains(e.offset) { repack(i) }
    }

    private func repack(_ i: Int) {
        let e = entries[i]
        // The shapes were checked when first packed and do not change: this cannot throw.
        try! forwardPacks[i].repack(base + e.offset, ldb: e.inDim, transposed: true, k: e.inDim, n: e.outDim)
        try! backwardPacks[i].repack(base + e.offset, ldb: e.inDim, transposed: false, k: e.outDim, n: e.inDim)
    }

    /// op(B) = Wᵀ for y = x·Wᵀ, when `weight` is the first float of one of the entries.
    @inline(__always)
    public func forward(_ weight: UnsafePointer<Float>) -> PackedBF16Matrix? {
        index[Int(bitPattern: weight)].map { forwardPacks[$0] }
    }

    /// op(B) = W for dX = dY·W, when `weight` is the first float of one of the entries.
    @inline(__always)
    public func backward(_ weight: UnsafePointer<Float>) -> PackedBF16Matrix? {
        index[Int(bitPattern: weight)].map { backwardPacks[$0] }
    }

    /// Bytes the packed copies hold.
    public var bytes: Int { forwardPacks.reduce(0) { $0 + $1.bytes } + backwardPacks.reduce(0) { $0 + $1.bytes } }
}
