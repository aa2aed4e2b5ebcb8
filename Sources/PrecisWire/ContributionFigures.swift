/// What a contribution's micro-batches added up to: the figures the step's logged loss and the run's
/// examples count are made of. They travel twice: in the worker's `contributionDone` report and at
/// the end of every `pushGradient` payload it sends for the contribution, so the servers hold them
/// whenever they hold the gradient and hand them on in their `normReport`. A worker killed after its
/// pushes reached the servers and before its report left still has its loss counted.
///
/// On the wire (16 bytes, little-endian): `lossSum` as an IEEE-754 double's bits, `tokens` and
/// `examples` as 32-bit unsigned integers.
public struct ContributionFigures: Codable, Sendable, Equatable {
    public static let size = 16

    /// Σ of the token losses (any double, NaN included: a non-finite loss must reach the coordinator).
    public var lossSum: Double
    /// Label tokens.
    public var tokens: Int
    /// Examples (dataset records).
    public var examples: Int

    public init(lossSum: Double, tokens: Int, examples: Int) {
        self.lossSum = lossSum; self.tokens = tokens; self.examples = examples
    }

    /// Several contributions' figures added up (a step's, from its contributions').
    public init(adding parts: [ContributionFigures]) {
        self.init(lossSum: parts.reduce(0.0) { $0 + $1.lossSum }, tokens: parts.reduce(0) { $0 + $1.tokens },
                  examples: parts.reduce(0) { $0 + $1.examples })
    }

    /// The mean token loss (the loss sum itself when there are no tokens).
    public var meanLoss: Double { tokens > 0 ? lossSum / Double(tokens) : lossSum }

    /// Writes the 16 bytes at `p` (counts clamped to 32 bits: a micro-batch never comes near it).
    public func write(into p: UnsafeMutableRawPointer) {
        p.storeBytes(of: lossSum.bitPattern.littleEndian, toByteOffset: 0, as: UInt64.self)
        p.storeBytes(of: UInt32(clamping: tokens).littleEndian, toByteOffset: 8, as: UInt32.self)
        p.storeBytes(of: UInt32(clamping: examples).littleEndian, toByteOffset: 12, as: UInt32.self)
    }

    /// Reads the figures from the last 16 bytes of `payload`.
    public init(trailerOf payload: UnsafeRawBufferPointer) throws {
        guard payload.count >= Self.size, let base = payload.baseAddress else {
            throw WireError.lengthMismatch(field: "gradient payload (at least, for its contribution figures)", expected: Self.size, got: payload.count)
        }
        let p = base + (payload.count - Self.size)
        lossSum = Double(bitPattern: UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 0, as: UInt64.self)))
        tokens = Int(UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt32.self)))
        examples = Int(UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 12, as: UInt32.self)))
    }
}

extension WireHeader {
    /// Bytes at the end of the payload that are not the encoded shard: a gradient push's
    /// `ContributionFigures`; none for the other data messages.
    public var trailerLength: Int { type == .pushGradient ? ContributionFigures.size : 0 }

    /// The encoded shard within `payload`: all of it but the trailer (empty when the payload is
    /// shorter than the trailer; decoding then fails on its length).
    public func shard(of payload: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        let t = trailerLength
        guard t > 0 else { return payload }
        guard payload.count >= t else { return UnsafeRawBufferPointer(start: payload.baseAddress, count: 0) }
        return UnsafeRawBufferPointer(rebasing: payload[..<(payload.count - t)])
    }
}
