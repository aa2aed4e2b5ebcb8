import Foundation
import Testing
import PrecisWire

/// Each member's control message is judged by its type's `dropReason` before the coordinator uses it.
@Suite struct ControlChecksTests {
    func done(step: Int = 3, contribution: Int = 0, loss: Double = 2, tokens: Int = 10, examples: Int = 4, compute: Double = 0.5,
              wire: Int = 1_000_000, padded: Int = 256, pullRaw: Int = 1_000, gradNorm: Double = 0, encode: Double = 0.05,
              skipped: Bool? = nil) -> DoneMessage {
        DoneMessage(step: step, contribution: contribution, lossSum: loss, tokens: tokens, examples: examples, computeSeconds: compute,
                    waitSeconds: 0.1, wireBytes: wire, rawBytes: wire, gradNorm: gradNorm, paddedTokens: padded,
                    pullWireBytes: 500, pullRawBytes: pullRaw, encodeSeconds: encode, skipped: skipped)
    }

    @Test func aSoundReportPasses() {
        #expect(done().dropReason(totalSteps: 10) == nil)
        #expect(done(step: 0).dropReason(totalSteps: 10) == nil && done(step: 9).dropReason(totalSteps: 10) == nil)
        // The figures at their bounds.
        #expect(done(tokens: Int(UInt32.max), examples: 0, wire: 1 << 40, padded: 1 << 40).dropReason(totalSteps: 10) == nil)
    }

    /// Found by review: step Int.max overflowed `step + 1` (the non-finite check) and crashed the coordinator.
    @Test func aStepOutsideTheRunIsDropped() {
        for step in [Int.max, 10, -1, Int.min] {
            #expect(done(step: step).dropReason(totalSteps: 10)?.contains("step \(step) is outside 0..<10") == true)
        }
        #expect(done(contribution: -1).dropReason(totalSteps: 10) != nil)
    }

