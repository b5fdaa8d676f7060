/// Relative ridge added to the Gram matrix of a code's decoder rows: keeps the
/// solve well posed when two selected rows are nearly parallel (or `k > d`),
/// and is far below the smallest eigenvalues seen on trained models (~0.2).
let refitRidge: Float = 1e-3

extension CompresSAEModel {
    /// Replaces each code's values by the least-squares values on its support:
    /// for row `x` with latents `S`, `z = argmin |x - sum_t z_t decoder_w[S_t]|^2`
    /// (plus a ridge of `1e-3 * mean(diag(G))`), so that `decode` reproduces
    /// `x` as closely as those `k` decoder rows can. The encoder picks the
    /// support well but its values are a one-pass estimate; refitting them
    /// closes that gap (the "amortisation gap" of sparse autoencoders), which
    /// raises reconstructed-mode recall. Sparse-mode cosines between refitted
    /// codes rank worse than between encoder codes, so sparse indexes keep the
    /// encoder's values. Each row is reordered by decreasing `|value|` (ties:
    /// lower index first), as `encode` orders them.
    ///
    /// - Parameters:
    ///   - x: `rows * d` floats; finite, no all-zero row (the rows that were encoded).
    ///   - rows: number of rows, `>= 1`.
    ///   - k: nonzeros per code, `1...h`.
    ///   - indices: `rows * k` latent indices in `0..<h`, none twice in a row;
    ///     reordered with the values.
    ///   - values: `rows * k` values, replaced by the refitted ones (a row
    ///     whose factorisation fails, which the ridge makes all but
    ///     impossible, keeps its values).
    ///   - threads: worker threads, 0 = the default (`Threads.numThreads`).
    /// - Complexity: per row O(k^2 d) for the Gram matrix (one small GEMM) and
    ///   O(k^3) for its Cholesky factorisation.
    public func refit(
        _ x: UnsafeBufferPointer<Float>, rows: Int, k: Int,
        indices: UnsafeMutableBufferPointer<Int32>, values: UnsafeMutableBufferPointer<Float>,
        numThreads threads: Int = 0
    ) throws {
        let d = inputDim, h = latentDim
        try InputValidation.checkRowCount(rows)
        guard k >= 1 && k <= h else { throw CompresSAEError.invalid("k must be in 1...\(h), got \(k)") }
        try InputValidation.checkCount(x.count, rows: rows, cols: d, name: "input")
        try InputValidation.checkCount(indices.count, rows: rows, cols: k, name: "indices")
        try InputValidation.checkCount(values.count, rows: rows, cols: k, name: "values buffer")
        try InputValidation.checkRows(x.baseAddress!, rows: rows, dim: d)
        try InputValidation.checkSupports(indices.baseAddress!, rows: rows, k: k, latentDim: h)
        let solvers = try RefitSolver.pool(k: k, d: d, workers: refitWorkers(rows: rows, threads: threads))
        lock.withReadLock {
            refitLocked(x, rows: rows, k: k, indices: indices, values: values, threads: threads, solvers: solvers)
        }
    }

    /// Workers of a refit of `rows` rows.
    func refitWorkers(rows: Int, threads: Int) -> Int {
        min(Parallel.threadCount(requested: threads), max(1, rows / 64))
    }

    /// `refit` on arguments already checked (e.g. codes `encode` just made
    /// from `x`), with one solver per worker (`RefitSolver.pool`). Caller
    /// holds a lock.
    func refitLocked(
        _ x: UnsafeBufferPointer<Float>, rows: Int, k: Int,
        indices: UnsafeMutableBufferPointer<Int32>, values: UnsafeMutableBufferPointer<Float>,
        threads: Int, solvers: [RefitSolver]
    ) {
        let d = inputDim
        let src = SharedConstPointer(x.baseAddress!)
        let idx = SharedPointer(indices.baseAddress!), val = SharedPointer(values.baseAddress!)
        let pool = UnsafeSendableBox(solvers)
        decoder.withUnsafeBufferPointer { decBuffer in
            let dec = SharedConstPointer(decBuffer.baseAddress!)
            let workers = max(1, min(refitWorkers(rows: rows, threads: threads), solvers.count))
            Parallel.run(workers: workers) { w in
                let solver = pool.value[w]
                var i = w
                while i < rows {
                    solver.solve(x: src.base + i * d, indices: idx.base + i * k, values: val.base + i * k,
                                 decoder: dec.base)
                    i += workers
                }
            }
        }
    }

    /// Encodes dense rows and refits the codes' values (`encode`, then
    /// `refit`), under one lock: the refit uses the decoder of the weights
    /// that chose the codes, and `k` (the model's when `nil`) is read once.
    public func encodeRefitted(
        _ x: UnsafeBufferPointer<Float>, rows: Int, k: Int? = nil,
        indices: UnsafeMutableBufferPointer<Int32>, values: UnsafeMutableBufferPointer<Float>,
        numThreads threads: Int = 0
    ) throws {
        _ = try encodeReportingVersion(x, rows: rows, k: k ?? self.k, refit: true, indices: indices, values: values,
                                       threads: threads)
    }
}

