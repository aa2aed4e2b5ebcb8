import PrecisCoordinator
import PrecisWire

// Inputs for the coordinator's parts, not stand-ins for them: a clock the test moves, register
// messages, micro-batch lists and worker reports with known figures.

/// A clock that only moves when the test says so.
final class FakeClock: Clock {
    var seconds: Double
    init(_ seconds: Double = 100) { self.seconds = seconds }
    func now() -> Double { seconds }
    func advance(_ s: Double) { seconds += s }
}

/// A register message as a worker or server would send it.
func registration(_ role: RegisterMessage.Role, _ name: String, endpoint: String? = nil, pid: Int32 = 4242) -> RegisterMessage {
    RegisterMessage(role: role, name: name, host: "host-\(name)", pid: pid,
                    endpoint: role == .server ? endpoint ?? "tcp://127.0.0.1:5\(name.count)00" : nil, threads: 2)
}

/// A routing id, as a DEALER's `NAME/PID`.
func identity(_ s: String) -> [UInt8] { Array(s.utf8) }

/// Epochs of micro-batches given as lists; example `i` has `i + 1` label tokens.
struct FakeBatches: MicroBatchSource {
    var epochs: [[[Int]]]
    var totalSteps: Int
    var stepsPerEpoch: Int
    var microPerStep: Int

    func microBatches(epoch: Int) -> [[Int]] { epochs[epoch % epochs.count] }
    func labelTokens(of micro: [[Int]]) -> Int { micro.joined().reduce(0) { $0 + $1 + 1 } }

    /// `count` micro-batches of two examples each, numbered from `first`.
    static func pairs(_ count: Int, from first: Int = 0) -> [[Int]] {
        (0..<count).map { [first + 2 * $0, first + 2 * $0 + 1] }
    }
}

/// A worker's report with the figures the tests check.
func done(step: Int, contribution: Int = 0, loss: Double = 2, tokens: Int = 10, examples: Int = 4, compute: Double = 0.5,
          wait: Double = 0.1, encode: Double = 0.05, wire: Int = 1_000_000, raw: Int = 2_000_000, pullWire: Int = 500_000,
          pullRaw: Int = 1_000_000, padded: Int = 256, gradNorm: Double = 1.5, skipped: Bool? = nil) -> DoneMessage {
    DoneMessage(step: step, contribution: contribution, lossSum: loss, tokens: tokens, examples: examples, computeSeconds: compute,
                waitSeconds: wait, wireBytes: wire, rawBytes: raw, gradNorm: gradNorm, paddedTokens: padded, pullWireBytes: pullWire,
                pullRawBytes: pullRaw, encodeSeconds: encode, skipped: skipped)
}
