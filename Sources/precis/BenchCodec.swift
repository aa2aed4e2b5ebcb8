import ArgumentParser
import Foundation
import PrecisBench
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
            `--repeats` passes over the whole buffer, one thread.
            """)

        @OptionGroup var shape: BenchShape
        @Option(name: .customLong("target-len"), help: "Target length.")
        var targetLen = 64
        @Option(help: "Passes over the buffer per figure (median).")
        var repeats = 5

        func run() throws {
            do {
                let model = try shape.model()
                let batch = try Seq2SeqBatch.random(vocab: model.facts.vocabSize, batch: shape.batch, source: shape.sourceLen,
                                                 target: targetLen, seed: 1)
                let bench = try CodecBenchmark(model: model, batch: batch, threads: shape.threads)
                let n = bench.parameters
                print("precis bench codec: \(shape.config), \(n) parameters (\(String(format: "%.1f", Double(n * 4) / 1e6)) MB fp32) in \(bench.plan.count) partitions, one thread, CRC-32C in \(CRC32C.hardware ? "hardware" : "software"), median of \(repeats)")
                print("  data         codec   ratio   encode MB/s   decode MB/s   encode ms   decode ms   (MB/s of fp32 input)")
                _ = try bench.run(repeats: repeats) { r in
                    print("  " + r.data.padding(toLength: 12, withPad: " ", startingAt: 0) + " " + r.codec.name.padding(toLength: 6, withPad: " ", startingAt: 0)
                          + String(format: " %6.2f×   %11.0f   %11.0f   %9.1f   %9.1f", r.ratio, r.encodeMBps, r.decodeMBps, r.encodeMs, r.decodeMs))
                }
                let crc = bench.checksumRates(repeats: repeats)
                print(String(format: "  CRC-32C alone: %.0f MB/s (%@), table-driven %.0f MB/s", crc.inUseMBps,
                             CRC32C.hardware ? "hardware" : "software", crc.tableMBps))
            } catch let e as ValidationError { throw e } catch { throw fail(error) }
        }
    }
}
