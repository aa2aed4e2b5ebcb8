import ArgumentParser
import Foundation
import PrecisCore
import PrecisBench

extension BenchCommand {
    /// `precis bench scaling`: the step-time model of a sync cluster over links (PrecisBench's
    /// `ScalingModel`), checked against tools/bench/scaling.sh's measured runs and used to predict
    /// fleets of 1–64 worker hosts.
    struct ScalingBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "scaling",
            abstract: "Predict a sync cluster's step over links for 1–64 worker hosts (and check the model against measured runs).",
            discussion: """
            The measurements come from `make bench-scaling` (tools/bench/scaling.sh, network namespaces with capped links). \
            With --measured FILE the model's constants are fitted to that file's runs and every run's error is printed; \
            without it the starting values in ScalingModel.swift (ScalingConstants.defaults) are used. The prediction: one worker per host, \
            server hosts of the same link, the fewest servers that keep compute ≥ --target of the step.
            """)

        @Option(help: "JSON Lines of tools/bench/scaling.sh: fit the constants to them and print the error per run.")
        var measured: String?
        @Option(name: .customLong("bench-cores"), help: "Cores of arithmetic the measured runs' hosts shared (default: each line's `cores`, the machine's CPU count; on a VM whose vCPUs share a core's arithmetic, fewer).")
        var benchCores: Int?
        @Option(name: .customLong("bandwidths"), help: "Link rates to predict, Gbit/s, comma-separated.")
        var bandwidths = "10,25"
        @Option(name: .customLong("rtt-ms"), help: "Round trip between hosts, ms.")
        var rttMs = 0.1
        @Option(name: .customLong("gradient-bytes"), help: "Gradient wire bytes per parameter (bf16 + error feedback + LZ4, measured: 1.53).")
        var gradientBytes = 1.53
        @Option(name: .customLong("pull-bytes"), help: "Parameter wire bytes per parameter (bf16-delta + LZ4 measured on loopback: 1.34; fp32 + LZ4: 3.5).")
        var pullBytes = 1.34
        @Option(name: .customLong("small-compute"), help: "bart-small's forward + backward per worker step on one thread of the measuring host (batch 8, source ≤ 256, target ≤ 64), s.")
        var smallCompute = 0.70
        @Option(name: .customLong("host-speedup"), help: "How much faster a worker host computes than that one thread (its cores × their speed).")
        var hostSpeedup = 16.0
        @Option(name: .customLong("server-speedup"), help: "How much faster a server host runs its update than the one thread each measured server had (its threads × their speed).")
        var serverSpeedup = 1.0
        @Option(name: .customLong("cpu-per-byte-ns"), help: "CPU time per byte a host moves, ns, in the predictions (the fit's figure is the bench's: kernel copies through veth and the link emulation's user-space verdicts on shared cores; 0: a host keeps up with its own link).")
        var cpuPerByteNs = 0.0
        @Option(help: "Efficiency (compute ÷ step) the server count is chosen for.")
        var target = 0.9
        @Option(name: .customLong("pull-overlap"), help: "The fraction of compute the pull and the servers' update hide behind (default: the fit's, from the --measured runs with overlap_pull, else 0; 0: workers that wait for every partition before forward, overlap_pull: false).")
        var pullOverlap: Double?
        @Option(help: "Worker host counts, comma-separated.")
        var hosts = "1,2,4,8,16,32,64"
        @Flag(help: "Print the predictions as JSON Lines too (tools/bench/scaling_plot.py draws them).")
        var json = false

        static let shapes: [(name: String, parameters: Double)] = [("bart-small", 8.15e6), ("bart-base", 139.42e6), ("bart-large", 406.29e6)]

        func validate() throws {
            guard rttMs >= 0, gradientBytes > 0, pullBytes > 0, smallCompute > 0, hostSpeedup > 0, serverSpeedup > 0, target > 0, target < 1,
                  (pullOverlap ?? 0) >= 0, (pullOverlap ?? 0) <= 1, cpuPerByteNs >= 0,
                  [rttMs, gradientBytes, pullBytes, smallCompute, hostSpeedup, serverSpeedup, cpuPerByteNs].allSatisfy(\.isFinite) else {
                throw ValidationError("--rtt-ms and --cpu-per-byte-ns must be ≥ 0; --gradient-bytes, --pull-bytes, --small-compute, --host-speedup, --server-speedup positive; all finite; --target in (0, 1); --pull-overlap in [0, 1]")
            }
            if let benchCores, benchCores < 1 || benchCores > 1_000_000 { throw ValidationError("--bench-cores must be between 1 and 1000000") }
            guard !rates.isEmpty, !hostCounts.isEmpty else { throw ValidationError("--bandwidths and --hosts need positive numbers, comma-separated") }
        }

        var rates: [Double] { bandwidths.split(separator: ",").compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }.filter { $0 > 0 && $0.isFinite } }
        var hostCounts: [Int] { hosts.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }.filter { $0 > 0 && $0 <= 100_000 } }

        func run() throws {
            var constants = ScalingConstants.defaults
            if let measured {
                let text: String
                do { text = String(decoding: try SmallFile.read(measured, limit: 64 << 20), as: UTF8.self) } catch {
                    throw fail("\(measured): \(error)")
                }
                var points: [ScalingPoint]
                do { points = try ScalingMeasurement.points(jsonLines: text) } catch { throw fail("\(measured): \(error)") }
                guard !points.isEmpty else { throw fail("\(measured): no runs") }
                if let benchCores { for i in points.indices { points[i].inputs.sharedCores = benchCores } }
                constants = ScalingModel.fit(points)
                printCheck(points, constants)
            }
            print(String(format: "constants (%@): link efficiency %.3f, push hidden %.2f of compute, update %.3g s per parameter per server, %.2f round trips, overhead %.4f s, CPU %.2f ns per byte moved, pull hidden %.2f of compute (overlap_pull)",
                         measured == nil ? "starting values, not fitted" : "fitted",
                         constants.linkEfficiency, constants.hiddenPushFraction, constants.updateSecondsPerParameter, constants.roundTrips, constants.overheadSeconds,
                         constants.cpuSecondsPerByte * 1e9, constants.hiddenPullFraction))
            let pullOverlap = self.pullOverlap ?? constants.hiddenPullFraction
            // A server host with more (or faster) threads than the measured one-thread servers updates
            // faster; the bytes' CPU cost is the predicted hosts' own, not the bench's.
            constants.updateSecondsPerParameter /= serverSpeedup
            constants.cpuSecondsPerByte = cpuPerByteNs * 1e-9
            print(String(format: "predictions: one worker per host, compute = %.2f s × parameters ÷ 8.15 M ÷ %.0f (host speed-up); gradients %.2f B/parameter, "
                         + "parameters %.2f B/parameter; round trip %.2f ms; pull hidden behind up to %.2f of compute; server update %.0f× one measured thread; "
                         + "CPU %.2f ns per byte moved; servers: the fewest keeping compute ≥ %.0f %% of the step",
                         smallCompute, hostSpeedup, gradientBytes, pullBytes, rttMs, pullOverlap, serverSpeedup, cpuPerByteNs, 100 * target))
            for shape in Self.shapes {
                let s = ScalingModel.Shape(name: shape.name, parameters: shape.parameters,
                                           computeSeconds: smallCompute * shape.parameters / 8.15e6 / hostSpeedup,
                                           firstStageShare: ScalingModel.firstStageShare(model: shape.name))
                for g in rates {
                    let bits = g * 1e9
                    let perServer = ScalingModel.workersPerServer(shape: s, bandwidthBitsPerSecond: bits, roundTripSeconds: rttMs / 1000,
                                                                  gradientBytesPerParameter: gradientBytes, pullBytesPerParameter: pullBytes,
                                                                  target: target, pullOverlap: pullOverlap, constants: constants)
                    print("")
                    print(String(format: "%@ (%.1f M parameters, compute %.3f s/step) at %g Gbit/s: %@", s.name, s.parameters / 1e6, s.computeSeconds, g,
                                 perServer == 0 ? "below \(Int(100 * target)) % even with one server per worker"
                                              : "one server keeps up with \(perServer) worker(s) at ≥ \(Int(100 * target)) %"))
                    print("  hosts  servers    s/step    wire   update  latency  efficiency")
                    for h in hostCounts {
                        let r = ScalingModel.fleetRow(workers: h, shape: s, bandwidthBitsPerSecond: bits, roundTripSeconds: rttMs / 1000,
                                                      gradientBytesPerParameter: gradientBytes, pullBytesPerParameter: pullBytes,
                                                      target: target, pullOverlap: pullOverlap, constants: constants)
                        print(String(format: "  %5d  %7d  %8.3f  %6.3f  %7.3f  %7.4f  %9.1f %%%@", h, r.servers, r.step.total, r.step.wire, r.step.update,
                                     r.step.latency, 100 * r.step.efficiency, r.meetsTarget ? "" : " (below target)"))
                        if json {
                            let obj: [String: Any] = ["model": s.name, "parameters": s.parameters, "gbit": g, "hosts": h, "servers": r.servers,
                                                      "s_per_step": r.step.total, "compute": r.step.compute, "wire": r.step.wire,
                                                      "waiting": r.step.waiting, "efficiency": r.step.efficiency, "meets_target": r.meetsTarget]
                            print("@prediction " + String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self))
                        }
                    }
                }
            }
        }

        func printCheck(_ points: [ScalingPoint], _ c: ScalingConstants) {
            print("measured runs against the model (fitted to them):")
            print("  run                                  measured   predicted   error   compute    wire   update  latency")
            var worst = 0.0
            for p in points {
                let pr = ScalingModel.predict(ScalingModel.withPullOverlap(p, c), c)
                let e = (pr.total - p.measuredStepSeconds) / p.measuredStepSeconds
                worst = max(worst, abs(e))
                print(String(format: "  %@  %8.3f  %10.3f  %+6.1f %%  %7.3f  %6.3f  %7.3f  %7.4f", p.label.padding(toLength: 35, withPad: " ", startingAt: 0),
                             p.measuredStepSeconds, pr.total, 100 * e, pr.compute, pr.wire, pr.update, pr.latency))
            }
            print(String(format: "  largest error %.1f %% over %d run(s)", 100 * worst, points.count))
        }

        func fail(_ message: String) -> ExitCode {
            Stdio.writeStderr("error: \(message)\n")
            return ExitCode(1)
        }
    }
}
