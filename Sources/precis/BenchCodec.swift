import ArgumentParser
import Foundation
import PrecisCore
import PrecisModels
import PrecisWire

extension BenchCommand {
    /// `precis bench codec`: what each wire codec costs per partition on real data — a model's
    /// gradients after one backward pass and its parameters — one thread, like a worker or a server.
    struct CodecBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "codec",
            abstract: "Encode / decode speed and compression of each wire codec on a model's real gradients and parameters.",
            discussion: """
            Initialises the model (transformers' scheme), runs one forward + backward pass on a random batch, \
            then encodes and decodes the flat gradient and parameter buffers in the cluster's 4 MB partitions \
            with each codec, as a worker pushing and a server replying do (CRC-32C included). Medians of \
            `--repeat` passes over the whole buffer, one thread.
            """)

        @OptionGroup var shape: BenchShape
        @Option(name: .customLong("target-len"), help: "Target length.")
        var targetLen = 64
        @Option(help: "Passes over the buffer per figure (median).")
        var repeats = 5

        func run() throws {
            do {
                let bart = try shape.bart()
                Compute.setThreads(shape.threads)
                bart.initializeWeights(seed: 0)
                let batch = try StepBenchmark.randomBatch(vocab: bart.config.vocabSize, batch: shape.batch, source: shape.sourceLen,
                                                          target: targetLen, seed: 1)
                bart.zeroGradients()
                _ = try bart.step(batch, options: StepOptions(training: true, seed: 1), logitsOut: nil)
                Compute.setThreads(1)
                let n = bart.params.count
                let plan = PartitionPlan(total: n, servers: 1)
                print("precis bench codec: \(shape.config), \(n) parameters (\(String(format: "%.1f", Double(n * 4) / 1e6)) MB fp32) in \(plan.count) partitions, one thread, CRC-32C in \(CRC32C.hardware ? "hardware" : "software"), median of \(repeats)")
                print("  data         codec   ratio   encode MB/s   decode MB/s   encode ms   decode ms   (MB/s of fp32 input)")
                let codec = ShardCodec()
                let errorFeedback = FloatBuffer(count: n)
                let out = FloatBuffer(count: plan.range(0).count + 1)
                let buffers = (0..<plan.count).map { _ in WireBuffer(capacity: 1 << 16) }
                for (label, data) in [("gradients", bart.grads.pointer), ("parameters", bart.params.pointer)] {
                    for kind in [Codec.none, .fp32, .bf16] {
                        var enc: [Double] = [], dec: [Double] = []
                        var wire = 0
                        for _ in 0..<repeats {
                            var headers: [WireHeader] = []
                            let t0 = StepBenchmark.now()
                            for p in 0..<plan.count {
                                let r = plan.range(p)
                                headers.append(try codec.encode(UnsafeBufferPointer(start: data + r.lowerBound, count: r.count), codec: kind,
                                                                into: buffers[p], type: .pushGradient, epoch: 0, step: 0, partition: UInt32(p),
                                                                errorFeedback: kind == .bf16 ? errorFeedback.pointer + r.lowerBound : nil))
                            }
                            let t1 = StepBenchmark.now()
                            wire = buffers.reduce(0) { $0 + $1.count + WireHeader.size }
                            // Decoding starts from the received frames: header parsed, checksum verified, payload decoded.
                            var decode = 0.0
                            for p in 0..<plan.count {
                                let frames = [headers[p].bytes(), Array(buffers[p].bytes)]
                                let t = StepBenchmark.now()
                                let m = try DataMessage(frames: frames)   // verifies length and CRC-32C
                                try m.decode(into: out.pointer, capacity: plan.range(p).count, using: codec)
                                decode += StepBenchmark.now() - t
                            }
                            enc.append(t1 - t0)
                            dec.append(decode)
                        }
                        let e = StepBenchmark.median(enc), d = StepBenchmark.median(dec)
                        let mb = Double(n * 4) / 1e6
                        print("  " + label.padding(toLength: 12, withPad: " ", startingAt: 0) + " " + kind.name.padding(toLength: 6, withPad: " ", startingAt: 0)
                              + String(format: " %6.2f×   %11.0f   %11.0f   %9.1f   %9.1f", Double(n * 4) / Double(wire), mb / e, mb / d, e * 1000, d * 1000))
                    }
                }
                var crc: [Double] = []
                for _ in 0..<repeats {
                    let t = StepBenchmark.now()
                    _ = CRC32C.checksum(UnsafeRawBufferPointer(start: bart.grads.pointer, count: n * 4))
                    crc.append(StepBenchmark.now() - t)
                }
                var soft: [Double] = []
                for _ in 0..<repeats {
                    let t = StepBenchmark.now()
                    _ = CRC32C.software(UnsafeRawBufferPointer(start: bart.grads.pointer, count: n * 4))
                    soft.append(StepBenchmark.now() - t)
                }
                let mb = Double(n * 4) / 1e6
                print(String(format: "  CRC-32C alone: %.0f MB/s (%@), table-driven %.0f MB/s", mb / StepBenchmark.median(crc),
                             CRC32C.hardware ? "hardware" : "software", mb / StepBenchmark.median(soft)))
            } catch let e as ValidationError { throw e } catch { throw fail(error) }
        }
    }
}
