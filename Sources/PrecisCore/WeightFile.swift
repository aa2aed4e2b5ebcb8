/// A file of named tensors that model loading reads as fp32: a safetensors file or a PyTorch
/// checkpoint. Lower-precision and wider floats (F16, BF16, F64) are converted on read.
public protocol WeightFile: AnyObject {
    var path: String { get }
    /// Tensor names, in the file's order.
    var names: [String] { get }
    /// The shape of `name`, or nil when the file has no such tensor.
    func shape(of name: String) -> [Int]?
    /// Copies tensor `name` into `dst` as fp32, checking its shape when `expectShape` is given.
    func readFloats(_ name: String, into dst: UnsafeMutablePointer<Float>, expectShape: [Int]?) throws
}

extension WeightFile {
    public func contains(_ name: String) -> Bool { shape(of: name) != nil }
}

extension SafeTensorsFile: WeightFile {
    public func shape(of name: String) -> [Int]? { tensors[name]?.shape }
}

extension DType {
    /// Element `i` of a buffer of this dtype (little-endian) as fp32; nil for integer dtypes.
    @inline(__always)
    func float(_ raw: UnsafeRawPointer, _ i: Int) -> Float? {
        switch self {
        case .f32: return Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
        case .f16: return Float(Float16(bitPattern: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))))
        case .bf16: return Float(bitPattern: UInt32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16)
        case .f64: return Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
        default: return nil
        }
    }

    public var isFloat: Bool { self == .f32 || self == .f16 || self == .bf16 || self == .f64 }
}
