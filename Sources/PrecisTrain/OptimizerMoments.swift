import Foundation
import PrecisCore

/// A checkpoint's `optimizer.safetensors`: AdamW's first and second moments (`exp_avg.NAME`,
/// `exp_avg_sq.NAME`) in the model's flat layout, read only when every value could have been
/// written by AdamW: finite, and the second moments not below zero (its square root divides the
/// update: a negative one would make the first step's parameters NaN).
public enum OptimizerMoments {
    public static let fileName = "optimizer.safetensors"

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case nonFinite(file: String, tensor: String, index: Int, value: Float)
        case negativeSecondMoment(file: String, tensor: String, index: Int, value: Float)

        public var description: String {
            switch self {
            case let .nonFinite(file, tensor, index, value): return "\(file): tensor \(tensor) holds \(value) at index \(index), not a finite number"
            case let .negativeSecondMoment(file, tensor, index, value): return "\(file): \(tensor) holds \(value) at index \(index), below zero"
            }
        }
    }

    /// m and v of checkpoint `dir` for a model laid out by `table`.
    public static func read(checkpoint dir: String, table: ParameterTable) throws -> (m: FloatBuffer, v: FloatBuffer) {
        let path = (dir as NSString).appendingPathComponent(fileName)
        let file = try SafeTensorsFile(path: path)
        let m = FloatBuffer(count: table.count), v = FloatBuffer(count: table.count)
        for e in table.entries {
            try file.readFloats("exp_avg." + e.name, into: m.pointer + e.offset, expectShape: e.shape)
            try file.readFloats("exp_avg_sq." + e.name, into: v.pointer + e.offset, expectShape: e.shape)
        }
        try checkFinite(m.pointer, table: table, file: path, prefix: "exp_avg.")
        try checkFinite(v.pointer, table: table, file: path, prefix: "exp_avg_sq.")
        for e in table.entries {
            for i in 0..<e.count where v.pointer[e.offset + i] < 0 {
                throw Failure.negativeSecondMoment(file: path, tensor: "exp_avg_sq." + e.name, index: i, value: v.pointer[e.offset + i])
            }
        }
        return (m, v)
    }

    /// The first value of `p` (in `table`'s layout) that is not finite, as an error naming its tensor.
    public static func checkFinite(_ p: UnsafePointer<Float>, table: ParameterTable, file: String, prefix: String) throws {
        for e in table.entries {
            for i in 0..<e.count where !p[e.offset + i].isFinite {
                throw Failure.nonFinite(file: file, tensor: prefix + e.name, index: i, value: p[e.offset + i])
            }
        }
    }
}
