import Foundation
import Testing
import PrecisBench
import PrecisModels

/// The step-time model behind `precis bench scaling`: the split of a predicted step, how the busiest
/// link's bytes grow with workers per server, the fit recovering known constants, the fleet table,
/// and reading tools/bench/scaling.sh's JSON lines.
@Suite struct ScalingModelTests {
    static let constants = ScalingConstants(linkEfficiency: 0.8, hiddenPushFraction: 0.25, updateSecondsPerParameter: 4e-9,
                                            roundTrips: 2, overheadSeconds: 0.01)

    static func inputs(workers: Int = 2, servers: Int = 1, parameters: Double = 10e6, gbit: Double = 1, rtt: Double = 0.001,
                       compute: Double = 1, encode: Double = 0.05) -> ScalingInputs {
        ScalingInputs(workers: workers, servers: servers, parameters: parameters, gradientBytesPerParameter: 1.5,
                      pullBytesPerParameter: 2, bandwidthBitsPerSecond: gbit * 1e9, roundTripSeconds: rtt,
                      computeSeconds: compute, encodeSeconds: encode)
    }

    @Test func stepIsTheSumOfItsTermsComputedByHand() {
        // 2 workers on 1 server: the server's link carries twice a worker's bytes.
        let p = ScalingModel.predict(Self.inputs(), Self.constants)
        let bytesPerSecond = 1e9 / 8 * 0.8
        let push = 10e6 * 1.5 * 2 / bytesPerSecond          // 0.3 s
        let pull = 10e6 * 2 * 2 / bytesPerSecond            // 0.4 s
        #expect(abs(p.pushExposed - (push - 0.25)) < 1e-12)
        #expect(abs(p.pull - pull) < 1e-12)
        #expect(abs(p.update - 0.04) < 1e-12)
        #expect(abs(p.latency - 0.002) < 1e-12)
        #expect(abs(p.total - (1 + 0.05 + (push - 0.25) + 0.04 + pull + 0.002 + 0.01)) < 1e-12)
        #expect(abs(p.efficiency - 1 / p.total) < 1e-12)
        #expect(abs(p.waiting - (p.total - 1 - 0.05)) < 1e-12)
    }

    @Test func aPushShorterThanTheHiddenPartCostsNothing() {
        let p = ScalingModel.predict(Self.inputs(gbit: 100, compute: 2), Self.constants)
        #expect(p.pushExposed == 0)
        #expect(p.pull > 0)
    }

    @Test func aPullHiddenBehindForwardLeavesOnlyItsRest() {
        var i = Self.inputs()
        let full = ScalingModel.predict(i, Self.constants).pull     // 0.4 s
        i.pullOverlap = 0.3                                          // hides 0.3 s of a 1 s compute
        #expect(abs(ScalingModel.predict(i, Self.constants).pull - (full - 0.3)) < 1e-12)
        i.pullOverlap = 1
        #expect(ScalingModel.predict(i, Self.constants).pull == 0)
    }

    /// With `overlap_pull` the hidden compute covers the pull, then the servers' update; the first
    /// stage's share of both is never covered.
    @Test func anOverlappedPullHidesTheUpdateTooButNotTheFirstStage() {
        var i = Self.inputs()
        let serial = ScalingModel.predict(i, Self.constants)          // pull 0.4 s, update 0.04 s
        i.pullOverlap = 0.42                                          // 0.42 s: all the pull and 0.02 s of the update
        let some = ScalingModel.predict(i, Self.constants)
        #expect(some.pull == 0 && abs(some.update - 0.02) < 1e-12)
        #expect(abs(some.total - (serial.total - 0.42)) < 1e-12)
        i.firstStageShare = 0.25                                      // a quarter of pull + update stays
        let floored = ScalingModel.predict(i, Self.constants)
        #expect(abs(floored.pull + floored.update - 0.25 * (serial.pull + serial.update)) < 1e-12)
        #expect(abs(floored.pushExposed - serial.pushExposed) < 1e-12)
    }

