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
/// the encoder weights is then shared by 512 rows (with 256 a training step
/// took about 4% longer: benchmarks/train_step_ab.py); its pre-activations
/// (`rows * h` floats, 8 MB at h = 4096) are selected right after.
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
    ///   - threads: worker threads, 0 = the default (`Threads.defaultCount`).
    /// - Complexity: O(rows * d * h) for the GEMM, O(rows * h) for the selection.
    public func encode(
        _ x: UnsafeBufferPointer<Float>, rows: Int, k: Int? = nil,
        indices: UnsafeMutableBufferPointer<Int32>, values: UnsafeMutableBufferPointer<Float>,
        threads: Int = 0
    ) throws {
        let d = inputDim, h = latentDim
        try InputValidation.checkRowCount(rows)
        try InputValidation.checkCount(x.count, rows: rows, cols: d, name: "input")
        let kk = k ?? self.k
        guard kk >= 1 && kk <= h else {
            throw CompresSAEError.invalid("k must be in 1...\(h) (the latent dimension), got \(kk)")
        }
        try InputValidation.checkCount(indices.count, rows: rows, cols: kk, name: "indices buffer")
        try InputValidation.checkCount(values.count, rows: rows, cols: kk, name: "values buffer")
        let xBase = x.baseAddress!
        try InputValidation.checkRows(xBase, rows: rows, dim: d)
        let outIdx = SharedPointer(indices.baseAddress!), outVal = SharedPointer(values.baseAddress!)
        lock.withReadLock {
            forEachEncoderChunk(xBase, rows: rows, threads: threads) { start, count, pre, scratch in
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
    }

    /// Encodes `rows` dense rows given as a flat row-major array; with
    /// `refit`, the values are refitted by least squares (see `refit`).
    public func encode(_ x: [Float], rows: Int, k: Int? = nil, refit: Bool = false, threads: Int = 0) throws -> SparseCodes {
        let kk = k ?? self.k
        guard kk >= 1 && kk <= latentDim else {
            throw CompresSAEError.invalid("k must be in 1...\(latentDim) (the latent dimension), got \(kk)")
        }
        guard rows >= 1, rows.multipliedReportingOverflow(by: kk).overflow == false else {
            throw CompresSAEError.invalid("the number of rows must be >= 1, got \(rows)")
        }
        var indices = [Int32](repeating: 0, count: rows * kk)
        var values = [Float](repeating: 0, count: rows * kk)
        try x.withUnsafeBufferPointer { xb in
            try indices.withUnsafeMutableBufferPointer { ib in
                try values.withUnsafeMutableBufferPointer { vb in
                    if refit {
                        try encodeRefitted(xb, rows: rows, k: kk, indices: ib, values: vb, threads: threads)
                    } else {
                        try encode(xb, rows: rows, k: kk, indices: ib, values: vb, threads: threads)
                    }
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
        _ x: UnsafeBufferPointer<Float>, rows: Int, into out: UnsafeMutableBufferPointer<Float>, threads: Int = 0
    ) throws {
        let d = inputDim, h = latentDim
        try InputValidation.checkRowCount(rows)
        try InputValidation.checkCount(x.count, rows: rows, cols: d, name: "input")
        try InputValidation.checkCount(out.count, rows: rows, cols: h, name: "output buffer")
        try InputValidation.checkRows(x.baseAddress!, rows: rows, dim: d)
        lock.withReadLock {
            forEachEncoderChunk(x.baseAddress!, rows: rows, threads: threads,
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
        into out: UnsafeMutableBufferPointer<Float>, threads: Int = 0
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
    public func decode(_ codes: SparseCodes, threads: Int = 0) throws -> [Float] {
        var out = [Float](repeating: 0, count: codes.rows * inputDim)
        try codes.indices.withUnsafeBufferPointer { ib in
            try codes.values.withUnsafeBufferPointer { vb in
                try out.withUnsafeMutableBufferPointer { ob in
                    try decode(indices: ib, values: vb, rows: codes.rows, k: codes.k, into: ob, threads: threads)
                }
            }
        }
        return out
    }

    // MARK: - Chunked encoder forward

    /// Per-worker scratch of the encoder.
    struct EncoderScratch {
        let normalized: UnsafeMutablePointer<Float>  // chunk rows x d
        let pre: UnsafeMutablePointer<Float>         // chunk rows x h
        let selectionKeys: UnsafeMutablePointer<UInt32>    // TopK.scratchKeys(n: h)
        let selectionIndices: UnsafeMutablePointer<Int32>  // TopK.scratchIndices(n: h)

        init(chunkRows: Int, d: Int, h: Int) {
            normalized = .allocate(capacity: chunkRows * d)
            pre = .allocate(capacity: chunkRows * h)
            selectionKeys = .allocate(capacity: TopK.scratchKeys(n: h))
            selectionIndices = .allocate(capacity: TopK.scratchIndices(n: h))
        }

        var selection: TopK.Scratch { (selectionKeys, selectionIndices) }

        func deallocate() {
            normalized.deallocate()
            pre.deallocate()
            selectionKeys.deallocate()
            selectionIndices.deallocate()
        }
    }

    /// Splits `rows` into chunks, computes each chunk's pre-activations and
    /// hands them to `body(firstRow, rowCount, pre, scratch)`. Chunk `c` goes to
    /// worker `c % workers`: a static split, so results never depend on timing.
    /// The normalised rows are written to `normalizedOut` (all `rows * d` of
    /// them) when given, else to per-chunk scratch. The caller holds a lock.
    func forEachEncoderChunk(
        _ x: UnsafePointer<Float>, rows: Int, threads: Int,
        normalizedOut: UnsafeMutablePointer<Float>? = nil,
        scratchPool: [EncoderScratch]? = nil,
        preactivationsOut: UnsafeMutablePointer<Float>? = nil,
        _ body: @Sendable (Int, Int, UnsafeMutablePointer<Float>, EncoderScratch) -> Void
    ) {
        let d = inputDim, h = latentDim
        let chunkRows = min(encoderChunkRows, rows)
        let chunks = (rows + chunkRows - 1) / chunkRows
        let workers = min(Parallel.threadCount(requested: threads), chunks)
        let src = SharedConstPointer(x)
        let normalizedBase = normalizedOut.map { SharedPointer($0) }
        let pool = UnsafeSendableBox(scratchPool)
        let preBase = preactivationsOut.map { SharedPointer($0) }
        encoderT.withUnsafeBufferPointer { encBuffer in
            encoderBias.withUnsafeBufferPointer { biasBuffer in
                let enc = SharedConstPointer(encBuffer.baseAddress!)
                let bias = SharedConstPointer(biasBuffer.baseAddress!)
                Parallel.run(workers: workers) { w in
                    let pooled = pool.value.flatMap { w < $0.count ? $0[w] : nil }
                    let scratch = pooled ?? EncoderScratch(chunkRows: chunkRows, d: d, h: h)
                    defer { if pooled == nil { scratch.deallocate() } }
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
