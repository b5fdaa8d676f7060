import CCompresSAE

/// Queries per block of the reconstructed-mode kernel: eight 8-lane accumulators.
let reconstructedQueryBlock = 64

extension SparseIndex {
    /// Searches with dense queries `[rows, d]`: encoded with the model in
    /// sparse mode; used as they are in reconstructed mode (asymmetric search).
    ///
    /// In sparse mode a query's code may hold more nonzeros than the items'
    /// (`queryK`): items stay at `k` (their bytes), while the query keeps more
    /// of its direction. The default, `4k`, is the code the training objective
    /// also reconstructs from (its top-4k term); on the shared MiniLM data at
    /// k = 32 it lifts Recall@100 from 0.615 to 0.663 for about twice the
    /// search time (benchmarks/results). `queryK = k` is docs/maths.md's symmetric mode.
    ///
    /// - Parameters:
    ///   - queries: `rows * d` floats; finite, no all-zero row.
    ///   - n: results per query, `>= 1`.
    ///   - queryK: nonzeros of the query codes in sparse mode, `1...h`;
    ///     `nil` for `min(h, 4k)`. Ignored in reconstructed mode.
    ///   - scores: receives `rows * n` cosines (rows of `n`), best first;
    ///     `-inf` in the columns past the result count.
    ///   - ids: receives `rows * n` item ids (insertion order); `-1` in the
    ///     columns past the result count.
    /// - Returns: the results per query, `min(n, items searched)`: 0 for an
    ///   empty index, which is an empty result rather than an error.
    @discardableResult
    public func search(
        dense queries: UnsafeBufferPointer<Float>, rows: Int, n: Int, queryK: Int? = nil,
        scores: UnsafeMutableBufferPointer<Float>, ids: UnsafeMutableBufferPointer<Int64>, threads: Int = 0
    ) throws -> Int {
        let d = model.inputDim, h = model.latentDim
        if let queryK, queryK < 1 || queryK > h {
            throw CompresSAEError.invalid("query_k must be in 1...\(h) (the latent dimension), got \(queryK)")
        }
        try InputValidation.checkRowCount(rows)
        try InputValidation.checkCount(queries.count, rows: rows, cols: d, name: "queries")
        try checkOutputs(rows: rows, n: n, scores: scores, ids: ids)
        try InputValidation.checkRows(queries.baseAddress!, rows: rows, dim: d, what: "query")
        switch mode {
        case .sparse:
            guard let itemK = k else { return Self.pad(scores, ids) }
            let kk = queryK ?? min(h, 4 * itemK)
            let count = try Size.product(rows, kk, what: "query codes")
            let indices = try FallibleBuffer<Int32>(count: count, "the query codes' indices")
            let values = try FallibleBuffer<Float>(count: count, "the query codes' values")
            // The queries' weights version needs no check of its own: versions
            // only rise, so codes made before `checkSearchable` passes belong
            // to the version the index's items were made with.
            try model.encode(queries, rows: rows, k: kk, indices: indices.buffer, values: values.buffer, threads: threads)
            return try withMergedPostings(ifEmpty: { Self.pad(scores, ids) }) {
                try searchSparse(indices: indices.base, values: values.base, rows: rows, k: kk, n: n,
                                 scores: scores.baseAddress!, ids: ids.baseAddress!, threads: threads)
            }
        case .reconstructed:
            let unit = try FallibleBuffer<Float>(count: try Size.product(rows, d, what: "queries"), "the normalised queries")
            normalizeRows(queries.baseAddress!, rows: rows, dim: d, into: unit.base)
            return try lock.withReadLock {
                guard try checkSearchable() else { return Self.pad(scores, ids) }
                return try searchReconstructed(unitQueries: unit, rows: rows, n: n,
                                               scores: scores.baseAddress!, ids: ids.baseAddress!, threads: threads)
            }
        }
    }

