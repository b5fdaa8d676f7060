import CCompresSAE

// The reconstructed-mode search kernel: cosine between decoded vectors, in
// O(k) per item and query through the query's projection onto the decoder.

extension SparseIndex {
    /// Items per worker below which the reconstructed search adds no worker:
    /// smaller shares cost more to start and merge than they save.
    static let reconstructedItemsPerWorker = 1024

    /// Scores every item as `sum_t value'_t * u[index_t]` with
    /// `u = decoder_w @ q_unit`, for blocks of 64 queries at once: `u` for the
    /// block is one GEMM (`[h, 64]`, `CompresSAEModel.projectOntoDecoder`),
    /// and each item's k nonzeros then update 64 query scores with vector
    /// operations. Items are split into contiguous ranges across workers,
    /// whose top-n lists are merged at the end. Caller holds the read lock.
    ///
    /// - Complexity: per block O(h d 64) for `u`, plus O(count k 64).
    func searchReconstructed(unitQueries: FallibleBuffer<Float>, rows: Int, n: Int,
                             scores: UnsafeMutablePointer<Float>, ids: UnsafeMutablePointer<Int64>, threads: Int) throws -> Int {
        let d = model.inputDim, h = model.latentDim, qb = ReconstructedSearchScratch.queryBlock
        let itemCount = state.count
        // Nothing is sized by n beyond the items there are; slots past them are padding.
        let kept = min(n, itemCount)
        let workers = max(1, min(Parallel.threadCount(requested: threads),
                                 max(1, itemCount / Self.reconstructedItemsPerWorker)))
        let scratch = try ReconstructedSearchScratch(workers: workers, d: d, h: h)
        // One selector per worker and query of a block, and one to merge them.
        let selectors = try TopNSelectorPool(count: workers * qb + 1, capacity: kept)
        let output = SearchOutput(scores: scores, ids: ids, n: n)
        try withReconstructedRows { codes in
            var first = 0
            while first < rows {
                let active = min(qb, rows - first)
                try projectQueryBlock(unitQueries, first: first, active: active, block: scratch.block,
                                      into: scratch.projections)
                Parallel.run(workers: workers) { w in
                    Self.scanItems(codes, worker: w, of: workers, activeQueries: active,
                                   projections: scratch.projections.base, scratch: scratch.worker(w),
                                   selectors: selectors[w * qb])
                }
                Self.mergeBlock(first: first, active: active, workers: workers, selectors: selectors, into: output)
                first += qb
            }
        }
        return kept
    }

    /// Projects queries `first..<first+active` of `unitQueries` (`d` floats
    /// each) onto the decoder: `block` gets them, zero-padded to
    /// `queryBlock` rows, and `projections` their `[h, queryBlock]`
    /// projections. The codes' norms were taken with the decoder of their
    /// version, so a projection from another version is refused. Caller
    /// holds the read lock.
    ///
    /// - Complexity: O(h d queryBlock).
    func projectQueryBlock(_ unitQueries: FallibleBuffer<Float>, first: Int, active: Int,
                           block: FallibleBuffer<Float>, into projections: FallibleBuffer<Float>) throws {
        let d = model.inputDim, qb = ReconstructedSearchScratch.queryBlock
        block.base.initialize(repeating: 0, count: qb * d)
        block.base.update(from: unitQueries.base + first * d, count: active * d)
        let version = model.projectOntoDecoder(block.base, columns: qb, into: projections.base)
        if let expected = state.modelVersion, expected != version {
            throw Self.staleError("the model was trained after items were added to this index")
        }
    }

