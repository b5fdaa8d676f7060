/// A batch of k-sparse codes: `k` latent indices and their signed values per
/// row, ordered by decreasing `|value|` (ties: lower index first), so that the
/// first `k'` entries of a row are its code at `k'`.
public struct SparseCodes: Sendable, Equatable {
    /// Number of rows.
    public let rows: Int
    /// Nonzeros per row.
    public let k: Int
    /// Dimension of the sparse space (`h`).
    public let dim: Int
    /// `rows * k` latent indices, row-major.
    public var indices: [Int32]
    /// `rows * k` values, row-major.
    public var values: [Float]

    public init(rows: Int, k: Int, dim: Int, indices: [Int32], values: [Float]) {
        self.rows = rows
        self.k = k
        self.dim = dim
        self.indices = indices
        self.values = values
    }
}

/// Rows per chunk of the encoder: each chunk is one GEMM, whose packing of
/// the encoder weights is shared by all its rows, so a chunk should be
/// long; its pre-activations (`rows * h` floats, 8 MB at h = 4096) are
/// selected right after, so it should not be much longer
/// (benchmarks/train_step_ab.py compares chunk lengths).
let encoderChunkRows = 512

extension CompresSAEModel {
    /// Encodes dense rows into k-sparse codes.
    ///
    /// Each row is L2-normalised, multiplied by the encoder (one GEMM per chunk
    /// of rows), shifted by the bias, and its `k` entries of largest magnitude
    /// are kept with their signs.
    ///
    /// - Parameters:
    ///   - x: `rows * inputDim` floats, row-major; finite, no all-zero row.
    ///   - rows: number of rows, `>= 1`.
    ///   - k: nonzeros per code (`1...h`); `nil` uses the model's `k`.
    ///   - indices: receives `rows * k` latent indices.
    ///   - values: receives `rows * k` signed values.
    ///   - threads: worker threads, 0 = the default (`Threads.numThreads`).
    /// - Complexity: O(rows * d * h) for the GEMM, O(rows * h) for the selection.
    public func encode(
        _ x: UnsafeBufferPointer<Float>, rows: Int, k: Int? = nil,
        indices: UnsafeMutableBufferPointer<Int32>, values: UnsafeMutableBufferPointer<Float>,
        numThreads threads: Int = 0
    ) throws {
        // k is read once: the buffer checks and the selection use the same one.
        let kk = k ?? self.k
        try checkEncodeArguments(x, rows: rows, k: kk, indices: indices, values: values)
        let scratch = try encoderScratchPool(rows: rows, threads: threads)
        lock.withReadLock {
            encodeLocked(x.baseAddress!, rows: rows, k: kk, indices: indices.baseAddress!, values: values.baseAddress!,
                         threads: threads, scratch: scratch)
        }
    }

    /// Checks the arguments of an encode of `rows` rows at `k`.
    func checkEncodeArguments(
        _ x: UnsafeBufferPointer<Float>, rows: Int, k: Int,
        indices: UnsafeMutableBufferPointer<Int32>, values: UnsafeMutableBufferPointer<Float>
    ) throws {
        let d = inputDim, h = latentDim
        try InputValidation.checkRowCount(rows)
        try InputValidation.checkCount(x.count, rows: rows, cols: d, name: "input")
        guard k >= 1 && k <= h else {
            throw CompresSAEError.invalid("k must be in 1...\(h) (the latent dimension), got \(k)")
        }
        try InputValidation.checkCount(indices.count, rows: rows, cols: k, name: "indices buffer")
        try InputValidation.checkCount(values.count, rows: rows, cols: k, name: "values buffer")
        try InputValidation.checkRows(x.baseAddress!, rows: rows, dim: d)
    }

