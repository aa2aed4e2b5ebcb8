/// Why a bf16 packing or product was refused.
public enum BF16Error: Error, Equatable, CustomStringConvertible {
    /// No bf16 kernel runs on this CPU (`BF16Support.unavailableReason` says which flags are missing).
    case unavailable(String)
    /// The kernel asked for does not run here.
    case kernelUnsupported(BF16Kernel, String)
    /// A dimension is negative, or a leading dimension is smaller than the row it strides over.
    case badShape(String)
    /// The packed operands do not fit together (their inner dimensions differ) or the output.
    case mismatch(String)
    /// The packed size does not fit in memory arithmetic.
    case tooLarge(String)

    public var description: String {
        switch self {
        case .unavailable(let why): return why
        case .kernelUnsupported(let k, let why): return "the \(k.rawValue) bf16 kernel does not run here: \(why)"
        case .badShape(let s): return "bad bf16 operand shape: \(s)"
        case .mismatch(let s): return "bf16 product operands do not fit: \(s)"
        case .tooLarge(let s): return "bf16 operand too large: \(s)"
        }
    }
}

/// Checked sizes of the packed layouts (dimensions rounded up to 16 and 32, then multiplied).
enum BF16Layout {
    static func padded(_ x: Int, to unit: Int, _ what: String) throws(BF16Error) -> Int {
        let (s, o) = x.addingReportingOverflow(unit - 1)
        if o { throw .tooLarge("\(what) = \(x)") }
        return s / unit * unit
    }

    /// Elements of a packed operand whose rows (or columns) pad to 16 and whose inner dimension pads to 32.
    static func count(outer: Int, inner: Int, _ what: String) throws(BF16Error) -> Int {
        let (c, o) = try padded(outer, to: 16, what).multipliedReportingOverflow(by: try padded(inner, to: 32, what))
        if o || c > Int.max / 4 { throw .tooLarge("\(what): \(outer) × \(inner)") }
        return c
    }

    /// Checks the dimensions and leading dimension of an fp32 operand stored `rows` × `cols` (as stored).
    static func check(rows: Int, cols: Int, ld: Int, _ what: String) throws(BF16Error) {
        if rows < 0 || cols < 0 { throw .badShape("\(what) is \(rows) × \(cols)") }
        if ld < max(1, cols) { throw .badShape("\(what): leading dimension \(ld) < row length \(cols)") }
    }
}