    /// Found by review: figures of Int.max overflowed the running sums; negative ones corrupted the
    /// loss and the examples seen (which a checkpoint then could not resume from).
    @Test func countsAndBytesOutOfRangeAreDropped() {
        let bad: [DoneMessage] = [
            done(tokens: Int.max), done(tokens: Int(UInt32.max) + 1), done(tokens: -1), done(examples: Int.max), done(examples: -5),
            done(wire: Int.max), done(wire: (1 << 40) + 1), done(wire: -1), done(padded: Int.max), done(pullRaw: -1), done(pullRaw: .max),
        ]
        for d in bad { #expect(d.dropReason(totalSteps: 10)?.contains("is outside 0...") == true, "\(d)") }
    }

    @Test func aNegativeLossOrNormIsDroppedAndANonFiniteOneIsKept() {
        #expect(done(loss: -1).dropReason(totalSteps: 10)?.contains("negative") == true)
        #expect(done(loss: -.infinity).dropReason(totalSteps: 10) != nil)
        #expect(done(gradNorm: -0.5).dropReason(totalSteps: 10) != nil)
        // NaN and +∞ are what `stop_on_nonfinite` acts on: they must reach it.
        for x in [Double.nan, .infinity] {
            #expect(done(loss: x).dropReason(totalSteps: 10) == nil)
            #expect(done(gradNorm: x).dropReason(totalSteps: 10) == nil)
        }
    }

    @Test func timingsMustBeFiniteAndAtLeastZero() {
        for s in [Double.nan, .infinity, -1, 1e300] {
            #expect(done(compute: s).dropReason(totalSteps: 10)?.contains("computeSeconds") == true)
            #expect(done(encode: s).dropReason(totalSteps: 10)?.contains("encodeSeconds") == true)
        }
    }

    /// A skipped report carries nothing but its step, contribution and attempt.
    @Test func aSkippedReportIsJudgedByItsStepAlone() {
        #expect(done(tokens: -1, wire: Int.max, skipped: true).dropReason(totalSteps: 10) == nil)
        #expect(done(step: Int.max, skipped: true).dropReason(totalSteps: 10) != nil)
    }

    /// Found by review: a normReport's contribution with tokens Int.max + 1 … overflowed `ContributionFigures(adding:)`.
    @Test func aNormReportsFiguresAreBoundedByTheirWireFormat() throws {
        let sound = ContributionFigures(lossSum: 12, tokens: 30, examples: 2)
        #expect(NormMessage(step: 1, server: 0, sumOfSquares: 4, contributions: [sound, sound]).dropReason(senderSlot: 0) == nil)
        for f in [ContributionFigures(lossSum: 1, tokens: Int.max, examples: 1), ContributionFigures(lossSum: 1, tokens: 1, examples: -1),
                  ContributionFigures(lossSum: -3, tokens: 1, examples: 1), ContributionFigures(lossSum: 1, tokens: Int(UInt32.max) + 1, examples: 1)] {
            let n = NormMessage(step: 1, server: 0, sumOfSquares: 4, contributions: [sound, f])
            #expect(n.dropReason(senderSlot: 0)?.hasPrefix("contribution 1: ") == true)
        }
        // What a push's 16-byte trailer can carry always passes.
        var bytes = [UInt8](repeating: 0xff, count: ContributionFigures.size)
        bytes.withUnsafeMutableBytes { ContributionFigures(lossSum: .nan, tokens: 0, examples: 0).write(into: $0.baseAddress!) }
        for i in 8..<16 { bytes[i] = 0xff }
        let read = try bytes.withUnsafeBytes { try ContributionFigures(trailerOf: $0) }
        #expect(read.tokens == Int(UInt32.max) && read.dropReason == nil)
    }

    /// Found by review: one server's norm could fill another's slot (a wrong global norm).
    @Test func aNormReportMustComeFromTheServerItNames() {
        #expect(NormMessage(step: 1, server: 1, sumOfSquares: 4).dropReason(senderSlot: 1) == nil)
        #expect(NormMessage(step: 1, server: 1, sumOfSquares: 4).dropReason(senderSlot: 0) == "it names server 1, its sender is server 0")
        #expect(NormMessage(step: 1, server: 0, sumOfSquares: 4).dropReason(senderSlot: nil) != nil)
        #expect(NormMessage(step: 1, server: 0, sumOfSquares: -1).dropReason(senderSlot: 0)?.contains("negative") == true)
        #expect(NormMessage(step: 1, server: 0, sumOfSquares: .nan).dropReason(senderSlot: 0) == nil)
        #expect(NormMessage(step: 1, server: 0, sumOfSquares: .infinity).dropReason(senderSlot: 0) == nil)
    }

    @Test func anInitDoneMustComeFromTheServerItNames() {
        #expect(InitDoneMessage(server: 2, version: 0).dropReason(senderSlot: 2) == nil)
        #expect(InitDoneMessage(server: 2, version: 0).dropReason(senderSlot: 0) != nil)
        #expect(InitDoneMessage(server: 0, version: 0).dropReason(senderSlot: nil) != nil)
    }

    func result(indices: [Int] = [4, 7, 9], loss: Double = 6, count: Int? = nil, predictions: [String]? = nil,
                lengths: [Int]? = nil, seconds: Double = 1) -> EvalResultMessage {
        EvalResultMessage(id: 1, indices: indices, lossSum: loss, count: count ?? indices.count,
                          predictions: predictions ?? indices.map { "summary \($0)" }, genLengths: lengths ?? indices.map { _ in 12 },
                          seconds: seconds)
    }

    /// Found by review: lengths [Int.max, 1] overflowed the mean length; predictions shorter than the
    /// indices put the predictions against the wrong references; a negative loss sum corrupted eval_loss.
    @Test func anEvalResultMustCountEachOfItsExamplesOnce() {
        #expect(result().dropReason == nil)
        #expect(result(predictions: [], lengths: []).dropReason == nil, "without generation")
        #expect(result(indices: [], predictions: [], lengths: []).dropReason == nil)
        #expect(result(lengths: [Int.max, 1, 1]).dropReason?.contains("generated length") == true)
        #expect(result(lengths: [-1, 1, 1]).dropReason != nil)
        #expect(result(lengths: [1, 1]).dropReason != nil)
        #expect(result(predictions: ["a", "b"], lengths: [1, 1]).dropReason?.contains("2 prediction(s) for 3") == true)
        #expect(result(count: Int.max).dropReason?.contains("count") == true)
        #expect(result(count: 2).dropReason != nil)
        #expect(result(loss: -4).dropReason?.contains("negative") == true)
        #expect(result(loss: .nan).dropReason == nil)
        #expect(result(seconds: .infinity).dropReason != nil)
    }

    /// A worker that could not evaluate says so with count -1 and its message.
    @Test func aFailedShareCarriesItsMessage() {
        #expect(result(count: -1, predictions: ["no such folder"], lengths: []).dropReason == nil)
        #expect(result(count: -1, predictions: ["a", "b"], lengths: []).dropReason != nil)
        #expect(result(count: -2).dropReason != nil)
    }

    @Test func aRegisterWithAHugeNameOrHostIsRefused() {
        func reg(name: String = "w0", host: String = "h", endpoint: String? = nil) -> RegisterMessage {
            RegisterMessage(role: .worker, name: name, host: host, pid: 1, endpoint: endpoint, threads: 1)
        }
        #expect(reg(name: String(repeating: "n", count: 256), host: String(repeating: "é", count: 128)).dropReason == nil)
        #expect(reg(name: String(repeating: "n", count: 257)).dropReason == "its name is 257 bytes long (at most 256)")
        #expect(reg(host: String(repeating: "é", count: 129)).dropReason?.contains("host") == true)
        #expect(reg(name: String(repeating: "x", count: 4 << 20)).dropReason != nil)
        #expect(reg(endpoint: "tcp://" + String(repeating: "a", count: 1100) + ":5555").dropReason?.contains("endpoint") == true)
    }
}
