import PrecisCore
import PrecisModels
import PrecisWire

/// `precis bench codec`: what each wire codec costs per partition on real data — a model's
/// gradients after one backward pass and its parameters — on one thread, like a worker pushing or a
/// server replying: each buffer encoded and decoded in the cluster's 4 MB partitions (CRC-32C
/// included), every decoded value checked against what was sent.
public struct CodecBenchmark {
    /// One codec on one buffer: medians over the passes.
    public struct Row: Sendable {
        /// "gradients" or "parameters".
        public var data: String
        public var codec: Codec
        /// fp32 bytes over bytes on the wire (payloads and headers).
        public var ratio: Double
        /// MB of fp32 input per second.
        public var encodeMBps: Double, decodeMBps: Double
        /// Per pass over the whole buffer.
        public var encodeMs: Double, decodeMs: Double
        /// The largest |decoded − input| over every pass, relative to the largest |input|: 0 for
        /// the lossless codecs; bf16's rounding, with the error fed back from earlier passes.
        public var maxError: Double
        /// Decoded values compared with what was sent (bit for bit): every value of every pass.
        public var checkedValues: Int
    }

    /// CRC-32C alone over the gradient buffer, MB/s: the one in use and the table-driven one.
    public struct ChecksumRates: Sendable {
        public var inUseMBps: Double
        public var tableMBps: Double
    }

    /// A decoded value that is not the one encoded.
    public struct RoundTripError: Error, CustomStringConvertible {
        public var data: String, codec: Codec, partition: Int, index: Int
        public var sent: Float, decoded: Float
        public var description: String {
            "codec \(codec.name) on \(data), partition \(partition): value \(index) was sent as \(sent), decoded as \(decoded)"
        }
    }

    public let model: any Seq2SeqModel
    /// The cluster's partitions of the flat buffer (one server).
    public let plan: PartitionPlan
    /// Floats in the flat buffer.
    public var parameters: Int { model.params.count }

    /// Initialises `model`'s weights (seed 0) and runs one forward + backward pass on `batch` with
    /// `threads` compute threads, so its gradients are real.
    public init(model: any Seq2SeqModel, batch: Seq2SeqBatch, threads: Int) throws {
        try Compute.withThreads(threads) {
            model.initializeWeights(seed: 0)
            model.zeroGradients()
            _ = try model.step(batch, options: StepOptions(training: true, seed: 1), logitsOut: nil)
        }
        self.model = model
        plan = PartitionPlan(total: model.params.count, servers: 1)
    }

    /// Each codec (none, fp32, bf16) on the gradients, then on the parameters: `repeats` passes
    /// each (bf16 carries one error-feedback buffer through all of them). `onRow` gets each row as
    /// soon as it is measured.
    public func run(repeats: Int, onRow: (Row) -> Void = { _ in }) throws -> [Row] {
        let n = parameters
        let codec = ShardCodec()
        let errorFeedback = FloatBuffer(count: n)
        // What bf16 sends in a pass (the input plus the error fed back, rounded), to check against.
        let sent = FloatBuffer(count: n)
        let out = FloatBuffer(count: plan.range(0).count + 1)
        let buffers = (0..<plan.count).map { _ in WireBuffer(capacity: 1 << 16) }
        var rows: [Row] = []
        for (label, data) in [("gradients", model.grads.pointer), ("parameters", model.params.pointer)] {
            let largest = (0..<n).reduce(Float(0)) { max($0, abs(data[$1])) }
            for kind in [Codec.none, .fp32, .bf16] {
                var enc: [Double] = [], dec: [Double] = []
                var wire = 0, maxError: Float = 0, checked = 0
                for _ in 0..<repeats {
                    let expected = kind == .bf16 ? UnsafePointer(sent.pointer) : UnsafePointer(data)
                    if kind == .bf16 {
                        for i in 0..<n { sent[i] = ShardCodec.fromBF16(ShardCodec.toBF16(data[i] + errorFeedback[i])) }
                    }
                    var headers: [WireHeader] = []
                    let t0 = Timing.now()
                    for p in 0..<plan.count {
                        let r = plan.range(p)
                        headers.append(try codec.encode(UnsafeBufferPointer(start: data + r.lowerBound, count: r.count), codec: kind,
                                                        into: buffers[p], type: .pushGradient, epoch: 0, step: 0, partition: UInt32(p),
                                                        errorFeedback: kind == .bf16 ? errorFeedback.pointer + r.lowerBound : nil,
                                                        figures: ContributionFigures(lossSum: 0, tokens: 0, examples: 0)))
                    }
                    let t1 = Timing.now()
                    wire = buffers.reduce(0) { $0 + $1.count + WireHeader.size }
                    // Decoding starts from the received frames: header parsed, checksum verified, payload decoded.
                    var decode = 0.0
                    for p in 0..<plan.count {
                        let frames = [headers[p].bytes(), Array(buffers[p].bytes)]
                        let t = Timing.now()
                        let m = try DataMessage(frames: frames)   // verifies length and CRC-32C
                        try m.decode(into: out.pointer, capacity: plan.range(p).count, using: codec)
                        decode += Timing.now() - t
                        let r = plan.range(p)
                        for j in 0..<r.count {
                            let i = r.lowerBound + j
                            guard out[j].bitPattern == expected[i].bitPattern else {
                                throw RoundTripError(data: label, codec: kind, partition: p, index: i, sent: expected[i], decoded: out[j])
                            }
                            maxError = max(maxError, abs(out[j] - data[i]))
                        }
                        checked += r.count
                    }
                    enc.append(t1 - t0)
                    dec.append(decode)
                }
                let e = Timing.median(enc), d = Timing.median(dec)
                let mb = Double(n * 4) / 1e6
                let row = Row(data: label, codec: kind, ratio: Double(n * 4) / Double(wire), encodeMBps: mb / e, decodeMBps: mb / d,
                              encodeMs: e * 1000, decodeMs: d * 1000,
                              maxError: largest > 0 ? Double(maxError / largest) : Double(maxError), checkedValues: checked)
                rows.append(row)
                onRow(row)
            }
        }
        return rows
    }

    /// CRC-32C over the whole gradient buffer, `repeats` times each way (medians).
    public func checksumRates(repeats: Int) -> ChecksumRates {
        let n = parameters, bytes = UnsafeRawBufferPointer(start: model.grads.pointer, count: n * 4)
        var crc: [Double] = []
        for _ in 0..<repeats {
            let t = Timing.now()
            _ = CRC32C.checksum(bytes)
            crc.append(Timing.now() - t)
        }
        var soft: [Double] = []
        for _ in 0..<repeats {
            let t = Timing.now()
            _ = CRC32C.software(bytes)
            soft.append(Timing.now() - t)
        }
        let mb = Double(n * 4) / 1e6
        return ChecksumRates(inUseMBps: mb / Timing.median(crc), tableMBps: mb / Timing.median(soft))
    }
}