    /// Encodes checked rows with `scratch` (from `encoderScratchPool`).
    /// Caller holds a lock.
    func encodeLocked(
        _ x: UnsafePointer<Float>, rows: Int, k kk: Int, indices: UnsafeMutablePointer<Int32>,
        values: UnsafeMutablePointer<Float>, threads: Int, scratch: [EncoderScratch]
    ) {
        let h = latentDim
        let outIdx = SharedPointer(indices), outVal = SharedPointer(values)
        forEachEncoderChunk(x, rows: rows, threads: threads, scratchPool: scratch) { start, count, pre, scratch in
            var boundHint: UInt32 = 0
            for r in 0..<count {
                let row = pre + r * h
                let idx = outIdx.base + (start + r) * kk, val = outVal.base + (start + r) * kk
                TopK.select(row: row, n: h, m: kk, outIndices: idx, scratch: scratch.selection,
                            boundHint: &boundHint)
                for t in 0..<kk { val[t] = row[Int(idx[t])] }
            }
        }
    }

    /// Encodes `rows` dense rows given as a flat row-major array; with
    /// `refit`, the values are refitted by least squares (see `refit`).
    public func encode(_ x: [Float], rows: Int, k: Int? = nil, refit: Bool = false, numThreads threads: Int = 0) throws -> SparseCodes {
        let kk = k ?? self.k
        guard kk >= 1 && kk <= latentDim else {
            throw CompresSAEError.invalid("k must be in 1...\(latentDim) (the latent dimension), got \(kk)")
        }
        try InputValidation.checkRowCount(rows)
        let count = try Size.product(rows, kk, what: "codes of \(rows) rows")
        var indices = try [Int32].fallible(repeating: 0, count: count, "the codes' indices")
        var values = try [Float].fallible(repeating: 0, count: count, "the codes' values")
        try x.withUnsafeBufferPointer { xb in
            try indices.withUnsafeMutableBufferPointer { ib in
                try values.withUnsafeMutableBufferPointer { vb in
                    _ = try encodeReportingVersion(xb, rows: rows, k: kk, refit: refit, indices: ib, values: vb,
                                                   threads: threads)
                }
            }
        }
        return SparseCodes(rows: rows, k: kk, dim: latentDim, indices: indices, values: values)
    }

    /// Writes the pre-activations `normalize(x) @ encoder_w + encoder_b`.
    ///
    /// - Parameters:
    ///   - x: `rows * d` floats.
    ///   - out: receives `rows * h` floats.
    public func preactivations(
        _ x: UnsafeBufferPointer<Float>, rows: Int, into out: UnsafeMutableBufferPointer<Float>, numThreads threads: Int = 0
    ) throws {
        let d = inputDim, h = latentDim
        try InputValidation.checkRowCount(rows)
        try InputValidation.checkCount(x.count, rows: rows, cols: d, name: "input")
        try InputValidation.checkCount(out.count, rows: rows, cols: h, name: "output buffer")
        try InputValidation.checkRows(x.baseAddress!, rows: rows, dim: d)
        let scratch = try encoderScratchPool(rows: rows, threads: threads)
        lock.withReadLock {
            forEachEncoderChunk(x.baseAddress!, rows: rows, threads: threads, scratchPool: scratch,
                                preactivationsOut: out.baseAddress!) { _, _, _, _ in }
        }
    }

