import CCompresSAE

// The rescored search of reconstructed mode: a candidate stage that reads
// only the posting lists of the latents where a query's projection onto the
// decoder is largest, then the exact asymmetric score of each candidate from
// its row, in O(k). The score of an item is `u . s'_y`, a sum over its k
// latents; the candidate stage sums the same products over the probed
// latents only, so it ranks by a part of the exact score.

extension SparseIndex {
    /// Latents of a query's projection whose posting lists the candidate
    /// stage reads, per nonzero of the items' codes (at most h). Measured on
    /// the shared set at k = 32 (docs/performance.md): k probes are fastest
    /// for few candidates, 4k rank best for many, and 2k sits between at
    /// every candidate count.
    static let candidateProbeFactor = 2

    /// Searches in reconstructed mode through a candidate stage: for each
    /// query, the `min(h, 2k)` latents of largest `|u_j|` (`u` the query's
    /// projection onto the decoder) are looked up in posting lists of the
    /// rows, the `candidates` best items by that partial score are rescored
    /// exactly from their rows, and the best `n` of them are returned. The
    /// scores are those of the exhaustive search, bit for bit; with
    /// `candidates >= count` so is the ranking. Caller holds the read lock on
    /// merged candidate lists (`withCandidateLists`).
    ///
    /// - Complexity: per block of 64 queries O(h d 64) for the projections;
    ///   per query O(h) for the probe selection, O(sum of the probed lists'
    ///   lengths + count) for the candidate stage, and O(candidates (k + log candidates)) for the rescoring.
    func searchRescored(unitQueries: FallibleBuffer<Float>, rows: Int, n: Int, candidates: Int,
                        scores: UnsafeMutablePointer<Float>, ids: UnsafeMutablePointer<Int64>, threads: Int) throws -> Int {
        let d = model.inputDim, h = model.latentDim, qb = ReconstructedSearchScratch.queryBlock
        let listed = state.count - state.pendingCount
        guard let k = state.k, listed > 0, state.tileOffsets.count > 0, state.postingLocalIDs.count > 0 else {
            throw CompresSAEError.invalid("the index is empty: add items before searching")
        }
        let kept = min(n, listed)
        let pool = min(max(candidates, kept), listed)
        let probes = min(h, Self.candidateProbeFactor * k)
        let workers = max(1, min(Parallel.threadCount(requested: threads), rows))
        let floorRank = Self.floorSampleRank(n: pool, selecting: true)
        let scratch = try RescoredSearchScratch(workers: workers, d: d, h: h, probes: probes, pool: pool)
        let pools = try CollectorPool<CandidatePool>(count: workers, capacity: pool)
        let cursors = try SparseSearchScratch(workers: workers, k: probes, tile: Self.searchTile, floorRank: floorRank)
        let finalSelectors = try TopNSelectorPool(count: workers, capacity: kept)
        let output = SearchOutput(scores: scores, ids: ids, n: n)
        try withPostingLists(itemCount: listed) { lists in
            try withReconstructedRows { codes in
                var first = 0
                while first < rows {
                    let active = min(qb, rows - first)
                    try projectQueryBlock(unitQueries, first: first, active: active, block: scratch.block,
                                          into: scratch.projections)
                    scratch.transposeProjections()
                    let blockFirst = first
                    Parallel.run(workers: min(workers, active)) { w in
                        var l = w
                        while l < active {
                            Self.rescoreQuery(projection: scratch.queryProjections.base + l * h, h: h, probes: probes,
                                              lists: lists, codes: codes, scratch: scratch.worker(w),
                                              cursor: cursors.worker(w), floorRank: floorRank,
                                              pool: pools[w], final: finalSelectors[w])
                            output.write(row: blockFirst + l, from: &finalSelectors[w].pointee)
                            l += min(workers, active)
                        }
                    }
                    first += qb
                }
            }
        }
        return kept
    }

    /// One query of a block, given its projection (`h` floats): the probe
    /// latents, the candidate stage into `pool`, and the exact scores of the
    /// candidates offered to `final`.
    ///
    /// - Complexity: O(h + probed list lengths + count + pool k).
    static func rescoreQuery(projection u: UnsafePointer<Float>, h: Int, probes: Int,
                             lists: PostingListsView, codes: ReconstructedRowsView,
                             scratch: RescoredSearchScratch.Worker, cursor: SparseSearchScratch.Worker,
                             floorRank: Int, pool: UnsafeMutablePointer<CandidatePool>,
                             final: UnsafeMutablePointer<TopNSelector>) {
        TopK.select(row: u, n: h, m: probes, sorted: false, outIndices: scratch.probeIndices,
                    scratch: (scratch.selectionKeys, scratch.selectionIndices))
        for t in 0..<probes { scratch.probeValues[t] = u[Int(scratch.probeIndices[t])] }
        let probe = SparseQueries(indices: scratch.probeIndices, values: scratch.probeValues, k: probes)
        searchSparseQuery(0, of: probe, in: lists, cursor: cursor, floorRank: floorRank, selector: pool)
        pool.pointee.finish()
        let count = pool.pointee.count
        for e in 0..<count { scratch.candidates[e] = Int32(truncatingIfNeeded: pool.pointee.pair(e).id) }
        scoreRows(codes, items: scratch.candidates, count: count, projection: u, into: scratch.candidateScores)
        final.pointee.reset()
        for e in 0..<count { final.pointee.offer(scratch.candidateScores[e], Int64(scratch.candidates[e])) }
    }