/// One worker's buffers for refitting codes of `k` nonzeros in `d` dimensions.
final class RefitSolver: @unchecked Sendable {
    let k: Int, d: Int
    private let floats: FallibleBuffer<Float>
    private let ints: FallibleBuffer<Int32>
    let unit: UnsafeMutablePointer<Float>      // d: the row, normalised
    let selected: UnsafeMutablePointer<Float>  // k x d: the code's decoder rows
    let gram: UnsafeMutablePointer<Float>      // k x k, then its Cholesky factor
    let rhs: UnsafeMutablePointer<Float>       // k
    let order: UnsafeMutablePointer<Int32>     // k
    let sortedValues: UnsafeMutablePointer<Float>  // k
    let sortedIndices: UnsafeMutablePointer<Int32>  // k

    init(k: Int, d: Int) throws(CompresSAEError) {
        self.k = k
        self.d = d
        let kd = try Size.product(k, d, what: "refit scratch"), kk = try Size.product(k, k, what: "refit scratch")
        floats = try FallibleBuffer(count: try Size.sum(try Size.sum(d, kd, what: "refit scratch"),
                                                        try Size.sum(kk, 2 * k, what: "refit scratch"),
                                                        what: "refit scratch"), "the refit's scratch")
        ints = try FallibleBuffer(count: 2 * k, "the refit's scratch")
        unit = floats.base
        selected = unit + d
        gram = selected + kd
        rhs = gram + kk
        sortedValues = rhs + k
        order = ints.base
        sortedIndices = order + k
    }

    /// One solver per worker.
    static func pool(k: Int, d: Int, workers: Int) throws(CompresSAEError) -> [RefitSolver] {
        var solvers: [RefitSolver] = []
        for _ in 0..<max(1, workers) { solvers.append(try RefitSolver(k: k, d: d)) }
        return solvers
    }

    /// Solves one row in place. The row is normalised first (so rows of
    /// extreme scale do not overflow the products) and the solution scaled
    /// back by its norm. Should the factorisation fail (a pivot that is not
    /// positive, or products that overflow, e.g. decoder rows of huge norm)
    /// or the solution not be finite, the row keeps the values it came with.
    func solve(x: UnsafePointer<Float>, indices: UnsafeMutablePointer<Int32>,
                        values: UnsafeMutablePointer<Float>, decoder: UnsafePointer<Float>) {
        let norm = robustNorm(x, d)
        for c in 0..<d { unit[c] = x[c] / norm }
        for t in 0..<k { (selected + t * d).update(from: decoder + Int(indices[t]) * d, count: d) }
        GEMM.multiplyTransposed(m: k, n: k, kk: d, a: selected, b: selected, beta: 0, c: gram)
        for t in 0..<k { rhs[t] = dot(selected + t * d, unit, d) }
        var trace: Float = 0
        for t in 0..<k { trace += gram[t * k + t] }
        let ridge = max(refitRidge * trace / Float(k), Float.leastNormalMagnitude)
        for t in 0..<k { gram[t * k + t] += ridge }
        guard choleskyInPlace() else { return }
        // Forward then backward substitution: L y = rhs, L^T z = y.
        for i in 0..<k {
            let row = gram + i * k
            rhs[i] = (rhs[i] - dot(row, rhs, i)) / row[i]
        }
        for i in stride(from: k - 1, through: 0, by: -1) {
            var s = rhs[i]
            for j in (i + 1)..<max(i + 1, k) { s -= gram[j * k + i] * rhs[j] }
            rhs[i] = s / gram[i * k + i]
        }
        for t in 0..<k where !(rhs[t] * norm).isFinite { return }
        // Reorder by decreasing |value|, ties by lower index, as encode does.
        for t in 0..<k { order[t] = Int32(t) }
        var byMagnitude = UnsafeMutableBufferPointer(start: order, count: k)
        byMagnitude.sort { a, b in
            let va = abs(rhs[Int(a)]), vb = abs(rhs[Int(b)])
            return va != vb ? va > vb : indices[Int(a)] < indices[Int(b)]
        }
        for t in 0..<k {
            sortedValues[t] = rhs[Int(order[t])] * norm
            sortedIndices[t] = indices[Int(order[t])]
        }
        indices.update(from: sortedIndices, count: k)
        values.update(from: sortedValues, count: k)
    }

    /// Lower Cholesky factor of the (symmetric) Gram matrix, row by row, in
    /// its lower triangle. Returns false on a pivot that is not positive.
    private func choleskyInPlace() -> Bool {
        for i in 0..<k {
            let rowI = gram + i * k
            for j in 0..<i {
                let rowJ = gram + j * k
                rowI[j] = (rowI[j] - dot(rowI, rowJ, j)) / rowJ[j]
            }
            let pivot = rowI[i] - dot(rowI, rowI, i)
            guard pivot > 0 && pivot.isFinite else { return false }
            rowI[i] = pivot.squareRoot()
        }
        return true
    }
}