    /// Decodes k-sparse codes: each output row is the sum of `k` decoder rows
    /// weighted by the code's values.
    ///
    /// - Parameters:
    ///   - indices: `rows * k` latent indices in `0..<h`.
    ///   - values: `rows * k` finite values.
    ///   - out: receives `rows * d` floats.
    /// - Complexity: O(rows * k * d).
    public func decode(
        indices: UnsafeBufferPointer<Int32>, values: UnsafeBufferPointer<Float>, rows: Int, k: Int,
        into out: UnsafeMutableBufferPointer<Float>, numThreads threads: Int = 0
    ) throws {
        let d = inputDim, h = latentDim
        try InputValidation.checkRowCount(rows)
        guard k >= 1 else { throw CompresSAEError.invalid("k must be >= 1, got \(k)") }
        try InputValidation.checkCount(indices.count, rows: rows, cols: k, name: "indices")
        try InputValidation.checkCount(values.count, rows: rows, cols: k, name: "values")
        try InputValidation.checkCount(out.count, rows: rows, cols: d, name: "output buffer")
        for (position, index) in indices.enumerated() where index < 0 || Int(index) >= h {
            throw CompresSAEError.invalid(
                "index \(index) at row \(position / k), position \(position % k) is outside 0..<\(h)")
        }
        for (position, value) in values.enumerated() where !value.isFinite {
            throw CompresSAEError.invalid(
                "value at row \(position / k), position \(position % k) is \(value): values must be finite")
        }
        let idx = SharedConstPointer(indices.baseAddress!), val = SharedConstPointer(values.baseAddress!)
        let dst = SharedPointer(out.baseAddress!)
        lock.withReadLock {
            decoder.withUnsafeBufferPointer { decBuffer in
                let dec = SharedConstPointer(decBuffer.baseAddress!)
                let workers = min(Parallel.threadCount(requested: threads), max(1, rows / 64))
                Parallel.run(workers: workers) { w in
                    var i = w
                    while i < rows {
                        let o = dst.base + i * d
                        o.initialize(repeating: 0, count: d)
                        gatherAxpy(into: o, d, rowsOf: dec.base, indices: idx.base + i * k, weights: val.base + i * k, count: k)
                        i += workers
                    }
                }
            }
        }
    }

    /// Decodes `codes` into a flat `[rows, d]` array.
    public func decode(_ codes: SparseCodes, numThreads threads: Int = 0) throws -> [Float] {
        var out = try [Float].fallible(
            repeating: 0, count: try Size.product(codes.rows, inputDim, what: "decoded rows"), "the decoded rows")
        try codes.indices.withUnsafeBufferPointer { ib in
            try codes.values.withUnsafeBufferPointer { vb in
                try out.withUnsafeMutableBufferPointer { ob in
                    try decode(indices: ib, values: vb, rows: codes.rows, k: codes.k, into: ob, numThreads: threads)
                }
            }
        }
        return out
    }

    // MARK: - Chunked encoder forward

    /// Per-worker scratch of the encoder, owning its buffers.
    final class EncoderScratch: @unchecked Sendable {
        private let normalizedBuffer: FallibleBuffer<Float>  // chunk rows x d
        private let preBuffer: FallibleBuffer<Float>         // chunk rows x h
        private let keys: FallibleBuffer<UInt32>             // TopK.scratchKeys(n: h)
        private let indices: FallibleBuffer<Int32>           // TopK.scratchIndices(n: h)
        private let reconstructionBuffer: FallibleBuffer<Float>  // 2 x d

        init(chunkRows: Int, d: Int, h: Int) throws(CompresSAEError) {
            reconstructionBuffer = try FallibleBuffer(count: try Size.product(2, d, what: "encoder scratch"),
                                                      "a row's reconstructions")
            normalizedBuffer = try FallibleBuffer(count: try Size.product(chunkRows, d, what: "encoder scratch"),
                                                  "the encoder's normalised rows")
            preBuffer = try FallibleBuffer(count: try Size.product(chunkRows, h, what: "encoder scratch"),
                                           "the encoder's pre-activations")
            keys = try FallibleBuffer(count: TopK.scratchKeys(n: h), "the selection's scratch")
            indices = try FallibleBuffer(count: TopK.scratchIndices(n: h), "the selection's scratch")
        }

        var normalized: UnsafeMutablePointer<Float> { normalizedBuffer.base }
        var pre: UnsafeMutablePointer<Float> { preBuffer.base }
        var selection: TopK.Scratch { (keys.base, indices.base) }
        /// Two rows of `d` floats: a training row's k and 4k reconstructions.
        var reconstructions: UnsafeMutablePointer<Float> { reconstructionBuffer.base }
    }

