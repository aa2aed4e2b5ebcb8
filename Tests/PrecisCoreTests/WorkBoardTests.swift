import Foundation
import Testing
import PrecisCore

/// The board on which a step's lanes share weight-gradient products (`WorkBoard`), driven by two
/// real threads.
@Suite struct WorkBoardTests {
    /// Products dW += dyᵀ·x (with bias sums) posted in blocks by a slow lane are taken by a lane that
    /// has finished: each runs exactly once (they accumulate, so a second run would show), the
    /// owner's `settle` returns only when the ones taken are done, and the results are bit for bit
    /// those of running every product on one thread. Every product writes its own weight, as the
    /// products a block posts do (two products in flight must not write the same memory).
    @Test func aFinishedLaneTakesOpenProductsAndTheResultIsTheSerialOne() {
        let rows = 48, inDim = 40, outDim = 72, blocks = 3, perBlock = 5
        var rng = SeededRNG(seed: 3)
        func random(_ n: Int) -> [Float] { (0..<n).map { _ in Float(rng.next() % 2001) / 1000 - 1 } }
        let dy = (0..<blocks * perBlock).map { _ in FloatBuffer(random(rows * outDim)) }
        let x = FloatBuffer(random(rows * inDim))
        // Each product has its own weight and bias (as a block's products do), holding a value to add to.
        let start = random(outDim * inDim), startB = random(outDim)
        let serialW = dy.map { _ in FloatBuffer(start) }, serialB = dy.map { _ in FloatBuffer(startB) }
        let sharedW = dy.map { _ in FloatBuffer(start) }, sharedB = dy.map { _ in FloatBuffer(startB) }
        func task(_ j: Int, _ w: [FloatBuffer], _ b: [FloatBuffer], tile: Int) -> GemmTask {
            // Tiles of W's rows, as a block posts them.
            let lo = tile * outDim / 2, hi = (tile + 1) * outDim / 2
            return GemmTask.weightGradient(dy: dy[j].pointer, x: x.pointer, dWeight: w[j].pointer, dBias: b[j].pointer,
                                           rows: rows, inDim: inDim, outDim: outDim, outputs: lo, hi)
        }
        for j in 0..<dy.count { for tile in 0..<2 { task(j, serialW, serialB, tile: tile).run() } }
        // The slow lane's products, made here (the buffers outlive the threads).
        nonisolated(unsafe) let tasks = (0..<dy.count).map { j in (0..<2).map { task(j, sharedW, sharedB, tile: $0) } }

        let board = WorkBoard(lanes: 2)
        board.reset()
        let posted = DispatchSemaphore(value: 0), done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var settledBeforeDone = 0
        let slow = Thread {
            board.begin(1)
            posted.signal()
            for block in 0..<blocks {
                for j in block * perBlock ..< (block + 1) * perBlock {
                    for t in tasks[j] { board.post(1, t) }
                }
                // "The input gradients": until the other lane has taken one of this block's products
                // (at most 5 s, so a machine too busy to schedule it fails the check below, not hangs).
                let before = board.productsHelped
                for _ in 0..<5000 where board.productsHelped == before { usleep(1000) }
                board.settle(1)
                settledBeforeDone += 1
            }
            board.finish(helping: 1)
            done.signal()
        }
        let fast = Thread {
            board.begin(0)
            posted.wait()  // both lanes have begun
            board.finish(helping: 0)
            done.signal()
        }
        slow.start(); fast.start()
        done.wait(); done.wait()
        #expect(settledBeforeDone == blocks)
        #expect(board.productsHelped >= blocks)
        #expect(board.productsHelped <= blocks * perBlock * 2)
        for j in 0..<dy.count {
            #expect(sharedW[j].array == serialW[j].array, "product \(j)")
            #expect(sharedB[j].array == serialB[j].array, "product \(j)")
        }
    }

    /// A lane alone (the other never begins, as when a region runs its lanes one after another)
    /// runs its own products in `settle` and `finish` does not wait for the lane that never began.
    @Test func aLaneAloneRunsItsOwnProductsAndDoesNotWaitForOthers() {
        let a: [Float] = [1, 2, 3, 4], b: [Float] = [5, 6, 7, 8]
        let c = FloatBuffer(count: 4)
        let board = WorkBoard(lanes: 2)
        board.reset()
        board.begin(0)
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                // C[2×2] = A[2×2]·B[2×2]
                board.post(0, GemmTask(transA: false, transB: false, m: 2, n: 2, k: 2, a: ap.baseAddress!, lda: 2,
                                       b: bp.baseAddress!, ldb: 2, beta: 0, c: c.pointer, ldc: 2))
                board.settle(0)
            }
        }
        board.finish(helping: 0)
        #expect(c.array == [19, 22, 43, 50])
        #expect(board.productsHelped == 0)
    }
}
