/// Scratch memory for the LCS computations of one `score` call, reused across
/// every sentence pair so the dynamic-programming tables are allocated once.
struct LCSWorkspace {
    /// Full (rows+1)×(cols+1) table, row-major; needed to read back an LCS.
    private var table: [Int32] = []
    /// One row for length-only computations.
    private var row: [Int] = []

    /// Length of a longest common subsequence, in O(a·b) time and O(b) memory.
    mutating func length(_ a: [Int], _ b: [Int]) -> Int {
        if a.isEmpty || b.isEmpty { return 0 }
        let cols = b.count
        if row.count < cols + 1 { row = [Int](repeating: 0, count: cols + 1) }
        return row.withUnsafeMutableBufferPointer { r -> Int in
            for j in 0...cols { r[j] = 0 }
            for x in a {
                var diagonal = 0  // value of the previous row at column j-1
                for j in 1...cols {
                    let above = r[j]
                    if x == b[j - 1] {
                        r[j] = diagonal + 1
                    } else if r[j - 1] > above {
                        r[j] = r[j - 1]
                    }
                    diagonal = above
                }
            }
            return r[cols]
        }
    }

    /// Indices into `ref` of the LCS that rouge-score's `lcs_ind` reads back:
    /// walking from the bottom-right corner, a match moves diagonally,
    /// otherwise the walk moves left when the cell to the left is strictly
    /// greater than the cell above, and up in every other case. Returned in
    /// increasing order.
    mutating func indices(ref: [Int], can: [Int], into out: inout [Int]) {
        out.removeAll(keepingCapacity: true)
        let rows = ref.count, cols = can.count
        if rows == 0 || cols == 0 { return }
        let width = cols + 1
        let size = (rows + 1) * width
        if table.count < size { table = [Int32](repeating: 0, count: size) }
        table.withUnsafeMutableBufferPointer { t in
            for j in 0..<width { t[j] = 0 }
            for i in 1...rows {
                let base = i * width
                let previous = base - width
                t[base] = 0
                let x = ref[i - 1]
                for j in 1...cols {
                    if x == can[j - 1] {
                        t[base + j] = t[previous + j - 1] + 1
                    } else {
                        let up = t[previous + j], left = t[base + j - 1]
                        t[base + j] = up >= left ? up : left
                    }
                }
            }
            var i = rows, j = cols
            while i > 0 && j > 0 {
                if ref[i - 1] == can[j - 1] {
                    out.append(i - 1)
                    i -= 1
                    j -= 1
                } else if t[i * width + j - 1] > t[(i - 1) * width + j] {
                    j -= 1
                } else {
                    i -= 1
                }
            }
        }
        out.reverse()
    }
}
