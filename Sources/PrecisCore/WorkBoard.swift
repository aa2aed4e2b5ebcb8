import CSpin
import Dispatch
import Synchronization

/// One product a lane hands out: C = alpha·op(A)·op(B) + beta·C (row-major, as `BLAS.gemm`), then,
/// optionally, `sums.dst` += the column sums of `sums.src` (rows × cols) — a bias gradient beside its
/// weight gradient. Plain pointers and sizes: posting and running one allocates nothing.
public struct GemmTask {
    public var transA: Bool, transB: Bool
    public var m: Int, n: Int, k: Int
    public var alpha: Float
    public var a: UnsafePointer<Float>, lda: Int
    public var b: UnsafePointer<Float>, ldb: Int
    public var beta: Float
    public var c: UnsafeMutablePointer<Float>, ldc: Int
    /// dst[cols] += Σ over rows of src (rows × cols, `ld` apart).
    public var sums: (dst: UnsafeMutablePointer<Float>, src: UnsafePointer<Float>, rows: Int, cols: Int, ld: Int)?
    /// Run as a bf16 product on this kernel (operands converted by the running thread,
    /// `BF16Gemm.sgemm`) instead of sgemm; the column sums stay fp32.
    public var bf16: BF16Kernel? = nil

    public init(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int,
                sums: (dst: UnsafeMutablePointer<Float>, src: UnsafePointer<Float>, rows: Int, cols: Int, ld: Int)? = nil) {
        self.transA = transA; self.transB = transB; self.m = m; self.n = n; self.k = k; self.alpha = alpha
        self.a = a; self.lda = lda; self.b = b; self.ldb = ldb; self.beta = beta; self.c = c; self.ldc = ldc
        self.sums = sums
    }

    /// dW[rows of W lo..<hi] += dyᵀ·x (and db[lo..<hi] += Σ_rows dy) of a layer y = x·Wᵀ + b; the
    /// whole weight when the range is all of `outDim`.
    public static func weightGradient(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, dWeight: UnsafeMutablePointer<Float>,
                                      dBias: UnsafeMutablePointer<Float>?, rows: Int, inDim: Int, outDim: Int,
                                      outputs lo: Int = 0, _ hi: Int? = nil) -> GemmTask {
        let hi = hi ?? outDim
        return GemmTask(transA: true, transB: false, m: hi - lo, n: inDim, k: rows, a: dy + lo, lda: outDim, b: x, ldb: inDim,
                        beta: 1, c: dWeight + lo * inDim, ldc: inDim,
                        sums: dBias.map { (dst: $0 + lo, src: dy + lo, rows: rows, cols: hi - lo, ld: outDim) })
    }

    /// Runs it: on the calling thread inside a parallel region (a lane), else split over the workers.
    public func run() {
        if let kernel = bf16 {
            BF16Gemm.sgemm(kernel: kernel, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                           b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        } else {
            BLAS.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                      beta: beta, c: c, ldc: ldc)
        }
        if let s = sums { Vec.addColumnSums(s.dst, s.src, rows: s.rows, cols: s.cols, ld: s.ld) }
    }
}

/// Items lo..<hi of a job, part `part` of its cut, that another lane may run: `run(job, part, lo,
/// hi)`. A C function pointer (it captures nothing) over the poster's description of the job, which
/// the poster keeps alive until it settles; parts must write disjoint memory (each its own rows, or
/// scratch of its own, chosen by `part`).
public struct ItemsTask {
    public typealias Body = @convention(c) (UnsafeRawPointer, Int, Int, Int) -> Void
    public var run: Body
    public var job: UnsafeRawPointer
    public var part: Int, lo: Int, hi: Int

    public init(run: Body, job: UnsafeRawPointer, part: Int, lo: Int, hi: Int) {
        self.run = run; self.job = job; self.part = part; self.lo = lo; self.hi = hi
    }
}

/// What a lane posts on a `WorkBoard`.
public enum SharedTask {
    case gemm(GemmTask)
    case items(ItemsTask)
    case bf16Rows(BF16RowsTask)

    @inline(__always)
    public func run() {
        switch self {
        case .gemm(let g): g.run()
        case .items(let t): t.run(t.job, t.part, t.lo, t.hi)
        case .bf16Rows(let t): t.run()
        }
    }
}

/// Work the lanes of a step share so that a lane on a faster core is not left waiting for a slower
/// one (the two vCPUs of a VM rarely run at the same speed). A lane posts the products of a block
/// that nothing later in its own chain waits for — the weight gradients — and goes on with the
/// chain (the input gradients); it also posts its big chain products and loops cut in parts
/// (`mark` / `settle(from:)` wait for just those). Before it leaves a block it runs whatever is
/// still open, oldest first, and waits for what another lane took. A lane that has finished its
/// own work takes open tasks from the others, newest first, until every lane that started has
/// finished.
///
/// Results do not depend on who runs what: every posted task writes its own memory, and is the
/// same computation whichever thread runs it (the cuts are fixed by the caller, never by timing),
/// so a run still reproduces bit for bit.
///
/// `@unchecked Sendable` because its raw buffers are shared between threads on purpose, under this
/// protocol: a slot's state is an atomic; a slot's task is written only by its own lane while the
/// slot is empty and published by the release store that opens it; it is read only by the thread
/// whose compare-exchange took the slot (acquiring), and made empty again only by its lane after
/// the taker's release store marked it done. `posted` is read and written by its lane only.
public final class WorkBoard: @unchecked Sendable {
    /// Slot states: empty (being written by its lane), open (posted), taken, done.
    private static let empty = 0, open = 1, taken = 2, done = 3
    public let lanes: Int
    public static let slotsPerLane = 16
    private let tasks: UnsafeMutablePointer<SharedTask>
    private let states: UnsafeMutablePointer<Atomic<Int>>
    /// Slots each lane has posted in its current block (written by that lane only).
    private let posted: UnsafeMutablePointer<Int>
    private let started = Atomic<Int>(0), finished = Atomic<Int>(0)
    /// Products run by a lane other than the one that posted them, since the board was made.
    private let helped = Atomic<Int>(0)
    public var productsHelped: Int { helped.load(ordering: .relaxed) }
    /// Per lane, seconds since the board was made spent running other lanes' products, and spent
    /// waiting in `finish` with nothing to take (written by that lane only; read between regions).
    private let helping: UnsafeMutablePointer<Double>, idle: UnsafeMutablePointer<Double>
    public var helpingSeconds: [Double] { (0..<lanes).map { helping[$0] } }
    public var idleSeconds: [Double] { (0..<lanes).map { idle[$0] } }

