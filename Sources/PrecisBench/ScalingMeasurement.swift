import Foundation

/// A line of tools/bench/scaling.sh's output that cannot be read as a run.
package struct ScalingMeasurementError: Error, CustomStringConvertible {
    package let description: String
    init(_ line: Int, _ what: String) { description = "scaling measurement line \(line): \(what)" }
}

/// One run of tools/bench/scaling.sh (one JSON line), as the model's point.
package enum ScalingMeasurement {
    /// `1gbit`, `10gbit`, `500mbit`, `100kbit`, `8bit` (tc's spelling) in bits per second.
    package static func bitsPerSecond(_ rate: String) -> Double? {
        let s = rate.lowercased()
        guard s.hasSuffix("bit") else { return nil }
        let body = s.dropLast(3)
        let scale: Double, digits: Substring
        switch body.last {
        case "k": scale = 1e3; digits = body.dropLast()
        case "m": scale = 1e6; digits = body.dropLast()
        case "g": scale = 1e9; digits = body.dropLast()
        default: scale = 1; digits = body
        }
        guard let v = Double(digits), v.isFinite, v > 0 else { return nil }
        return v * scale
    }

    /// The point of one JSON line (`lineNumber` names it in errors). The parameter count is the
    /// gradients' raw bytes ÷ 4 per worker; bytes per parameter are the wire bytes ÷ that; the
    /// round trip is twice the emulated one-way delay, else the one measured with ping.
    package static func point(jsonLine: String, lineNumber: Int = 1) throws -> ScalingPoint {
        guard let obj = try? JSONSerialization.jsonObject(with: Data(jsonLine.utf8)) as? [String: Any] else {
            throw ScalingMeasurementError(lineNumber, "not a JSON object")
        }
        func number(_ o: [String: Any], _ key: String) throws -> Double {
            guard let v = o[key] as? NSNumber, v.doubleValue.isFinite else { throw ScalingMeasurementError(lineNumber, "no number '\(key)'") }
            return v.doubleValue
        }
        guard let summary = obj["summary"] as? [String: Any] else { throw ScalingMeasurementError(lineNumber, "no 'summary' object") }
        guard let rate = obj["rate"] as? String, let bits = bitsPerSecond(rate) else {
            throw ScalingMeasurementError(lineNumber, "'rate' is not like 1gbit")
        }
        let workers = try number(obj, "workers"), servers = try number(obj, "servers")
        guard workers >= 1, servers >= 1, workers <= 1e6, servers <= 1e6 else {
            throw ScalingMeasurementError(lineNumber, "workers and servers must be between 1 and 1000000")
        }
        let rawGrad = try number(summary, "gradient_raw_mb_per_step")
        let parameters = rawGrad * 1e6 / workers / 4
        guard parameters > 0 else { throw ScalingMeasurementError(lineNumber, "gradient_raw_mb_per_step must be positive") }
        let gradWire = try number(summary, "gradient_wire_mb_per_step"), pullWire = try number(summary, "parameter_wire_mb_per_step")
        let step = try number(summary, "s_per_step")
        guard step > 0 else { throw ScalingMeasurementError(lineNumber, "s_per_step must be positive") }
        // An optional field: absent or null gives nil; present, it must be a number in `range` (whole
        // when asked), or the line is refused.
        func optional(_ key: String, _ range: ClosedRange<Double>, whole: Bool = false, _ what: String) throws -> Double? {
            guard let raw = obj[key], !(raw is NSNull) else { return nil }
            guard let v = (raw as? NSNumber)?.doubleValue, v.isFinite, range.contains(v), !whole || v == v.rounded() else {
                throw ScalingMeasurementError(lineNumber, "'\(key)' must be \(what)")
            }
            return v
        }
        // The links' own round trip, twice the one-way delay each host's ingress adds; without a delay,
        // ping's figure (null when ping was absent). Ping runs while the roles start on the shared
        // cores: its figure carries their scheduling, 0.5–6 ms for links of 0.2 ms.
        let ms = "a number of milliseconds from 0 to 60000"
        let delay = try optional("delay_ms", 0...60_000, ms) ?? 0, pinged = try optional("rtt_ms", 0...60_000, ms)
        let rtt = delay > 0 ? 2 * delay / 1000 : (pinged ?? 0) / 1000
        var inputs = ScalingInputs(workers: Int(workers), servers: Int(servers), parameters: parameters,
                                   gradientBytesPerParameter: gradWire * 1e6 / workers / parameters,
                                   pullBytesPerParameter: pullWire * 1e6 / workers / parameters,
                                   bandwidthBitsPerSecond: bits, roundTripSeconds: rtt,
                                   computeSeconds: try number(summary, "compute_s_per_step"),
                                   encodeSeconds: try number(summary, "encode_s_per_step"))
        // The cores the run's hosts shared (scaling.sh writes the machine's); absent: hosts of their own.
        if let cores = try optional("cores", 1...1_000_000, whole: true, "a whole number from 1 to 1000000") {
            inputs.sharedCores = Int(cores)
        }
        let model = obj["model"] as? String ?? "?"
        // `overlap_pull` (absent: a run from before it existed, not overlapped): the flag 1 until
        // the fit sets the hidden fraction (`ScalingModel.withPullOverlap`).
        var overlapped = false
        if let raw = obj["overlap_pull"], !(raw is NSNull) {
            // JSON's true/false come back as NSNumbers of type "c" (a number 1 would pass `as? Bool`).
            guard let n = raw as? NSNumber, String(cString: n.objCType) == "c" else {
                throw ScalingMeasurementError(lineNumber, "'overlap_pull' must be true or false")
            }
            overlapped = n.boolValue
        }
        if overlapped {
            inputs.pullOverlap = 1
            inputs.firstStageShare = ScalingModel.firstStageShare(model: model)
        }
        let label = "\(model) \(Int(servers))x\(Int(workers)) \(rate) \(String(format: "%g", delay)) ms\(overlapped ? " ov" : "")"
        return ScalingPoint(label: label, inputs: inputs, measuredStepSeconds: step)
    }

    /// Every non-empty line of a JSON Lines file.
    package static func points(jsonLines text: String) throws -> [ScalingPoint] {
        var out: [ScalingPoint] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            out.append(try point(jsonLine: String(line), lineNumber: i + 1))
        }
        return out
    }
}
