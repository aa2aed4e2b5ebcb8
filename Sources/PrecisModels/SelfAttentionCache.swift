import PrecisCore

/// An incremental decoder's self-attention keys and values: per layer, one [rows, maxLength, width]
/// buffer of each, and a spare pair that beam reordering copies rows into before swapping it in.
struct SelfAttentionCache {
    let rows: Int, maxLength: Int, width: Int
    /// Per layer: row r's key (value) of position t at `keys[l] + r * rowStride + t * width`.
    private(set) var keys: [Ptr] = [], values: [Ptr] = []
    private var spareKeys: [Ptr] = [], spareValues: [Ptr] = []

    /// Floats from one row's first position to the next row's.
    var rowStride: Int { maxLength * width }

    init(_ a: Arena, layers: Int, rows: Int, maxLength: Int, width: Int) {
        self.rows = rows; self.maxLength = maxLength; self.width = width
        for _ in 0..<layers {
            keys.append(a.floats(rows * maxLength * width)); values.append(a.floats(rows * maxLength * width))
            spareKeys.append(a.floats(rows * maxLength * width)); spareValues.append(a.floats(rows * maxLength * width))
        }
    }

    /// Stores every row's key and value of position `t` ([rows, width] each) in layer `l`.
    func store(layer l: Int, position t: Int, keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>) {
        for r in 0..<rows {
            Vec.copy(keys[l] + r * rowStride + t * width, k + r * width, width)
            Vec.copy(values[l] + r * rowStride + t * width, v + r * width, width)
        }
    }

    /// Row i continues from old row `from[i]`: the first `length` positions of every layer copied.
    mutating func reorder(_ from: [Int], length: Int) {
        let n = length * width
        for l in 0..<keys.count {
            for (i, j) in from.enumerated() {
                Vec.copy(spareKeys[l] + i * rowStride, keys[l] + j * rowStride, n)
                Vec.copy(spareValues[l] + i * rowStride, values[l] + j * rowStride, n)
            }
            swap(&keys[l], &spareKeys[l]); swap(&values[l], &spareValues[l])
        }
    }
}