    /// Searches with sparse queries (`rows` codes of `k` nonzeros; `k` may
    /// differ from the index's). In reconstructed mode the queries are decoded
    /// first. Outputs and result count as the dense form.
    @discardableResult
    public func search(
        indices: UnsafeBufferPointer<Int32>, values: UnsafeBufferPointer<Float>, rows: Int, k: Int, n: Int,
        scores: UnsafeMutableBufferPointer<Float>, ids: UnsafeMutableBufferPointer<Int64>, threads: Int = 0
    ) throws -> Int {
        let d = model.inputDim, h = model.latentDim
        try InputValidation.checkRowCount(rows)
        guard k >= 1 && k <= h else { throw CompresSAEError.invalid("k must be in 1...\(h), got \(k)") }
        try InputValidation.checkCount(indices.count, rows: rows, cols: k, name: "query indices")
        try InputValidation.checkCount(values.count, rows: rows, cols: k, name: "query values")
        try checkOutputs(rows: rows, n: n, scores: scores, ids: ids)
        try Self.validateCodes(indices: indices.baseAddress!, values: values.baseAddress!, rows: rows, k: k,
                               latentDim: h, what: "query")
        switch mode {
        case .sparse:
            return try withMergedPostings(ifEmpty: { Self.pad(scores, ids) }) {
                try searchSparse(indices: indices.baseAddress!, values: values.baseAddress!, rows: rows, k: k, n: n,
                                 scores: scores.baseAddress!, ids: ids.baseAddress!, threads: threads)
            }
        case .reconstructed:
            let unit = try FallibleBuffer<Float>(count: try Size.product(rows, d, what: "queries"), "the decoded queries")
            try model.decode(indices: indices, values: values, rows: rows, k: k, into: unit.buffer, threads: threads)
            // A query decoding to zero has no direction: its row stays zero and scores 0 everywhere.
            for i in 0..<rows {
                let row = unit.base + i * d
                let norm = robustNorm(row, d)
                if norm > 0 { for c in 0..<d { row[c] /= norm } }
            }
            return try lock.withReadLock {
                guard try checkSearchable() else { return Self.pad(scores, ids) }
                return try searchReconstructed(unitQueries: unit, rows: rows, n: n,
                                               scores: scores.baseAddress!, ids: ids.baseAddress!, threads: threads)
            }
        }
    }

    // MARK: - Checks

    func checkOutputs(rows: Int, n: Int, scores: UnsafeMutableBufferPointer<Float>,
                      ids: UnsafeMutableBufferPointer<Int64>) throws {
        guard n >= 1 else { throw CompresSAEError.invalid("n must be >= 1, got \(n)") }
        try InputValidation.checkCount(scores.count, rows: rows, cols: n, name: "scores buffer")
        try InputValidation.checkCount(ids.count, rows: rows, cols: n, name: "ids buffer")
    }

    /// Whether the index holds items to search (false: the result is empty);
    /// throws when they are stale. Caller holds the read lock.
    func checkSearchable() throws -> Bool {
        guard state.count > 0 else { return false }
        try checkModelVersion()
        return true
    }

    /// The result of a search that finds nothing: every slot padding (score
    /// `-inf`, id -1), 0 results per query.
    static func pad(_ scores: UnsafeMutableBufferPointer<Float>, _ ids: UnsafeMutableBufferPointer<Int64>) -> Int {
        for i in scores.indices { scores[i] = -.infinity }
        for i in ids.indices { ids[i] = -1 }
        return 0
    }

    /// Runs `body` under the read lock on posting lists that hold every item
    /// added before this call began: items still pending are merged first
    /// (under the write lock), and should adds from other threads land between
    /// that merge and the read lock, the merge is done again. One search thus
    /// reads one state, whatever adds run meanwhile.
    ///
    /// After a few rounds lost to a stream of adds, `body` runs on the lists
    /// as they are (every item added before the call began is in them, the
    /// later ones are not), so that a search cannot starve.
    /// An index without items gives `ifEmpty()` (an empty result, not an error).
    func withMergedPostings<R>(ifEmpty: () -> R, _ body: () throws -> R) throws -> R {
        var round = 0
        while true {
            let pending = lock.withReadLock { state.pendingCount }
            if pending > 0 { try lock.withWriteLock { try mergePending() } }
            round += 1
            let result: R? = try lock.withReadLock {
                guard try checkSearchable() else { return ifEmpty() }
                let listed = state.count - state.pendingCount
                guard state.pendingCount == 0 || (round >= 4 && listed > 0) else { return nil }
                return try body()
            }
            if let result { return result }
        }
    }

