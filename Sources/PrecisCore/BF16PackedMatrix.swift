import CBF16Kernels

/// The right operand op(B) [k × n] of bf16 products, converted to bf16 and packed once in the
/// layout both kernels read: 16-column panels of VNNI pairs, [n/16][k/2][16][2] with n rounded up to
/// 16 and k to 32 (zeros in the padding), so a weight packed after each pull serves every product
/// of the step. Packing allocates (or reuses this value's storage, `repack`); products never do.
public struct PackedBF16Matrix: Sendable {
    /// Rows of op(B) (the product's inner dimension).
    public private(set) var k: Int
    /// Columns of op(B) (the product's output columns).
    public private(set) var n: Int
    package var storage: BF16Storage

    /// Packs op(B) = `transposed` ? bᵀ : b, where b is row-major with leading dimension `ldb`
    /// (a weight W [out × in] as `transposed: true` gives the forward product's x·Wᵀ; as
    /// `transposed: false`, dY·W).
    public init(_ b: UnsafePointer<Float>, ldb: Int, transposed: Bool, k: Int, n: Int) throws(BF16Error) {
        let count = try Self.validate(ldb: ldb, transposed: transposed, k: k, n: n)
        self.k = k; self.n = n
        storage = BF16Storage(capacity: count)
        fill(b, ldb: ldb, transposed: transposed)
    }

    /// Packs new values into this value's storage (no allocation when the shape's packed size fits
    /// in it and no copy shares it); the shape may change.
    public mutating func repack(_ b: UnsafePointer<Float>, ldb: Int, transposed: Bool, k: Int, n: Int) throws(BF16Error) {
        let count = try Self.validate(ldb: ldb, transposed: transposed, k: k, n: n)
        if !isKnownUniquelyReferenced(&storage) || storage.capacity < count { storage = BF16Storage(capacity: count) }
        self.k = k; self.n = n
        fill(b, ldb: ldb, transposed: transposed)
    }

    static func validate(ldb: Int, transposed: Bool, k: Int, n: Int) throws(BF16Error) -> Int {
        if transposed { try BF16Layout.check(rows: n, cols: k, ld: ldb, "B (transposed, n × k)") }
        else { try BF16Layout.check(rows: k, cols: n, ld: ldb, "B (k × n)") }
        return try BF16Layout.count(outer: n, inner: k, "B")
    }

    private func fill(_ b: UnsafePointer<Float>, ldb: Int, transposed: Bool) {
        let panels = (n + 15) / 16, dst = storage.pointer, (k, n) = (self.k, self.n)
        let grain = max(1, (1 << 16) / max(1, 16 * k))
        Parallel.chunks(panels, grain: grain) { _, r in
            precis_bf16_pack_b(b, ldb, transposed ? 1 : 0, k, n, dst, r.lowerBound, r.upperBound)
        }
    }

    /// op(B)[row][col] as packed (the bf16-rounded value).
    public func element(row: Int, col: Int) -> Float {
        precondition(row >= 0 && row < k && col >= 0 && col < n, "element (\(row), \(col)) outside \(k) × \(n)")
        return BF16.value(precis_bf16_packed_b_at(storage.pointer, k, row, col))
    }

    /// Bytes of packed storage in use.
    public var bytes: Int { (n + 15) / 16 * 16 * ((k + 31) / 32 * 32) * 2 }
}