    /// The exact scores of rows `items[0..<count]` against `projection`, as
    /// the exhaustive kernel (`scoreRun`) computes them.
    ///
    /// - Complexity: O(count k).
    @inline(__always)
    static func scoreRows(_ codes: ReconstructedRowsView, items: UnsafePointer<Int32>, count: Int,
                          projection: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        let k = Int64(codes.k), n = Int64(count)
        if let scales = codes.itemScales, let levels = codes.levels, let bits = codes.levelBits {
            let score = bits == 8 ? csae_k_rows_dot_levels8 : csae_k_rows_dot_levels4
            score(out, items, n, k, codes.indices16!, levels, scales, projection)
        } else if let values16 = codes.values16 {
            csae_k_rows_dot_compact(out, items, n, k, codes.indices16!, values16, projection)
        } else {
            csae_k_rows_dot(out, items, n, k, codes.indices!, codes.values!, projection)
        }
    }

    // MARK: - Candidate lists

    /// Runs `body` under the read lock on candidate lists that hold every
    /// item added before this call began (built at the first call, then
    /// merged as `withMergedPostings` merges sparse mode's lists).
    ///
    /// - Complexity: O(1) plus `body`; the first call O(total nonzeros + h)
    ///   to build the lists, a later one a merge when items were added.
    func withCandidateLists<R>(ifEmpty: () -> R, _ body: () throws -> R) throws -> R {
        while true {
            let ready = lock.withReadLock { state.hasCandidateLists || state.count == 0 }
            if !ready { try lock.withWriteLock { try buildCandidateLists() } }
            // An index that was empty when checked may have items by now, and no lists yet.
            let result: R? = try withMergedPostings(ifEmpty: { ifEmpty() }) {
                state.hasCandidateLists ? try body() : nil
            }
            if let result { return result }
        }
    }

    /// Builds the candidate lists from the rows (nothing when built or
    /// empty). On failure the index is as before. Caller holds the write lock.
    ///
    /// - Complexity: O(total nonzeros + h).
    func buildCandidateLists() throws {
        guard mode == .reconstructed, !state.hasCandidateLists, state.count > 0, let k = state.k else { return }
        // Stale codes cannot be searched: no lists for them.
        try checkModelVersion()
        let nonzeros = try Size.product(state.count, k, what: "the candidate lists")
        let what = "the candidate lists (\(nonzeros) entries)"
        // The queued entries (an index and a value each), reserved at their
        // exact size, then the merge, which probes for its own arrays.
        try probeAllocation(count: try Size.product(nonzeros, 4, what: what), of: Float.self, what)
        state.postingStart = try [Int].fallible(repeating: 0, count: model.latentDim + 1, what)
        state.pendingIndices.reserveCapacity(nonzeros)
        state.pendingValues.reserveCapacity(nonzeros)
        state.hasCandidateLists = true
        appendCandidatePending(first: 0, rows: state.count)
        do {
            try mergePending()
        } catch {
            state.pendingIndices = []
            state.pendingValues = []
            state.pendingCount = 0
            state.postingStart = []
            state.hasCandidateLists = false
            throw error
        }
    }

    /// Queues rows `first..<first+rows` for the candidate lists, with the
    /// rows' values (already divided by the item's decoded norm; the levels
    /// of a packed storage, whose scales the rows and lists share). Caller
    /// holds the write lock and has reserved the space.
    ///
    /// - Complexity: O(rows k).
    func appendCandidatePending(first: Int, rows: Int) {
        guard let k = state.k, rows > 0 else { return }
        let rowBytes = storage.levelBits.map { Self.levelRowBytes(k: k, bits: $0) } ?? 0
        for i in first..<(first + rows) {
            for t in 0..<k {
                let e = i * k + t
                switch storage {
                case .standard:
                    state.pendingIndices.append(state.rowIndices[e])
                    state.pendingValues.append(state.rowValues[e])
                case .compact:
                    state.pendingIndices.append(Int32(state.rowIndices16[e]))
                    state.pendingValues.append(HalfPrecision.decode(state.rowValues16[e]))
                case .packed8:
                    state.pendingIndices.append(Int32(state.rowIndices16[e]))
                    state.pendingValues.append(Float(Self.level(state.rowLevels, e, bits: 8)))
                case .packed4:
                    state.pendingIndices.append(Int32(state.rowIndices16[e]))
                    state.pendingValues.append(Float(Self.level(state.rowLevels, 2 * i * rowBytes + t, bits: 4)))
                }
            }
        }
        state.pendingCount += rows
    }
}

