import Foundation
import PrecisCore

/// `precis inspect loss-grad`: loss, logits and the gradient of every parameter for one batch, in
/// the form transformers reports them, so any model folder can be checked against PyTorch.
public enum LossGradInspector {
    /// Reads `input_ids`, `attention_mask` (optional: all ones) and `labels` from a safetensors file.
    public static func readBatch(_ path: String) throws -> Seq2SeqBatch {
        let f = try SafeTensorsFile(path: path)
        let ids = try f.tensor("input_ids"), labels = try f.tensor("labels")
        guard ids.shape.count == 2 else {
            throw ModelError.badBatch(field: "input_ids", reason: "\(path): shape \(ids.shape), expected [batch, length]")
        }
        guard labels.shape.count == 2, labels.shape[0] == ids.shape[0] else {
            throw ModelError.badBatch(field: "labels", reason: "\(path): shape \(labels.shape), expected [\(ids.shape[0]), length]")
        }
        let mask: [Int64]
        if f.tensors["attention_mask"] != nil {
            let m = try f.tensor("attention_mask")
            guard m.shape == ids.shape else {
                throw ModelError.badBatch(field: "attention_mask", reason: "\(path): shape \(m.shape), expected \(ids.shape)")
            }
            mask = try f.int64s("attention_mask")
        } else {
            mask = Array(repeating: 1, count: ids.count)
        }
        func narrow(_ v: [Int64], _ field: String) throws -> [Int32] {
            if let bad = v.first(where: { $0 < Int64(Int32.min) || $0 > Int64(Int32.max) }) {
                throw ModelError.badBatch(field: field, reason: "\(path): value \(bad) does not fit a token id")
            }
            return v.map { Int32($0) }
        }
        return try Seq2SeqBatch(batchSize: ids.shape[0], sourceLength: ids.shape[1], targetLength: labels.shape[1],
                                inputIds: try narrow(try f.int64s("input_ids"), "input_ids"),
                                attentionMask: try narrow(mask, "attention_mask"),
                                labels: try narrow(try f.int64s("labels"), "labels"))
    }

    /// Runs the model in training mode with dropout off (as transformers does with dropout 0, or in
    /// `model.eval()` with gradients on) and writes `loss`, `logits` and `grad.<name>`. With
    /// `separatePasses`, forward and backward run as two calls (as for a caller that looks at the
    /// loss before the gradients) instead of one `step`; the results are the same bits.
    public static func run(model: any Seq2SeqModel, batchFile: String, out: String, training: Bool = false,
                           seed: UInt64 = 0, separatePasses: Bool = false) throws -> Double {
        let batch = try readBatch(batchFile)
        let v = model.vocabSize
        var logits = [Float](repeating: 0, count: batch.batchSize * batch.targetLength * v)
        model.zeroGradients()
        let options = StepOptions(training: training, seed: seed)
        let r = try logits.withUnsafeMutableBufferPointer {
            if separatePasses {
                let r = try model.forward(batch, options: options, logitsOut: $0.baseAddress)
                model.backward()
                return r
            }
            return try model.step(batch, options: options, logitsOut: $0.baseAddress)
        }
        var w = SafeTensorsWriter()
        w.metadata = ["format": "pt", "producer": "precis inspect loss-grad", "tokens": String(r.count)]
        w.add("loss", floats: [Float(r.mean)], shape: [])
        w.add("logits", floats: logits, shape: [batch.batchSize, batch.targetLength, v])
        for e in model.table.entries {
            w.add("grad." + e.name, floats: UnsafeBufferPointer(start: model.grads.pointer + e.offset, count: e.count), shape: e.shape)
        }
        try w.write(to: out)
        return r.mean
    }
}
