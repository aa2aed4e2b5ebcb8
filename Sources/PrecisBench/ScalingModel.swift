import Foundation

/// A sync step over links, as `precis bench scaling` predicts it: `workers` workers and `servers`
/// parameter servers, each on its own host with one link of `bandwidthBitsPerSecond` per direction.
/// The parameters are split evenly over the servers; every worker pushes all its gradients and pulls
/// all the parameters every step, so a server's link carries `workers ÷ servers` times a worker's.
package struct ScalingInputs: Sendable, Equatable {
    package var workers: Int
    package var servers: Int
    package var parameters: Double
    /// Wire bytes per parameter of a worker's push (bf16 with error feedback + LZ4 ≈ 1.5).
    package var gradientBytesPerParameter: Double
    /// Wire bytes per parameter of a worker's pull (fp32 + LZ4 ≈ 3.5; bf16-delta + LZ4 ≈ 1.5).
    package var pullBytesPerParameter: Double
    package var bandwidthBitsPerSecond: Double
    /// Round trip between two hosts.
    package var roundTripSeconds: Double
    /// The slowest worker's forward + backward.
    package var computeSeconds: Double
    /// Gradient encoding not overlapped with backward.
    package var encodeSeconds: Double = 0
    /// The fraction of compute the pull and the servers' update hide behind (`cluster.overlap_pull`:
    /// forward starts once its first stage is in and waits for each layer's partitions as it
    /// reaches them; 0: a worker starts forward once every partition has arrived).
    package var pullOverlap: Double = 0
    /// With `pullOverlap`: the share of the parameters forward needs before it starts (the token
    /// embedding and the encoder's positions): their update and transfer are never hidden.
    package var firstStageShare: Double = 0
    /// 0: every server has a host of its own, so the update is split S ways. n > 0: the servers share
    /// n cores (tools/bench/scaling.sh's runs on one VM: every role's namespace is on the same
    /// cores, and a sync step's update runs while the workers wait), so the update is split only
    /// min(S, n) ways.
    package var sharedCores: Int = 0

    package init(workers: Int, servers: Int, parameters: Double, gradientBytesPerParameter: Double, pullBytesPerParameter: Double,
                 bandwidthBitsPerSecond: Double, roundTripSeconds: Double, computeSeconds: Double, encodeSeconds: Double = 0, pullOverlap: Double = 0) {
        self.workers = workers; self.servers = servers; self.parameters = parameters
        self.gradientBytesPerParameter = gradientBytesPerParameter; self.pullBytesPerParameter = pullBytesPerParameter
        self.bandwidthBitsPerSecond = bandwidthBitsPerSecond; self.roundTripSeconds = roundTripSeconds
        self.computeSeconds = computeSeconds; self.encodeSeconds = encodeSeconds
        self.pullOverlap = pullOverlap
    }

    /// How many times a worker's bytes the busiest link carries: a server's link when servers are
    /// fewer than workers (each server answers every worker), else the worker's own.
    package var fanIn: Double { max(1, Double(workers) / Double(max(servers, 1))) }

    /// How many ways the servers' update is split: one per server, or at most `sharedCores`.
    package var updateWidth: Double {
        let s = max(servers, 1)
        return Double(sharedCores > 0 ? min(s, sharedCores) : s)
    }
}