    // MARK: - Sparse mode

    /// Scores through the posting lists of the query's latents, one tile of
    /// item ids at a time: a tile's accumulators (8192 floats, 32 KB) stay in cache
    /// while each list adds its part of the tile (found in `tileOffsets`),
    /// then the tile is scanned against the running top-n threshold. Every
    /// item gets a score (0 where no list reaches it) and items arrive in id
    /// order, so ties and zero scores rank exactly as brute force ranks them.
    /// Queries are spread over workers; caller holds the read lock.
    ///
    /// - Complexity: per query O(sum of its posting-list lengths + count).
    func searchSparse(indices: UnsafePointer<Int32>, values: UnsafePointer<Float>, rows: Int, k: Int, n: Int,
                      scores: UnsafeMutablePointer<Float>, ids: UnsafeMutablePointer<Int64>, threads: Int) throws -> Int {
        // The items in the posting lists (`withMergedPostings`); items still
        // pending, added by other threads after this search began, are not
        // seen (the lists and tile offsets know nothing of them).
        let itemCount = state.count - state.pendingCount
        guard itemCount > 0, state.tileOffsets.count > 0, state.postingLocalIDs.count > 0 else {
            throw CompresSAEError.invalid("the index is empty: add items before searching")
        }
        // Nothing is sized by n beyond the items there are; slots past them are padding.
        let kept = min(n, itemCount)
        let workers = max(1, min(Parallel.threadCount(requested: threads), rows))
        let outScores = SharedPointer(scores), outIDs = SharedPointer(ids)
        let compact = storage == .compact, levelBits = storage.levelBits
        let tile = Self.searchTile
        let tiles = (itemCount + tile - 1) / tile
        let floorRank = Self.floorSampleRank(n: kept)
        // Per worker: the tile's accumulators, k list cursors and weights, the floor sample, a heap.
        let what = "the sparse search's scratch"
        let accumulators = try FallibleBuffer<Float>(count: try Size.product(workers, tile, what: what), zeroed: true, what)
        let workerK = try Size.product(workers, k, what: what)
        let lists = try FallibleBuffer<UnsafePointer<Int32>>(count: workerK, what)
        let listStarts = try FallibleBuffer<Int>(count: workerK, what)
        let weights = try FallibleBuffer<Float>(count: workerK, what)
        let segments = try FallibleBuffer<Int64>(count: try Size.product(2, workerK, what: what), what)
        let samples = try FallibleBuffer<Float>(count: try Size.product(workers, max(1, floorRank), what: what), what)
        var selectorPool: [TopNSelector] = []
        for _ in 0..<workers { selectorPool.append(try TopNSelector(capacity: kept)) }
        let qIdx = SharedConstPointer(indices), qVal = SharedConstPointer(values)
        selectorPool.withUnsafeMutableBufferPointer { selectorBuffer in
        let selectors = SharedPointer(selectorBuffer.baseAddress!)
        let scratch = UnsafeSendableBox((accumulators, lists, listStarts, weights, segments, samples))
        state.tileOffsets.withUnsafeBufferPointer { offsetBuffer in
        state.postingStart.withUnsafeBufferPointer { startBuffer in
        state.postingLocalIDs.withUnsafeBufferPointer { idBuffer in
        state.postingValues.withUnsafeBufferPointer { valueBuffer in
        state.postingValues16.withUnsafeBufferPointer { value16Buffer in
        state.postingLevels.withUnsafeBufferPointer { levelBuffer in
        state.itemScales.withUnsafeBufferPointer { itemScaleBuffer in
            let levels = UnsafeSendableBox(levelBuffer.baseAddress), itemScales = UnsafeSendableBox(itemScaleBuffer.baseAddress)
            let start = SharedConstPointer(startBuffer.baseAddress!)
            let offsets = SharedConstPointer(offsetBuffer.baseAddress!), postingIDs = SharedConstPointer(idBuffer.baseAddress!)
            let postingValues = UnsafeSendableBox(valueBuffer.baseAddress), postingValues16 = UnsafeSendableBox(value16Buffer.baseAddress)
            Parallel.run(workers: workers) { w in
                let (accumulatorBuffer, listBuffer, listStartBuffer, weightBuffer, segmentBuffer, sampleBuffer) = scratch.value
                // Zeroed once: each tile's scan leaves the accumulators zeroed for the next.
                let accumulator = accumulatorBuffer.base + w * tile
                let lists = listBuffer.base + w * k, listStarts = listStartBuffer.base + w * k
                let weights = weightBuffer.base + w * k
                let segmentFrom = segmentBuffer.base + 2 * w * k, segmentTo = segmentFrom + k
                let sampleTop = sampleBuffer.base + w * max(1, floorRank)
                var q = w
                while q < rows {
                    let queryNorm = robustNorm(qVal.base + q * k, k)
                    for t in 0..<k {
                        let latent = Int(qIdx.base[q * k + t])
                        lists[t] = offsets.base + latent * (tiles + 1)
                        listStarts[t] = start.base[latent]
                        // A zero query has no direction: every score is 0.
                        weights[t] = queryNorm > 0 ? qVal.base[q * k + t] / queryNorm : 0
                    }
                    selectors.base[w].reset()
                    for tileIndex in 0..<tiles {
                        let tileStart = tileIndex * tile
                        let tileCount = min(itemCount, tileStart + tile) - tileStart
                        for t in 0..<k {
                            segmentFrom[t] = Int64(listStarts[t] + Int(lists[t][tileIndex]))
                            segmentTo[t] = Int64(listStarts[t] + Int(lists[t][tileIndex + 1]))
                        }
                        if let levelBits {
                            // Packed: the levels' sums, then each item's scale.
                            let scatter = levelBits == 8 ? csae_k_scatter_lists_levels8 : csae_k_scatter_lists_levels4
                            scatter(accumulator, postingIDs.base, levels.value!, segmentFrom, segmentTo, weights, Int64(k))
                            csae_k_multiply(accumulator, itemScales.value! + tileStart, Int64(tileCount))
                        } else if compact {
                            csae_k_scatter_lists_half(accumulator, postingIDs.base, postingValues16.value!,
                                                      segmentFrom, segmentTo, weights, Int64(k))
                        } else {
                            csae_k_scatter_lists(accumulator, postingIDs.base, postingValues.value!,
                                                 segmentFrom, segmentTo, weights, Int64(k))
                        }
                        if tileIndex == 0 && floorRank > 0 {
                            raiseFloor(accumulator, count: tileCount, rank: floorRank, buffer: sampleTop,
                                       of: &selectors.base[w])
                        }
                        offerTile(accumulator, first: tileStart, count: tileCount, to: &selectors.base[w])
                    }
                    let rowScores = outScores.base + q * n, rowIDs = outIDs.base + q * n
                    let found = selectors.base[w].drainSorted(scores: rowScores, ids: rowIDs)
                    for slot in found..<n {
                        rowScores[slot] = -.infinity
                        rowIDs[slot] = -1
                    }
                    q += workers
                }
            }
        }
        }
        }
        }
        }
        }
        }
        }
        return kept
    }

