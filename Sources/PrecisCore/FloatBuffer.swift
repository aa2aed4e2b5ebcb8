/// An owned, 64-byte aligned, zero-initialised fp32 buffer. Used for the flat parameter and gradient
/// buffers and for workspaces; never resized.
public final class FloatBuffer {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>

    public init(count: Int) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, count) * 4, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(1, count))
        pointer.initialize(repeating: 0, count: max(1, count))
    }

    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }

    public subscript(i: Int) -> Float {
        get { pointer[i] }
        set { pointer[i] = newValue }
    }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
    public var array: [Float] { Array(buffer) }
    public func zero() { pointer.update(repeating: 0, count: count) }
    public func copy(from other: FloatBuffer) {
        precondition(other.count == count)
        pointer.update(from: other.pointer, count: count)
    }
}

/// A bump allocator for workspaces: one allocation, carved into named slices at set-up time, so the
/// training step itself allocates nothing.
public final class Arena {
    private var chunks: [UnsafeMutableRawPointer] = []
    public private(set) var floats = 0

    public init() {}

    public func floats(_ n: Int) -> UnsafeMutablePointer<Float> {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, n) * 4, alignment: 64)
        chunks.append(raw)
        floats += n
        let p = raw.bindMemory(to: Float.self, capacity: max(1, n))
        p.initialize(repeating: 0, count: max(1, n))
        return p
    }

    public func bytes(_ n: Int) -> UnsafeMutablePointer<UInt8> {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, n), alignment: 64)
        chunks.append(raw)
        let p = raw.bindMemory(to: UInt8.self, capacity: max(1, n))
        p.initialize(repeating: 0, count: max(1, n))
        return p
    }

    public func ints(_ n: Int) -> UnsafeMutablePointer<Int32> {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, n) * 4, alignment: 64)
        chunks.append(raw)
        let p = raw.bindMemory(to: Int32.self, capacity: max(1, n))
        p.initialize(repeating: 0, count: max(1, n))
        return p
    }

    deinit { for c in chunks { c.deallocate() } }
}