/// The constants of the model, fitted to measured runs (`ScalingModel.fit`).
package struct ScalingConstants: Sendable, Equatable {
    /// The fraction of a link's rate a transfer achieves (TCP, framing, the token bucket).
    package var linkEfficiency: Double
    /// The fraction of compute the gradient push hides (it leaves while backward runs).
    package var hiddenPushFraction: Double
    /// A server's update (decode, sum, AdamW, encode for the pull) per parameter it holds, seconds.
    package var updateSecondsPerParameter: Double
    /// Round trips a step waits for beyond the bytes (push, version, pull request and reply).
    package var roundTrips: Double
    /// Fixed cost per step: scheduling, messages, wake-ups.
    package var overheadSeconds: Double
    /// CPU seconds per byte moved (the kernel's copies through TCP and, on the bench, the link
    /// emulation's user-space verdicts): a transfer takes the longer of its time on the link and
    /// its time on the CPU (`ScalingInputs.sharedCores`).
    package var cpuSecondsPerByte: Double
    /// With `overlap_pull`: the fraction of compute the pull and the servers' update hide behind
    /// (forward's share before the LM head, at most; measured runs set `ScalingInputs.pullOverlap` to it).
    package var hiddenPullFraction: Double = 0

    package init(linkEfficiency: Double, hiddenPushFraction: Double, updateSecondsPerParameter: Double, roundTrips: Double, overheadSeconds: Double,
                 cpuSecondsPerByte: Double = 0) {
        self.linkEfficiency = linkEfficiency; self.hiddenPushFraction = hiddenPushFraction
        self.updateSecondsPerParameter = updateSecondsPerParameter; self.roundTrips = roundTrips; self.overheadSeconds = overheadSeconds
        self.cpuSecondsPerByte = cpuSecondsPerByte
    }

    /// Starting values, not a fit to capped links: the update from the loopback trace in
    /// docs/benchmarks.md ("Where the cluster's time goes": AdamW and encoding ≈ 5 ns per parameter
    /// each on one thread of the 2-vCPU VM), a push mostly hidden behind backward, 90 % of a link's
    /// rate, three round trips and 20 ms of fixed cost. `precis bench scaling --measured FILE` fits
    /// all five to tools/bench/scaling.sh's runs and uses the fit instead.
    package static let defaults = ScalingConstants(linkEfficiency: 0.9, hiddenPushFraction: 0.3,
                                                   updateSecondsPerParameter: 1e-8, roundTrips: 3, overheadSeconds: 0.02)
}

/// One predicted step, split as the coordinator's summary splits a measured one.
package struct StepPrediction: Sendable, Equatable {
    package var compute: Double
    package var encode: Double
    /// Push time left over once backward ends.
    package var pushExposed: Double
    package var update: Double
    /// Pull time not hidden behind compute.
    package var pull: Double
    package var latency: Double
    package var overhead: Double

    /// The step with `hidden` seconds of compute covering the pull and the servers' update (pull
    /// first), except the `firstStageShare` of both that forward needs before it starts.
    func hidingPull(behind hidden: Double, firstStageShare: Double) -> StepPrediction {
        guard hidden > 0 else { return self }
        let covered = min(hidden, (1 - min(max(firstStageShare, 0), 1)) * (pull + update))
        var p = self
        p.pull = max(0, pull - covered)
        p.update = max(0, update - max(0, covered - pull))
        return p
    }

    /// Time on the wire that the step waits for (push not hidden + pull).
    package var wire: Double { pushExposed + pull }
    /// Everything after compute and encoding: what a worker waits for.
    package var waiting: Double { pushExposed + update + pull + latency + overhead }
    package var total: Double { compute + encode + waiting }
    /// Compute ÷ step: the share of a worker's time spent on forward + backward.
    package var efficiency: Double { total > 0 ? compute / total : 0 }
}

/// A measured run reduced to what the model needs (from one JSON line of tools/bench/scaling.sh).
package struct ScalingPoint: Sendable, Equatable {
    package var label: String
    package var inputs: ScalingInputs
    package var measuredStepSeconds: Double

    package init(label: String, inputs: ScalingInputs, measuredStepSeconds: Double) {
        self.label = label; self.inputs = inputs; self.measuredStepSeconds = measuredStepSeconds
    }
}