    public init(lanes: Int) {
        self.lanes = lanes
        let n = lanes * Self.slotsPerLane
        tasks = .allocate(capacity: n)
        states = .allocate(capacity: n)
        for i in 0..<n { (states + i).initialize(to: Atomic(Self.empty)) }
        posted = .allocate(capacity: lanes)
        posted.initialize(repeating: 0, count: lanes)
        helping = .allocate(capacity: lanes)
        helping.initialize(repeating: 0, count: lanes)
        idle = .allocate(capacity: lanes)
        idle.initialize(repeating: 0, count: lanes)
    }

    deinit {
        tasks.deallocate()  // tasks are plain values (pointers and sizes): nothing to deinitialize
        states.deinitialize(count: lanes * Self.slotsPerLane)
        states.deallocate()
        posted.deallocate()
        helping.deallocate()
        idle.deallocate()
    }

    /// Call before the lanes start (no lane is running).
    public func reset() {
        started.store(0, ordering: .relaxed)
        finished.store(0, ordering: .relaxed)
        for l in 0..<lanes { posted[l] = 0 }
    }

    /// Lane `lane` begins its work.
    public func begin(_ lane: Int) { started.add(1, ordering: .acquiringAndReleasing) }

    /// Posts a product of lane `lane`'s current block (it runs at once when the block's slots are full).
    /// Products posted and not yet settled may run at the same time on different threads: none of
    /// them may write memory another one reads or writes.
    public func post(_ lane: Int, _ task: GemmTask) { post(lane, .gemm(task)) }

    /// Posts a task of lane `lane`'s current block (see `post(_:_:)` for products).
    public func post(_ lane: Int, _ task: SharedTask) {
        let i = posted[lane]
        if i == Self.slotsPerLane { task.run(); return }
        let slot = lane * Self.slotsPerLane + i
        (tasks + slot).initialize(to: task)
        states[slot].store(Self.open, ordering: .releasing)
        posted[lane] = i + 1
    }

    /// How many products lane `lane` has posted and not settled: pass it to `settle(_:from:)` to
    /// settle only what is posted after this point.
    public func mark(_ lane: Int) -> Int { posted[lane] }

    /// Ends lane `lane`'s current block (or the products posted since `mark`): runs its products
    /// nobody took, oldest first, and waits for the ones others took.
    public func settle(_ lane: Int, from first: Int = 0) {
        let n = posted[lane], base = lane * Self.slotsPerLane
        if n <= first { return }
        for i in first..<n { _ = runIfOpen(base + i) }
        for i in first..<n {
            while states[base + i].load(ordering: .acquiring) != Self.done { precis_cpu_relax() }
            states[base + i].store(Self.empty, ordering: .relaxed)
        }
        posted[lane] = first
    }

    /// Takes slot `slot` if it is open, runs its task and marks it done (releasing the task's writes
    /// to whoever waits for it); false if another thread had taken it.
    private func runIfOpen(_ slot: Int) -> Bool {
        guard states[slot].compareExchange(expected: Self.open, desired: Self.taken, ordering: .acquiring).exchanged else {
            return false
        }
        tasks[slot].run()
        states[slot].store(Self.done, ordering: .releasing)
        return true
    }

    /// Lane `lane` has finished its own work: it runs the others' open products until every lane
    /// that started has finished. (A lane that has not started when all the started ones are done is
    /// not waited for: the region may be running its lanes one after another on fewer threads.)
    public func finish(helping lane: Int) {
        finished.add(1, ordering: .acquiringAndReleasing)
        let start = DispatchTime.now().uptimeNanoseconds
        var busy: UInt64 = 0
        defer {
            let total = DispatchTime.now().uptimeNanoseconds - start
            helping[lane] += Double(busy) / 1e9
            idle[lane] += Double(total - min(total, busy)) / 1e9
        }
        while true {
            var ran = false
            for other in 0..<lanes where other != lane {
                // The newest first: the owner settles its block from the oldest.
                let base = other * Self.slotsPerLane
                for i in stride(from: Self.slotsPerLane - 1, through: 0, by: -1)
                where states[base + i].load(ordering: .relaxed) == Self.open {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    guard runIfOpen(base + i) else { continue }
                    busy += DispatchTime.now().uptimeNanoseconds - t0
                    helped.add(1, ordering: .relaxed)
                    ran = true
                }
            }
            if ran { continue }
            if finished.load(ordering: .acquiring) >= started.load(ordering: .acquiring) { return }
            precis_cpu_relax()
        }
    }
}