    /// Offers worker `w`'s contiguous share of the items to its `queryBlock`
    /// selectors (`selectors[0..<queryBlock]`), for the block's `active`
    /// queries. Items are scored in runs (`ReconstructedSearchScratch.runLength`);
    /// the kernel flags the items of a run against the limits as they stand
    /// at the run's start, and since limits only rise, flagged items are
    /// checked again here and unflagged ones skipped.
    ///
    /// - Complexity: O(items k 64), plus O(log n) per candidate offered.
    static func scanItems(_ codes: ReconstructedRowsView, worker w: Int, of workers: Int, activeQueries active: Int,
                          projections: UnsafePointer<Float>, scratch: ReconstructedSearchScratch.Worker,
                          selectors mine: UnsafeMutablePointer<TopNSelector>) {
        let qb = ReconstructedSearchScratch.queryBlock, lanes = ReconstructedSearchScratch.lanes
        let lo = codes.count * w / workers, hi = codes.count * (w + 1) / workers
        for l in 0..<qb { mine[l].reset() }
        // Per group of queries, the score an item must beat; lanes of absent
        // queries never accept a candidate.
        let limits = scratch.limits
        limits.initialize(repeating: SIMD8<Float>(repeating: -.infinity), count: qb / lanes)
        for l in active..<qb { limits[l / lanes][l % lanes] = .infinity }
        let flatLimits = UnsafeRawPointer(limits).assumingMemoryBound(to: Float.self)
        var runStart = lo
        while runStart < hi {
            let runCount = min(ReconstructedSearchScratch.runLength, hi - runStart)
            scoreRun(codes, first: runStart, count: runCount, projections: projections, limits: flatLimits,
                     scores: scratch.runScores, flags: scratch.runFlags)
            for r in 0..<runCount where scratch.runFlags[r] != 0 {
                let item = runStart + r
                let scoresOfItem = scratch.runScores + r * qb
                for l in 0..<qb where scoresOfItem[l] > limits[l / lanes][l % lanes] {
                    mine[l].offer(scoresOfItem[l], Int64(item))
                    limits[l / lanes][l % lanes] = mine[l].threshold
                }
            }
            runStart += runCount
        }
    }

    /// Writes the `queryBlock` scores of items `first..<first+count` (item
    /// major) and flags the items whose score beats some query's limit.
    ///
    /// - Complexity: O(count k 64).
    @inline(__always)
    static func scoreRun(_ codes: ReconstructedRowsView, first: Int, count: Int, projections: UnsafePointer<Float>,
                         limits: UnsafePointer<Float>, scores: UnsafeMutablePointer<Float>,
                         flags: UnsafeMutablePointer<UInt8>) {
        let k = codes.k
        if let itemScales = codes.itemScales, let levels = codes.levels, let bits = codes.levelBits {
            let score = bits == 8 ? csae_k_sparse_times_dense64_levels8 : csae_k_sparse_times_dense64_levels4
            score(scores, flags, Int64(count), Int64(k), codes.indices16! + first * k,
                  levels + first * levelRowBytes(k: k, bits: bits), itemScales + first, projections, limits)
        } else if let values16 = codes.values16 {
            csae_k_sparse_times_dense64_compact(scores, flags, Int64(count), Int64(k), codes.indices16! + first * k,
                                                values16 + first * k, projections, limits)
        } else {
            csae_k_sparse_times_dense64(scores, flags, Int64(count), Int64(k), codes.indices! + first * k,
                                        codes.values! + first * k, projections, limits)
        }
    }

    /// Merges the workers' selectors of each active query of the block (the
    /// last selector of the pool collects them) and writes its results. The
    /// order is total, so the result does not depend on how items were split.
    ///
    /// - Complexity: O(active workers n log n).
    static func mergeBlock(first: Int, active: Int, workers: Int, selectors: TopNSelectorPool,
                           into output: SearchOutput) {
        let qb = ReconstructedSearchScratch.queryBlock
        let merged = selectors[workers * qb]
        for l in 0..<active {
            merged.pointee.reset()
            for w in 0..<workers {
                let s = selectors[w * qb + l]
                for e in 0..<s.pointee.count { let (score, id) = s.pointee.pair(e); merged.pointee.offer(score, id) }
            }
            output.write(row: first + l, from: &merged.pointee)
        }
    }
}
