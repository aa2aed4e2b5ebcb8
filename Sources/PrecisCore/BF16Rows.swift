import CBF16Kernels

/// The left operand op(A) [m × k] of bf16 products as bf16 rows (m rounded up to 16 and k to 32,
/// zeros in the padding): activations, converted once per product into storage kept between
/// products (`load` allocates only when the shape outgrows it).
public struct BF16Rows: Sendable {
    public private(set) var m: Int
    public private(set) var k: Int
    package var storage: BF16Storage

    /// Empty rows with room for an m × k operand (no allocation on loads up to that size).
    public init(capacityRows m: Int, k: Int) throws(BF16Error) {
        if m < 0 || k < 0 { throw .badShape("A is \(m) × \(k)") }
        storage = BF16Storage(capacity: try BF16Layout.count(outer: m, inner: k, "A"))
        self.m = 0; self.k = k
    }

    /// Converts op(A) = `transposed` ? aᵀ : a (a row-major, leading dimension `lda`).
    public init(_ a: UnsafePointer<Float>, lda: Int, transposed: Bool, m: Int, k: Int) throws(BF16Error) {
        self = try BF16Rows(capacityRows: m, k: k)
        try load(a, lda: lda, transposed: transposed, m: m, k: k)
    }

    /// Converts new values into this value's storage (allocating only if they do not fit or a copy shares it).
    public mutating func load(_ a: UnsafePointer<Float>, lda: Int, transposed: Bool, m: Int, k: Int) throws(BF16Error) {
        if transposed { try BF16Layout.check(rows: k, cols: m, ld: lda, "A (transposed, k × m)") }
        else { try BF16Layout.check(rows: m, cols: k, ld: lda, "A (m × k)") }
        let count = try BF16Layout.count(outer: m, inner: k, "A")
        if !isKnownUniquelyReferenced(&storage) || storage.capacity < count { storage = BF16Storage(capacity: count) }
        self.m = m; self.k = k
        let rows = (m + 15) / 16 * 16, dst = storage.pointer, t: Int32 = transposed ? 1 : 0
        // Transposed reads stride through a: rows in blocks of 16 keep each block's reads in a few lines.
        Parallel.chunks(rows / 16, grain: max(1, (1 << 14) / max(1, 16 * k))) { _, r in
            precis_bf16_pack_a(a, lda, t, m, k, dst, r.lowerBound * 16, r.upperBound * 16)
        }
    }

    /// op(A)[row][col] as converted.
    public func element(row: Int, col: Int) -> Float {
        precondition(row >= 0 && row < m && col >= 0 && col < k, "element (\(row), \(col)) outside \(m) × \(k)")
        return BF16.value(storage.pointer[row * ((k + 31) / 32 * 32) + col])
    }
}