    /// One `EncoderScratch` per worker that an encode of `rows` rows uses.
    ///
    /// - Throws: `outOfMemory` when the scratch cannot be allocated.
    func encoderScratchPool(rows: Int, threads: Int) throws(CompresSAEError) -> [EncoderScratch] {
        let chunkRows = min(encoderChunkRows, rows)
        let chunks = (rows + chunkRows - 1) / chunkRows
        let workers = max(1, min(Parallel.threadCount(requested: threads), chunks))
        var pool: [EncoderScratch] = []
        for _ in 0..<workers { pool.append(try EncoderScratch(chunkRows: chunkRows, d: inputDim, h: latentDim)) }
        return pool
    }

    /// Splits `rows` into chunks, computes each chunk's pre-activations and
    /// hands them to `body(firstRow, rowCount, pre, scratch)`. Chunk `c` goes to
    /// worker `c % workers`: a static split, so results never depend on timing.
    /// The normalised rows are written to `normalizedOut` (all `rows * d` of
    /// them) when given, else to per-chunk scratch. `scratchPool` holds one
    /// scratch per worker (at most its count of workers run; chunks of at
    /// least `min(encoderChunkRows, rows)` rows). The caller holds a lock.
    func forEachEncoderChunk(
        _ x: UnsafePointer<Float>, rows: Int, threads: Int,
        normalizedOut: UnsafeMutablePointer<Float>? = nil,
        scratchPool: [EncoderScratch],
        preactivationsOut: UnsafeMutablePointer<Float>? = nil,
        _ body: @Sendable (Int, Int, UnsafeMutablePointer<Float>, EncoderScratch) -> Void
    ) {
        let d = inputDim, h = latentDim
        let chunkRows = min(encoderChunkRows, rows)
        let chunks = (rows + chunkRows - 1) / chunkRows
        let workers = max(1, min(Parallel.threadCount(requested: threads), chunks, scratchPool.count))
        let src = SharedConstPointer(x)
        let normalizedBase = normalizedOut.map { SharedPointer($0) }
        let pool = UnsafeSendableBox(scratchPool)
        let preBase = preactivationsOut.map { SharedPointer($0) }
        encoderT.withUnsafeBufferPointer { encBuffer in
            encoderBias.withUnsafeBufferPointer { biasBuffer in
                let enc = SharedConstPointer(encBuffer.baseAddress!)
                let bias = SharedConstPointer(biasBuffer.baseAddress!)
                Parallel.run(workers: workers) { w in
                    let scratch = pool.value[w]
                    var c = w
                    while c < chunks {
                        let start = c * chunkRows
                        let count = min(chunkRows, rows - start)
                        let normalized = normalizedBase.map { $0.base + start * d } ?? scratch.normalized
                        normalizeRows(src.base + start * d, rows: count, dim: d, into: normalized)
                        let pre = preBase.map { $0.base + start * h } ?? scratch.pre
                        computePreactivations(
                            normalized: normalized, rows: count, d: d, h: h,
                            encoderT: enc.base, bias: bias.base, into: pre)
                        body(start, count, pre, scratch)
                        c += workers
                    }
                }
            }
        }
    }
}

/// `out[i] = x[i] / ||x[i]||` for each row (rows are known to be non-zero).
func normalizeRows(_ x: UnsafePointer<Float>, rows: Int, dim: Int, into out: UnsafeMutablePointer<Float>) {
    for i in 0..<rows {
        let row = x + i * dim
        let norm = robustNorm(row, dim)
        let o = out + i * dim
        for j in 0..<dim { o[j] = row[j] / norm }
    }
}

/// `pre[r,:] = normalized[r,:] @ encoder_w + bias`, with the encoder stored as `[h,d]`.
func computePreactivations(
    normalized: UnsafePointer<Float>, rows: Int, d: Int, h: Int,
    encoderT: UnsafePointer<Float>, bias: UnsafePointer<Float>, into pre: UnsafeMutablePointer<Float>
) {
    // The bias is written first and the product added to it (beta = 1):
    // BLAS then skips its pass that zeroes the output.
    for r in 0..<rows { (pre + r * h).update(from: bias, count: h) }
    GEMM.multiplyTransposed(m: rows, n: h, kk: d, a: normalized, b: encoderT, beta: 1, c: pre)
}