/// Scratch of the rescored search, owning its buffers: a block of queries and
/// their projections, and per worker the probe
/// latents, the selection's scratch and the candidates with their scores.
///
/// Workers share the object (`@unchecked Sendable`) and write only the
/// slices `worker(_:)` gives them; the block and projections are written
/// between parallel sections.
final class RescoredSearchScratch: @unchecked Sendable {
    /// One worker's slices.
    struct Worker {
        /// `probes` latents and their projection values.
        let probeIndices: UnsafeMutablePointer<Int32>
        let probeValues: UnsafeMutablePointer<Float>
        /// `TopK.select`'s scratch for rows of `h`.
        let selectionKeys: UnsafeMutablePointer<UInt32>
        let selectionIndices: UnsafeMutablePointer<Int32>
        /// `pool` candidate ids and their exact scores.
        let candidates: UnsafeMutablePointer<Int32>
        let candidateScores: UnsafeMutablePointer<Float>
    }

    /// `queryBlock x d` queries of the current block (absent ones zero).
    let block: FallibleBuffer<Float>
    /// `h x queryBlock` projections `decoder_w @ q` of the block's queries.
    let projections: FallibleBuffer<Float>
    /// The same, `queryBlock x h`: each query's projection contiguous.
    let queryProjections: FallibleBuffer<Float>
    private let floats: FallibleBuffer<Float>
    private let ints: FallibleBuffer<Int32>
    private let keys: FallibleBuffer<UInt32>
    private let h: Int, probes: Int, pool: Int, keyCount: Int, selectionIndexCount: Int

    /// - Throws: `invalidArgument` when a size overflows, `outOfMemory` when
    ///   a buffer cannot be allocated.
    /// - Complexity: O(1) (nothing is initialised).
    init(workers: Int, d: Int, h: Int, probes: Int, pool: Int) throws(CompresSAEError) {
        let qb = ReconstructedSearchScratch.queryBlock, what = "the rescored search's scratch"
        self.h = h
        self.probes = probes
        self.pool = pool
        keyCount = TopK.scratchKeys(n: h)
        selectionIndexCount = TopK.scratchIndices(n: h)
        block = try FallibleBuffer(count: try Size.product(qb, d, what: "a query block"), "a block of queries")
        projections = try FallibleBuffer(count: try Size.product(h, qb, what: "query projections"),
                                         "the queries' projections")
        queryProjections = try FallibleBuffer(count: try Size.product(h, qb, what: "query projections"),
                                              "the queries' projections")
        let floatsPerWorker = try Size.sum(probes, pool, what: what)
        let intsPerWorker = try Size.sum(try Size.sum(probes, selectionIndexCount, what: what), pool, what: what)
        floats = try FallibleBuffer(count: try Size.product(workers, floatsPerWorker, what: what), what)
        ints = try FallibleBuffer(count: try Size.product(workers, intsPerWorker, what: what), what)
        keys = try FallibleBuffer(count: try Size.product(workers, keyCount, what: what), what)
    }

    /// The slices of worker `w`.
    ///
    /// - Complexity: O(1).
    @inline(__always)
    func worker(_ w: Int) -> Worker {
        let f = floats.base + w * (probes + pool)
        let i = ints.base + w * (probes + selectionIndexCount + pool)
        return Worker(probeIndices: i, probeValues: f,
                      selectionKeys: keys.base + w * keyCount, selectionIndices: i + probes,
                      candidates: i + probes + selectionIndexCount, candidateScores: f + probes)
    }

    /// Copies `projections` (`[h, queryBlock]`) to `queryProjections`
    /// (`[queryBlock, h]`), in tiles of 64 latents that stay in cache.
    ///
    /// - Complexity: O(h queryBlock).
    func transposeProjections() {
        let qb = ReconstructedSearchScratch.queryBlock, tile = 64
        let from = projections.base, to = queryProjections.base
        var j0 = 0
        while j0 < h {
            let j1 = min(h, j0 + tile)
            for l in 0..<qb {
                for j in j0..<j1 { to[l * h + j] = from[j * qb + l] }
            }
            j0 = j1
        }
    }
}
