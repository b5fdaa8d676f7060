// The model's weights version: what an index compares to know that the codes
// it holds were made by the weights the model has now. Everything here reads
// the version under the model's lock, with the weights it describes.

extension CompresSAEModel {
    /// Counts the training steps ever applied to this model object (0 for a
    /// new or loaded model): equal values mean equal weights. Read under the
    /// model's lock (training writes it under the same lock).
    ///
    /// Complexity: O(1).
    var weightsVersion: Int { lock.withReadLock { storedWeightsVersion } }

    /// Runs `body` with the decoder (`[h,d]` row-major) and the weights
    /// version it belongs to, under the model's read lock: no training step
    /// can change either while `body` runs. `body` must not call back into
    /// methods of this model that take its lock.
    ///
    /// Complexity: O(1) plus `body`.
    func withDecoder<T>(_ body: (UnsafePointer<Float>, _ version: Int) throws -> T) rethrows -> T {
        try lock.withReadLock {
            try decoder.withUnsafeBufferPointer { try body($0.baseAddress!, storedWeightsVersion) }
        }
    }

    /// `out[j, l] = decoder_w[j] . queries[l]` for `columns` queries
    /// (`[columns, d]` row-major) into `out` (`[h, columns]` row-major), under
    /// the model's read lock; returns the weights version the projections
    /// belong to. What the reconstructed-mode search needs of the decoder,
    /// without holding the model's lock while it scores items.
    ///
    /// Complexity: O(h d columns).
    func projectOntoDecoder(_ queries: UnsafePointer<Float>, columns: Int,
                            into out: UnsafeMutablePointer<Float>) -> Int {
        withDecoder { decoder, version in
            GEMM.multiplyTransposed(m: latentDim, n: columns, kk: inputDim, a: decoder, b: queries, beta: 0, c: out)
            return version
        }
    }

    /// Encodes `rows` dense rows at `k` into the given buffers, refitting the
    /// values when `refit`, all under one read lock, and returns the weights
    /// version the codes were made with: an index can then tell whether they
    /// match the items it already holds.
    ///
    /// - Throws: on bad input (as `encode`), or when a buffer cannot be allocated.
    /// - Complexity: as `encode`, plus `refit`'s O(rows (k^2 d + k^3)).
    func encodeReportingVersion(
        _ x: UnsafeBufferPointer<Float>, rows: Int, k: Int, refit: Bool,
        indices: UnsafeMutableBufferPointer<Int32>, values: UnsafeMutableBufferPointer<Float>, threads: Int
    ) throws -> Int {
        try checkEncodeArguments(x, rows: rows, k: k, indices: indices, values: values)
        let scratch = try encoderScratchPool(rows: rows, threads: threads)
        let solvers = refit ? try RefitSolver.pool(k: k, d: inputDim, workers: refitWorkers(rows: rows, threads: threads)) : []
        return lock.withReadLock {
            encodeLocked(x.baseAddress!, rows: rows, k: k, indices: indices.baseAddress!,
                         values: values.baseAddress!, threads: threads, scratch: scratch)
            if refit {
                refitLocked(x, rows: rows, k: k, indices: indices, values: values, threads: threads, solvers: solvers)
            }
            return storedWeightsVersion
        }
    }
}