package enum ScalingModel {
    /// The step of `inputs` under `constants`.
    package static func predict(_ inputs: ScalingInputs, _ constants: ScalingConstants = .defaults) -> StepPrediction {
        let bytesPerSecond = inputs.bandwidthBitsPerSecond / 8 * constants.linkEfficiency
        // The bytes each transfer puts through one CPU: on hosts of their own, the busiest host's (a
        // server's fan-in times a worker's); on the bench's shared cores, every worker's, spread over them.
        let cpuShare = inputs.sharedCores > 0 ? Double(inputs.workers) / Double(inputs.sharedCores) : inputs.fanIn
        func transfer(_ bytesPerParameter: Double) -> Double {
            let bytes = inputs.parameters * bytesPerParameter
            return max(bytes * inputs.fanIn / bytesPerSecond, constants.cpuSecondsPerByte * bytes * cpuShare)
        }
        let push = transfer(inputs.gradientBytesPerParameter)
        let pull = transfer(inputs.pullBytesPerParameter)
        let hidden = constants.hiddenPushFraction * inputs.computeSeconds
        return StepPrediction(compute: inputs.computeSeconds, encode: inputs.encodeSeconds,
                              pushExposed: max(0, push - hidden),
                              update: constants.updateSecondsPerParameter * inputs.parameters / inputs.updateWidth,
                              pull: pull, latency: constants.roundTrips * inputs.roundTripSeconds, overhead: constants.overheadSeconds)
            .hidingPull(behind: inputs.pullOverlap * inputs.computeSeconds, firstStageShare: inputs.firstStageShare)
    }

    /// The share of a shape's parameters forward reads before its first layer (stage 0 of
    /// `ParameterGate`): the tied token embedding, the encoder's learned positions (max + 2 rows)
    /// and its embedding LayerNorm, over all parameters. bart-small (8,192 × 256, 1,026 × 256):
    /// 0.290; bart-base (50,265 × 768, 1,026 × 768): 0.283; bart-large (× 1,024): 0.129.
    /// ScalingModelTests checks bart-small's against the model's own first ranges. 0 for a
    /// shape not listed (every parameter hideable: an optimistic bound).
    package static func firstStageShare(model: String) -> Double {
        switch model {
        case "bart-small": return 0.290
        case "bart-base": return 0.283
        case "bart-large": return 0.129
        default: return 0
        }
    }

    /// The fraction of compute the pull hides behind in a measured run with `overlap_pull` (the
    /// runs' `pullOverlap` is a flag until fitted: 1 marks a run that overlapped).
    package static func withPullOverlap(_ p: ScalingPoint, _ c: ScalingConstants) -> ScalingInputs {
        var i = p.inputs
        i.pullOverlap = i.pullOverlap > 0 ? c.hiddenPullFraction : 0
        return i
    }

    /// |predicted − measured| ÷ measured.
    package static func relativeError(_ p: ScalingPoint, _ constants: ScalingConstants) -> Double {
        abs(predict(withPullOverlap(p, constants), constants).total - p.measuredStepSeconds) / p.measuredStepSeconds
    }

    /// The CPU cost per byte the fit tries: none, then 24 values from 0.5 to 20 ns per byte, evenly
    /// spaced in the logarithm.
    static let cpuPerByteGrid: [Double] = [0] + (0..<24).map { 0.5e-9 * pow(40, Double($0) / 23) }

    /// The constants that minimise the largest relative error over `points` (then the summed squared
    /// relative error), in two stages. On the runs without `overlap_pull`: link efficiency, hidden
    /// fraction and CPU per byte on a grid, the update, round-trip and overhead terms (linear,
    /// non-negative) by least squares on relative errors for each grid cell. Then, with those fixed,
    /// the fraction of compute the pull hides behind on the runs with it (a grid from 0 to 1).
    package static func fit(_ points: [ScalingPoint]) -> ScalingConstants {
        precondition(!points.isEmpty, "fit needs measured points")
        let serial = points.filter { $0.inputs.pullOverlap == 0 }, overlapped = points.filter { $0.inputs.pullOverlap > 0 }
        // Without a serial run the overlapped ones stand in for the first stage (which then absorbs
        // some of the overlap's gain: `make bench-scaling` measures both sets).
        var c = fitSerial(serial.isEmpty ? points.map { var p = $0; p.inputs.pullOverlap = 0; return p } : serial)
        guard !overlapped.isEmpty else { return c }
        var best: (worst: Double, sum: Double, hidden: Double)?
        for hidden in stride(from: 0.0, through: 1.0001, by: 0.01) {
            c.hiddenPullFraction = hidden
            let errors = overlapped.map { relativeError($0, c) }
            let worst = errors.max()!, sum = errors.reduce(0) { $0 + $1 * $1 }
            if best == nil || worst < best!.worst - 1e-12 || (abs(worst - best!.worst) <= 1e-12 && sum < best!.sum) { best = (worst, sum, hidden) }
        }
        c.hiddenPullFraction = best!.hidden
        return c
    }

    /// `fit`'s first stage, on runs whose pull is not overlapped.
    static func fitSerial(_ points: [ScalingPoint]) -> ScalingConstants {
        var best: (worst: Double, sum: Double, c: ScalingConstants)?
        let cells = stride(from: 0.3, through: 1.0001, by: 0.025).flatMap { e in
            stride(from: 0.0, through: 1.0001, by: 0.05).flatMap { h in cpuPerByteGrid.map { (e, h, $0) } }
        }
        for (e, h, z) in cells {
            var c = ScalingConstants(linkEfficiency: e, hiddenPushFraction: h, updateSecondsPerParameter: 0, roundTrips: 0, overheadSeconds: 0,
                                     cpuSecondsPerByte: z)
            // What is left of each step once compute, encoding and transfers are counted: u·P/S + k·RTT + o.
            let rows = points.map { p -> (x: [Double], y: Double, w: Double) in
                let base = predict(p.inputs, c)
                let x = [p.inputs.parameters / p.inputs.updateWidth, p.inputs.roundTripSeconds, 1]
                return (x, p.measuredStepSeconds - (base.compute + base.encode + base.pushExposed + base.pull), 1 / p.measuredStepSeconds)
            }
            let beta = nonNegativeLeastSquares(rows)
            c.updateSecondsPerParameter = beta[0]; c.roundTrips = beta[1]; c.overheadSeconds = beta[2]
            let errors = points.map { relativeError($0, c) }
            let worst = errors.max()!, sum = errors.reduce(0) { $0 + $1 * $1 }
            if best == nil || worst < best!.worst - 1e-12 || (abs(worst - best!.worst) <= 1e-12 && sum < best!.sum) { best = (worst, sum, c) }
        }
        return best!.c
    }

    /// Weighted least squares with every coefficient ≥ 0, exactly: the unconstrained solution on every
    /// subset of the columns (a few unknowns: 2ⁿ small solves), the best one with no negative coefficient.
    static func nonNegativeLeastSquares(_ unscaled: [(x: [Double], y: Double, w: Double)]) -> [Double] {
        let n = unscaled.first?.x.count ?? 0
        // Columns scaled to unit weighted norm (parameters per server and seconds differ by 10¹⁰).
        let norms = (0..<n).map { j in max(sqrt(unscaled.reduce(0) { $0 + pow($1.w * $1.x[j], 2) }), 1e-300) }
        let rows = unscaled.map { r in (x: (0..<n).map { r.x[$0] / norms[$0] }, y: r.y, w: r.w) }
        var best = [Double](repeating: 0, count: n)
        var bestResidual = residual(rows, best)
        for mask in 1..<(1 << n) {
            let cols = (0..<n).filter { mask & (1 << $0) != 0 }
            // Normal equations on these columns.
            var a = [[Double]](repeating: [Double](repeating: 0, count: cols.count + 1), count: cols.count)
            for r in rows {
                let w2 = r.w * r.w
                for (i, ci) in cols.enumerated() {
                    for (j, cj) in cols.enumerated() { a[i][j] += w2 * r.x[ci] * r.x[cj] }
                    a[i][cols.count] += w2 * r.x[ci] * r.y
                }
            }
            guard let solution = solve(a) else { continue }
            var beta = [Double](repeating: 0, count: n)
            for (i, c) in cols.enumerated() { beta[c] = solution[i] }
            guard beta.allSatisfy({ $0 >= 0 && $0.isFinite }) else { continue }
            let res = residual(rows, beta)
            if res < bestResidual { best = beta; bestResidual = res }
        }
        return (0..<n).map { best[$0] / norms[$0] }
    }

    static func residual(_ rows: [(x: [Double], y: Double, w: Double)], _ beta: [Double]) -> Double {
        rows.reduce(0) { acc, r in
            let fit = zip(r.x, beta).reduce(0) { $0 + $1.0 * $1.1 }
            return acc + pow(r.w * (r.y - fit), 2)
        }
    }

    /// Gaussian elimination with partial pivoting on an augmented n × (n + 1) matrix; nil when singular.
    static func solve(_ m: [[Double]]) -> [Double]? {
        var a = m
        let n = a.count
        for col in 0..<n {
            let pivot = (col..<n).max { abs(a[$0][col]) < abs(a[$1][col]) }!
            let scale = a.map { abs($0[col]) }.max() ?? 0
            guard abs(a[pivot][col]) > 1e-12 * max(scale, 1e-300) else { return nil }
            a.swapAt(col, pivot)
            for r in 0..<n where r != col {
                let f = a[r][col] / a[col][col]
                if f != 0 { for c in col...n { a[r][c] -= f * a[col][c] } }
            }
        }
        return (0..<n).map { a[$0][n] / a[$0][$0] }
    }

    // MARK: predictions for a fleet

    /// A model shape for the prediction table.
    package struct Shape: Sendable, Equatable {
        package var name: String
        package var parameters: Double
        /// Forward + backward of one worker's step on one host.
        package var computeSeconds: Double
        /// See `ScalingInputs.firstStageShare`.
        package var firstStageShare: Double
        package init(name: String, parameters: Double, computeSeconds: Double, firstStageShare: Double = 0) {
            self.name = name; self.parameters = parameters; self.computeSeconds = computeSeconds
            self.firstStageShare = firstStageShare
        }

        /// The inputs of a step of this shape on `workers` workers and `servers` servers.
        func inputs(workers: Int, servers: Int, bandwidthBitsPerSecond: Double, roundTripSeconds: Double,
                    gradientBytesPerParameter: Double, pullBytesPerParameter: Double, pullOverlap: Double) -> ScalingInputs {
            var i = ScalingInputs(workers: workers, servers: servers, parameters: parameters,
                                  gradientBytesPerParameter: gradientBytesPerParameter, pullBytesPerParameter: pullBytesPerParameter,
                                  bandwidthBitsPerSecond: bandwidthBitsPerSecond, roundTripSeconds: roundTripSeconds,
                                  computeSeconds: computeSeconds, pullOverlap: pullOverlap)
            i.firstStageShare = firstStageShare
            return i
        }
    }

    /// One row of the prediction table: `workers` worker hosts and the fewest server hosts (at most
    /// one per worker) that keep the efficiency at `target` or above; all `workers` servers when none does.
    package struct FleetRow: Sendable, Equatable {
        package var workers: Int
        package var servers: Int
        package var step: StepPrediction
        package var meetsTarget: Bool
    }

    package static func fleetRow(workers: Int, shape: Shape, bandwidthBitsPerSecond: Double, roundTripSeconds: Double,
                                 gradientBytesPerParameter: Double, pullBytesPerParameter: Double, target: Double,
                                 pullOverlap: Double = 0, constants: ScalingConstants = .defaults) -> FleetRow {
        func step(_ s: Int) -> StepPrediction {
            predict(shape.inputs(workers: workers, servers: s, bandwidthBitsPerSecond: bandwidthBitsPerSecond, roundTripSeconds: roundTripSeconds,
                                 gradientBytesPerParameter: gradientBytesPerParameter, pullBytesPerParameter: pullBytesPerParameter,
                                 pullOverlap: pullOverlap), constants)
        }
        for s in 1...max(workers, 1) {
            let p = step(s)
            if p.efficiency >= target { return FleetRow(workers: workers, servers: s, step: p, meetsTarget: true) }
        }
        return FleetRow(workers: workers, servers: max(workers, 1), step: step(max(workers, 1)), meetsTarget: false)
    }

    /// The most workers one server can serve with the efficiency at `target` or above (0: not even one).
    package static func workersPerServer(shape: Shape, bandwidthBitsPerSecond: Double, roundTripSeconds: Double,
                                         gradientBytesPerParameter: Double, pullBytesPerParameter: Double, target: Double,
                                         pullOverlap: Double = 0, constants: ScalingConstants = .defaults, limit: Int = 4096) -> Int {
        var best = 0
        for w in 1...limit {
            // With servers = 1 the fan-in is w; a fleet of w·k workers on k servers has the same step except
            // for the update term, which only shrinks with more servers.
            let p = predict(shape.inputs(workers: w, servers: 1, bandwidthBitsPerSecond: bandwidthBitsPerSecond, roundTripSeconds: roundTripSeconds,
                                         gradientBytesPerParameter: gradientBytesPerParameter, pullBytesPerParameter: pullBytesPerParameter,
                                         pullOverlap: pullOverlap), constants)
            if p.efficiency >= target { best = w } else { break }
        }
        return best
    }
}