    /// Runs with and without `overlap_pull`: the serial runs fit the link, push, update and
    /// overhead terms, the overlapped ones the pull's hidden fraction.
    @Test func fitRecoversTheHiddenPullFraction() {
        var c = Self.constants
        c.hiddenPullFraction = 0.3
        var points: [ScalingPoint] = []
        for (w, s) in [(2, 1), (4, 2), (4, 1), (3, 3)] {
            for gbit in [1.0, 10] {
                for overlapped in [false, true] {
                    var i = Self.inputs(workers: w, servers: s, gbit: gbit, compute: 0.5 + 0.1 * Double(w))
                    if overlapped { i.pullOverlap = 0.3; i.firstStageShare = 0.2 }
                    let measured = ScalingModel.predict(i, c).total
                    if overlapped { i.pullOverlap = 1 }                   // the flag a measured line carries
                    points.append(ScalingPoint(label: "\(s)x\(w)", inputs: i, measuredStepSeconds: measured))
                }
            }
        }
        let fitted = ScalingModel.fit(points)
        #expect(abs(fitted.hiddenPullFraction - 0.3) < 1e-9)
        #expect(abs(fitted.hiddenPushFraction - 0.25) < 1e-9)
        for p in points { #expect(ScalingModel.relativeError(p, fitted) < 1e-6, "\(p.label)") }
    }

    /// The first stage of `ScalingModel.firstStageShare` is what bart-small's forward really asks
    /// for before its first encoder layer (`Seq2SeqModel.onParametersNeeded`).
    @Test func bartSmallsFirstStageShareIsWhatForwardAsksForFirst() throws {
        let model = try ModelPresets.model("bart-small")
        model.initializeWeights(seed: 1)
        let layer0 = try #require(model.table.entries.first { $0.name.hasPrefix("model.encoder.layers.0.") })
        final class Asked: @unchecked Sendable { var ranges: [Range<Int>] = [] }   // the hook's calls never overlap
        let asked = Asked()
        model.onParametersNeeded = { asked.ranges.append($0) }
        let batch = try Seq2SeqBatch(batchSize: 1, sourceLength: 4, targetLength: 2, inputIds: [5, 6, 7, 2],
                                     attentionMask: [1, 1, 1, 1], labels: [5, 2])
        _ = try model.forward(batch, options: StepOptions(), logitsOut: nil)
        let firstLayer = try #require(asked.ranges.firstIndex { $0.contains(layer0.offset) })
        let share = Double(asked.ranges[..<firstLayer].reduce(0) { $0 + $1.count }) / Double(model.params.count)
        #expect(abs(share - ScalingModel.firstStageShare(model: "bart-small")) < 0.0005, "\(share)")
    }

    @Test func busiestLinkFollowsWorkersPerServer() {
        #expect(Self.inputs(workers: 1, servers: 4).fanIn == 1)
        #expect(Self.inputs(workers: 4, servers: 4).fanIn == 1)
        #expect(Self.inputs(workers: 8, servers: 2).fanIn == 4)
        // Doubling both workers and servers leaves the wire time alone; doubling workers alone doubles the pull.
        let base = ScalingModel.predict(Self.inputs(workers: 4, servers: 2), Self.constants)
        let both = ScalingModel.predict(Self.inputs(workers: 8, servers: 4), Self.constants)
        let more = ScalingModel.predict(Self.inputs(workers: 8, servers: 2), Self.constants)
        #expect(abs(both.pull - base.pull) < 1e-12)
        #expect(abs(more.pull - 2 * base.pull) < 1e-12)
        #expect(both.update < base.update)
    }

    /// Servers on hosts of their own split the update S ways; the bench's servers share the VM's
    /// cores, so theirs is split at most `sharedCores` ways.
    @Test func sharedCoresCapHowFarTheUpdateSplits() {
        var i = Self.inputs(workers: 4, servers: 4)
        #expect(abs(ScalingModel.predict(i, Self.constants).update - 0.01) < 1e-12)   // 4e-9 × 10e6 / 4
        i.sharedCores = 2
        #expect(i.updateWidth == 2)
        #expect(abs(ScalingModel.predict(i, Self.constants).update - 0.02) < 1e-12)
        i.servers = 1
        #expect(i.updateWidth == 1)
        #expect(abs(ScalingModel.predict(i, Self.constants).update - 0.04) < 1e-12)
    }

    /// A transfer takes the longer of its time on the link and its time on the CPU: on hosts of their
    /// own the busiest host moves fan-in × a worker's bytes; on shared cores, every worker's bytes
    /// pass through the same cores.
    @Test func transfersTakeTheLongerOfLinkAndCPU() {
        var c = Self.constants
        let i = Self.inputs(gbit: 10)                                     // 2 workers, 1 server
        let wire = ScalingModel.predict(i, c).pull                        // 10e6 · 2 B · 2 / 1 GB/s = 0.04 s
        #expect(abs(wire - 0.04) < 1e-12)
        c.cpuSecondsPerByte = 1e-9
        #expect(abs(ScalingModel.predict(i, c).pull - 0.04) < 1e-12)     // 10e6 · 2 · 2 · 1 ns = 0.04 s: a tie
        c.cpuSecondsPerByte = 4e-9
        #expect(abs(ScalingModel.predict(i, c).pull - 0.16) < 1e-12)     // the CPU's 0.16 s
        var shared = Self.inputs(workers: 4, servers: 4, gbit: 10)
        #expect(abs(ScalingModel.predict(shared, c).pull - 0.08) < 1e-12) // own hosts: fan-in 1 → 10e6 · 2 · 4 ns
        shared.sharedCores = 2
        #expect(abs(ScalingModel.predict(shared, c).pull - 0.16) < 1e-12) // 4 workers' bytes over 2 cores
    }

    @Test func fitRecoversTheConstantsOfSyntheticRuns() {
        var points: [ScalingPoint] = []
        for (w, s) in [(2, 1), (4, 2), (4, 1), (3, 3)] {
            for gbit in [1.0, 10] {
                for rtt in [0.0002, 0.004] {
                    let i = Self.inputs(workers: w, servers: s, gbit: gbit, rtt: rtt, compute: 0.5 + 0.1 * Double(w))
                    points.append(ScalingPoint(label: "\(s)x\(w)", inputs: i, measuredStepSeconds: ScalingModel.predict(i, Self.constants).total))
                }
            }
        }
        let c = ScalingModel.fit(points)
        // The grid holds the true efficiency and hidden fraction, so the fit is exact.
        #expect(abs(c.linkEfficiency - 0.8) < 1e-9)
        #expect(abs(c.hiddenPushFraction - 0.25) < 1e-9)
        #expect(abs(c.updateSecondsPerParameter - 4e-9) < 1e-12)
        #expect(abs(c.roundTrips - 2) < 1e-4)
        #expect(abs(c.overheadSeconds - 0.01) < 1e-5)
        for p in points { #expect(ScalingModel.relativeError(p, c) < 1e-6, "\(p.label)") }
    }

    @Test func fleetPicksTheFewestServersThatMeetTheTarget() {
        let shape = ScalingModel.Shape(name: "m", parameters: 10e6, computeSeconds: 1)
        let row = ScalingModel.fleetRow(workers: 16, shape: shape, bandwidthBitsPerSecond: 10e9, roundTripSeconds: 1e-4,
                                        gradientBytesPerParameter: 1.5, pullBytesPerParameter: 2, target: 0.9, constants: Self.constants)
        #expect(row.meetsTarget && row.step.efficiency >= 0.9)
        if row.servers > 1 {
            let fewer = ScalingModel.fleetRow(workers: 16, shape: shape, bandwidthBitsPerSecond: 10e9, roundTripSeconds: 1e-4,
                                              gradientBytesPerParameter: 1.5, pullBytesPerParameter: 2, target: 0.999, constants: Self.constants)
            #expect(fewer.servers >= row.servers)
        }
        let perServer = ScalingModel.workersPerServer(shape: shape, bandwidthBitsPerSecond: 10e9, roundTripSeconds: 1e-4,
                                                      gradientBytesPerParameter: 1.5, pullBytesPerParameter: 2, target: 0.9, constants: Self.constants)
        #expect(perServer >= 1)
        let at = { (w: Int) in ScalingModel.predict(ScalingInputs(workers: w, servers: 1, parameters: 10e6, gradientBytesPerParameter: 1.5,
                                                                  pullBytesPerParameter: 2, bandwidthBitsPerSecond: 10e9, roundTripSeconds: 1e-4,
                                                                  computeSeconds: 1), Self.constants).efficiency }
        #expect(at(perServer) >= 0.9 && at(perServer + 1) < 0.9)
        // A link too slow for even one worker per server: no server count meets the target.
        let slow = ScalingModel.fleetRow(workers: 4, shape: shape, bandwidthBitsPerSecond: 1e8, roundTripSeconds: 1e-4,
                                         gradientBytesPerParameter: 1.5, pullBytesPerParameter: 2, target: 0.9, constants: Self.constants)
        #expect(!slow.meetsTarget && slow.servers == 4)
    }

    @Test func readsAScalingLine() throws {
        let line = #"{"model": "bart-small", "servers": 2, "workers": 4, "rate": "10gbit", "delay_ms": 2.0, "rtt_ms": 4.2, "#
            + #""summary": {"s_per_step": 1.5, "compute_s_per_step": 1.2, "encode_s_per_step": 0.03, "waiting_s_per_step": 0.2, "#
            + #""gradient_wire_mb_per_step": 50, "gradient_raw_mb_per_step": 130.4, "parameter_wire_mb_per_step": 60, "parameter_raw_mb_per_step": 130.4}}"#
        let p = try ScalingMeasurement.point(jsonLine: line)
        #expect(p.inputs.workers == 4 && p.inputs.servers == 2)
        #expect(abs(p.inputs.parameters - 8.15e6) < 1)
        #expect(abs(p.inputs.gradientBytesPerParameter - 50e6 / 4 / 8.15e6) < 1e-9)
        #expect(abs(p.inputs.pullBytesPerParameter - 60e6 / 4 / 8.15e6) < 1e-9)
        #expect(p.inputs.bandwidthBitsPerSecond == 10e9)
        #expect(abs(p.inputs.roundTripSeconds - 0.004) < 1e-12)   // the links' 2 ms each way, not ping's 4.2
        #expect(p.measuredStepSeconds == 1.5 && p.inputs.computeSeconds == 1.2 && p.inputs.encodeSeconds == 0.03)
        #expect(p.label == "bart-small 2x4 10gbit 2 ms")
        // Without an emulated delay, ping's figure; without either, none.
        let noDelay = try ScalingMeasurement.point(jsonLine: line.replacingOccurrences(of: #""delay_ms": 2.0"#, with: #""delay_ms": 0"#))
        #expect(abs(noDelay.inputs.roundTripSeconds - 0.0042) < 1e-12)
        let neither = try ScalingMeasurement.point(jsonLine: line.replacingOccurrences(of: #""delay_ms": 2.0"#, with: #""delay_ms": 0"#)
            .replacingOccurrences(of: #""rtt_ms": 4.2, "#, with: ""))
        #expect(neither.inputs.roundTripSeconds == 0)
        // Without "cores" the hosts are taken as separate; with it, the update splits at most that many ways.
        #expect(p.inputs.sharedCores == 0)
        let shared = try ScalingMeasurement.point(jsonLine: line.replacingOccurrences(of: #""rtt_ms": 4.2, "#, with: #""rtt_ms": 4.2, "cores": 2, "#))
        #expect(shared.inputs.sharedCores == 2 && shared.inputs.updateWidth == 2)
        for (key, bad) in [("delay_ms", "-2"), ("delay_ms", "\"2\""), ("rtt_ms", "1e9"), ("rtt_ms", "[]")] {
            let edited = line.replacingOccurrences(of: #""\#(key)": "#, with: #""\#(key)": \#(bad), "old_\#(key)": "#)
            #expect(throws: ScalingMeasurementError.self, "\(key) \(bad)") { try ScalingMeasurement.point(jsonLine: edited) }
        }
        // `overlap_pull`: absent (runs from before it) or false, a serial run; true, a flag the fit
        // turns into the hidden fraction, with the shape's first stage.
        #expect(p.inputs.pullOverlap == 0)
        let withOverlap = { (v: String) in line.replacingOccurrences(of: #""rtt_ms": 4.2, "#, with: #""rtt_ms": 4.2, "overlap_pull": "# + v + ", ") }
        let overlapped = try ScalingMeasurement.point(jsonLine: withOverlap("true"))
        #expect(overlapped.inputs.pullOverlap == 1 && overlapped.inputs.firstStageShare == ScalingModel.firstStageShare(model: "bart-small"))
        #expect(try ScalingMeasurement.point(jsonLine: withOverlap("false")).inputs.pullOverlap == 0)
        #expect(throws: ScalingMeasurementError.self) { try ScalingMeasurement.point(jsonLine: withOverlap("1")) }
        for bad in ["0", "2.5", "-1", "1e9", "\"two\""] {
            #expect(throws: ScalingMeasurementError.self, "cores \(bad)") {
                try ScalingMeasurement.point(jsonLine: line.replacingOccurrences(of: #""rtt_ms": 4.2, "#, with: #""rtt_ms": 4.2, "cores": "# + bad + ", "))
            }
        }
    }

    @Test func rejectsHostileLinesWithTheirLineNumber() {
        #expect(ScalingMeasurement.bitsPerSecond("1gbit") == 1e9)
        #expect(ScalingMeasurement.bitsPerSecond("500mbit") == 5e8)
        #expect(ScalingMeasurement.bitsPerSecond("fast") == nil)
        #expect(ScalingMeasurement.bitsPerSecond("-1gbit") == nil)
        #expect(ScalingMeasurement.bitsPerSecond("nangbit") == nil)
        do {
            _ = try ScalingMeasurement.points(jsonLines: "\n[1, 2]\n")
            Issue.record("an array was accepted")
        } catch {
            #expect("\(error)".contains("line 2"))
        }
        let noSummary = #"{"servers": 1, "workers": 2, "rate": "1gbit", "delay_ms": 0}"#
        #expect(throws: ScalingMeasurementError.self) { try ScalingMeasurement.point(jsonLine: noSummary) }
        let zeroWorkers = #"{"servers": 1, "workers": 0, "rate": "1gbit", "delay_ms": 0, "summary": {}}"#
        #expect(throws: ScalingMeasurementError.self) { try ScalingMeasurement.point(jsonLine: zeroWorkers) }
    }
}