    // MARK: - Reconstructed mode

    /// Scores every item as `sum_t value'_t * u[index_t]` with
    /// `u = decoder_w @ q_unit`, for blocks of 64 queries at once: `u` for the
    /// block is one GEMM (`[h, 64]`), and each item's k nonzeros then update
    /// 64 query scores with vector operations. Items are split into contiguous
    /// ranges across workers, whose top-n lists are merged at the end.
    /// Caller holds the read lock.
    ///
    /// - Complexity: per block O(h d 64) for `u`, plus O(count k 64).
    func searchReconstructed(unitQueries: FallibleBuffer<Float>, rows: Int, n: Int,
                             scores: UnsafeMutablePointer<Float>, ids: UnsafeMutablePointer<Int64>, threads: Int) throws -> Int {
        let d = model.inputDim, h = model.latentDim, qb = reconstructedQueryBlock
        let itemCount = state.count, k = state.k!
        // Nothing is sized by n beyond the items there are; slots past them are padding.
        let kept = min(n, itemCount)
        let workers = max(1, min(Parallel.threadCount(requested: threads), max(1, itemCount / 1024)))
        let u = try FallibleBuffer<Float>(count: try Size.product(h, qb, what: "query projections"), "the queries' projections")
        let block = try FallibleBuffer<Float>(count: try Size.product(qb, d, what: "a query block"), "a block of queries")
        var selectorPool: [TopNSelector] = []
        for _ in 0..<(workers * qb + 1) { selectorPool.append(try TopNSelector(capacity: kept)) }
        let compact = storage == .compact, levelBits = storage.levelBits
        let expectedVersion = state.modelVersion

        try selectorPool.withUnsafeMutableBufferPointer { selectorBuffer in
        let selectors = selectorBuffer.baseAddress!
        let shared = SharedPointer(selectors)
        try model.withDecoder { decoder, version in
        // The codes' norms were taken with the decoder of their version: the
        // decoder used now must be the same one.
        if let expectedVersion, expectedVersion != version {
            throw Self.staleError("the model was trained after items were added to this index")
        }
        state.rowIndices.withUnsafeBufferPointer { idxBuffer in
        state.rowIndices16.withUnsafeBufferPointer { idx16Buffer in
        state.rowValues.withUnsafeBufferPointer { valBuffer in
        state.rowValues16.withUnsafeBufferPointer { val16Buffer in
        state.rowLevels.withUnsafeBufferPointer { levelBuffer in
        state.itemScales.withUnsafeBufferPointer { itemScaleBuffer in
            let levels = UnsafeSendableBox(levelBuffer.baseAddress), itemScales = UnsafeSendableBox(itemScaleBuffer.baseAddress)
            let rowIdx = UnsafeSendableBox(idxBuffer.baseAddress), rowIdx16 = UnsafeSendableBox(idx16Buffer.baseAddress)
            let rowVal = UnsafeSendableBox(valBuffer.baseAddress), rowVal16 = UnsafeSendableBox(val16Buffer.baseAddress)
            let uShared = SharedConstPointer(UnsafePointer(u.base))
            var first = 0
            while first < rows {
                let active = min(qb, rows - first)
                block.base.initialize(repeating: 0, count: qb * d)
                block.base.update(from: unitQueries.base + first * d, count: active * d)
                // u[j, l] = decoder_w[j] . q_l for the block's queries.
                GEMM.multiplyTransposed(m: h, n: qb, kk: d, a: decoder, b: block.base, beta: 0, c: u.base)
                Parallel.run(workers: workers) { w in
                    let lo = itemCount * w / workers, hi = itemCount * (w + 1) / workers
                    let mine = shared.base + w * qb
                    for l in 0..<qb { mine[l].reset() }
                    // Per 8-query group, the score an item must beat; lanes of
                    // absent queries never accept a candidate.
                    let groups = qb / 8
                    let limits = UnsafeMutablePointer<SIMD8<Float>>.allocate(capacity: groups)
                    defer { limits.deallocate() }
                    limits.initialize(repeating: SIMD8<Float>(repeating: -.infinity), count: groups)
                    for l in active..<qb { limits[l / 8][l % 8] = .infinity }
                    // Items in runs of 256: the kernel writes their 64 scores each,
                    // then the scores are checked against the running thresholds.
                    let run = 256
                    let runScores = UnsafeMutablePointer<Float>.allocate(capacity: run * qb)
                    let runFlags = UnsafeMutablePointer<UInt8>.allocate(capacity: run)
                    defer { runScores.deallocate(); runFlags.deallocate() }
                    let flatLimits = UnsafeRawPointer(limits).assumingMemoryBound(to: Float.self)
                    var runStart = lo
                    while runStart < hi {
                        let runCount = min(run, hi - runStart)
                        // The kernel flags items against the limits as they stand at
                        // the run's start; limits only rise, so flagged items are
                        // re-checked below and unflagged ones can be skipped.
                        if let levelBits {
                            let score = levelBits == 8 ? csae_k_sparse_times_dense64_levels8 : csae_k_sparse_times_dense64_levels4
                            score(runScores, runFlags, Int64(runCount), Int64(k), rowIdx16.value! + runStart * k,
                                  levels.value! + runStart * Self.levelRowBytes(k: k, bits: levelBits),
                                  itemScales.value! + runStart, uShared.base, flatLimits)
                        } else if compact {
                            csae_k_sparse_times_dense64_compact(runScores, runFlags, Int64(runCount), Int64(k),
                                                                rowIdx16.value! + runStart * k,
                                                                rowVal16.value! + runStart * k, uShared.base, flatLimits)
                        } else {
                            csae_k_sparse_times_dense64(runScores, runFlags, Int64(runCount), Int64(k),
                                                        rowIdx.value! + runStart * k,
                                                        rowVal.value! + runStart * k, uShared.base, flatLimits)
                        }
                        for r in 0..<runCount where runFlags[r] != 0 {
                            let item = runStart + r
                            let scoresOfItem = runScores + r * qb
                            for l in 0..<qb where scoresOfItem[l] > limits[l / 8][l % 8] {
                                mine[l].offer(scoresOfItem[l], Int64(item))
                                limits[l / 8][l % 8] = mine[l].threshold
                            }
                        }
                        runStart += runCount
                    }
                }
                // Merge the workers' lists per query; the order is total, so the
                // result does not depend on how items were split.
                let merged = selectors + workers * qb
                for l in 0..<active {
                    merged.pointee.reset()
                    for w in 0..<workers {
                        let s = selectors + w * qb + l
                        for e in 0..<s.pointee.count { let (score, id) = s.pointee.pair(e); merged.pointee.offer(score, id) }
                    }
                    let q = first + l
                    let found = merged.pointee.drainSorted(scores: scores + q * n, ids: ids + q * n)
                    for slot in found..<n {
                        scores[q * n + slot] = -.infinity
                        ids[q * n + slot] = -1
                    }
                }
                first += qb
            }
        }
        }
        }
        }
        }
        }
        }
        }
        return kept
    }

