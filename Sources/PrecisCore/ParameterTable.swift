/// The flat parameter layout: every parameter of a model lives in one contiguous fp32 buffer, and
/// this table maps each name (Hugging Face's, e.g. `model.encoder.layers.0.fc1.weight`) to its
/// offset and shape. Gradients, optimizer moments, parameter-server shards and checkpoints all use
/// the same layout.
public struct ParameterTable: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var name: String
        public var offset: Int
        public var shape: [Int]
        /// Whether AdamW applies weight decay to it (Trainer: not to biases or LayerNorm weights).
        public var decay: Bool
        public var count: Int { shape.reduce(1, *) }
        public var range: Range<Int> { offset..<(offset + count) }
    }

    public private(set) var entries: [Entry] = []
    private var index: [String: Int] = [:]
    /// Total number of floats.
    public private(set) var count: Int = 0

    public init() {}

    /// Appends a parameter and returns its offset. Names must be unique.
    @discardableResult
    public mutating func add(_ name: String, _ shape: [Int], decay: Bool) -> Int {
        precondition(index[name] == nil, "duplicate parameter \(name)")
        let e = Entry(name: name, offset: count, shape: shape, decay: decay)
        index[name] = entries.count
        entries.append(e)
        count += e.count
        return e.offset
    }

    public subscript(name: String) -> Entry? {
        index[name].map { entries[$0] }
    }

    public func offset(_ name: String) -> Int {
        guard let i = index[name] else { preconditionFailure("no parameter named \(name)") }
        return entries[i].offset
    }

    public static func == (a: ParameterTable, b: ParameterTable) -> Bool { a.entries == b.entries }

    /// The maximal runs of the flat buffer (intersected with `range`) that share one decay flag.
    public func decaySegments(in range: Range<Int>) -> [(range: Range<Int>, decay: Bool)] {
        var out: [(range: Range<Int>, decay: Bool)] = []
        for e in entries {
            let r = e.range.clamped(to: range)
            if r.isEmpty { continue }
            if let last = out.last, last.decay == e.decay, last.range.upperBound == r.lowerBound {
                out[out.count - 1].range = last.range.lowerBound..<r.upperBound
            } else {
                out.append((r, e.decay))
            }
        }
        return out
    }
}