    /// The stride of the scores sampled by `raiseFloor`.
    static let floorSampleStride = 8

    /// The rank, among every `floorSampleStride`-th score of the first tile,
    /// whose score about 1.5 n items of the tile exceed; 0 when `n` is too
    /// large for a sample to help.
    static func floorSampleRank(n: Int) -> Int {
        let rank = 3 * n / (2 * floorSampleStride) + 1
        return rank <= 64 ? rank : 0
    }

    /// Gives the selector a floor before the first tile is offered: the
    /// `rank`-th largest of a sample of the tile's scores, if at least `n`
    /// scores of the tile exceed it (then no item at or below it can be in
    /// the top n). The heap otherwise takes every item of the first tile that
    /// beats the running n-th best, several hundred sifts per query; with the
    /// floor it takes about 1.5 n.
    @inline(__always)
    func raiseFloor(_ scores: UnsafePointer<Float>, count: Int, rank: Int, buffer top: UnsafeMutablePointer<Float>,
                    of selector: inout TopNSelector) {
        let stride = Self.floorSampleStride
        guard count / stride >= 4 * rank else { return }
        // The `rank` largest samples, in descending order.
        top.initialize(repeating: -.infinity, count: rank)
        var s = 0
        while s < count {
            let v = scores[s]
            if v > top[rank - 1] {
                var slot = rank - 1
                while slot > 0 && top[slot - 1] < v {
                    top[slot] = top[slot - 1]
                    slot -= 1
                }
                top[slot] = v
            }
            s += stride
        }
        let candidate = top[rank - 1]
        if csae_k_count_above(scores, Int64(count), candidate) >= Int64(selector.capacity) {
            selector.raiseFloor(to: candidate)
        }
    }

    /// Offers the scores of items `first..<first+count` (in id order) to the
    /// selector: a vector scan skips to the next score above its threshold.
    /// Leaves `scores[0..<count]` zeroed.
    @inline(__always)
    func offerTile(_ scores: UnsafeMutablePointer<Float>, first: Int, count: Int, to selector: inout TopNSelector) {
        let n = Int64(count)
        var i = csae_k_next_above(scores, 0, n, selector.threshold)
        while i < n {
            selector.offer(scores[Int(i)], Int64(first) + i)
            scores[Int(i)] = 0
            i = csae_k_next_above(scores, i + 1, n, selector.threshold)
        }
    }
}
