import CCompresSAE

// The sparse-mode search kernel: cosine between sparse codes through the
// posting lists, one tile of item ids at a time.

extension SparseIndex {
    /// Scores through the posting lists of the query's latents, one tile of
    /// item ids at a time: a tile's accumulators (`searchTile` floats) stay
    /// in cache while each list adds its part of the tile (found in
    /// `tileOffsets`), then the tile is scanned against the running top-n
    /// threshold. Every item gets a score (0 where no list reaches it) and
    /// items arrive in id order, so ties and zero scores rank exactly as
    /// brute force ranks them. Queries are spread over workers; caller holds
    /// the read lock.
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
        let floorRank = Self.floorSampleRank(n: kept)
        let scratch = try SparseSearchScratch(workers: workers, k: k, tile: Self.searchTile, floorRank: floorRank)
        let selectors = try TopNSelectorPool(count: workers, capacity: kept)
        let queries = SparseQueries(indices: indices, values: values, k: k)
        let output = SearchOutput(scores: scores, ids: ids, n: n)
        withPostingLists(itemCount: itemCount) { lists in
            Parallel.run(workers: workers) { w in
                let cursor = scratch.worker(w)
                var q = w
                while q < rows {
                    Self.searchSparseQuery(q, of: queries, in: lists, cursor: cursor, floorRank: floorRank,
                                           selector: selectors[w])
                    output.write(row: q, from: &selectors[w].pointee)
                    q += workers
                }
            }
        }
        return kept
    }

    /// Fills `selector` with the best items for query `q`: its lists are
    /// found, then every tile is scored and offered in id order.
    ///
    /// - Complexity: O(sum of the query's posting-list lengths + item count).
    @inline(__always)
    static func searchSparseQuery<Collector: ScoreCollector>(
        _ q: Int, of queries: SparseQueries, in lists: PostingListsView, cursor: SparseSearchScratch.Worker,
        floorRank: Int, selector: UnsafeMutablePointer<Collector>
    ) {
        let k = queries.k
        let queryNorm = robustNorm(queries.values + q * k, k)
        for t in 0..<k {
            let latent = Int(queries.indices[q * k + t])
            cursor.lists[t] = lists.tileOffsets(ofLatent: latent)
            cursor.listStarts[t] = lists.listStart[latent]
            // A zero query has no direction: every score is 0.
            cursor.weights[t] = queryNorm > 0 ? queries.values[q * k + t] / queryNorm : 0
        }
        selector.pointee.reset()
        for tileIndex in 0..<lists.tiles {
            let tileStart = tileIndex * searchTile
            let tileCount = min(lists.itemCount, tileStart + searchTile) - tileStart
            // Packed storages: the items' scales applied in the threshold scan, but for a floor sample.
            let scaledScan = lists.itemScales != nil && (tileIndex > 0 || floorRank == 0)
            scoreTile(tileIndex, count: tileCount, lists: lists, k: k, cursor: cursor, applyScales: !scaledScan)
            if scaledScan, let scales = lists.itemScales {
                offerScaledTile(cursor.accumulator, scales: scales + tileStart, first: tileStart, count: tileCount,
                                to: &selector.pointee)
                continue
            }
            if tileIndex == 0 && floorRank > 0 {
                raiseFloor(cursor.accumulator, count: tileCount, rank: floorRank, buffer: cursor.floorSample,
                           of: &selector.pointee)
            }
            offerTile(cursor.accumulator, first: tileStart, count: tileCount, to: &selector.pointee)
        }
    }

    /// Adds the `k` lists' parts of tile `tileIndex` (`count` items) into
    /// `cursor.accumulator`: each item's sum of query weight times entry value.
    ///
    /// - Complexity: O(k + the entries of the tile in the k lists).
    @inline(__always)
    static func scoreTile(_ tileIndex: Int, count tileCount: Int, lists: PostingListsView, k: Int,
                          cursor: SparseSearchScratch.Worker, applyScales: Bool = true) {
        for t in 0..<k {
            cursor.segmentFrom[t] = Int64(cursor.listStarts[t] + Int(cursor.lists[t][tileIndex]))
            cursor.segmentTo[t] = Int64(cursor.listStarts[t] + Int(cursor.lists[t][tileIndex + 1]))
        }
        if let itemScales = lists.itemScales, let levels = lists.levels {
            // Packed: the levels' sums, then (unless the scan applies them) each item's scale.
            let scatter = lists.levelBits == 8 ? csae_k_scatter_lists_levels8 : csae_k_scatter_lists_levels4
            scatter(cursor.accumulator, lists.localIDs, levels, cursor.segmentFrom, cursor.segmentTo,
                    cursor.weights, Int64(k))
            if applyScales { csae_k_multiply(cursor.accumulator, itemScales + tileIndex * searchTile, Int64(tileCount)) }
        } else if let values16 = lists.values16 {
            csae_k_scatter_lists_half(cursor.accumulator, lists.localIDs, values16, cursor.segmentFrom,
                                      cursor.segmentTo, cursor.weights, Int64(k))
        } else {
            csae_k_scatter_lists(cursor.accumulator, lists.localIDs, lists.values!, cursor.segmentFrom,
                                 cursor.segmentTo, cursor.weights, Int64(k))
        }
    }

    /// The stride of the scores sampled by `raiseFloor`.
    static var floorSampleStride: Int { 8 }
    /// The largest floor-sample rank found by insertion; a larger one is
    /// found by a selection over the whole sample (`floorSampleRank(n:selecting:)`).
    static let maxFloorSampleRank = 64
    /// `raiseFloor` samples a tile only when it holds at least this many
    /// samples per rank, so that the sampled rank is a fair estimate.
    static let floorSamplesPerRank = 4

    /// The rank, among every `floorSampleStride`-th score of the first tile,
    /// whose score about 1.5 n items of the tile exceed; 0 when `n` is too
    /// large for a sample to help, unless `selecting`: a candidate pool,
    /// whose offers cost more than a sample's selection.
    ///
    /// - Complexity: O(1).
    static func floorSampleRank(n: Int, selecting: Bool = false) -> Int {
        let rank = 3 * n / (2 * floorSampleStride) + 1
        return rank <= maxFloorSampleRank || selecting ? rank : 0
    }

    /// Floats the floor sample of `rank` needs over tiles of `tile` items:
    /// the rank itself, or the whole sample when it is selected from.
    ///
    /// - Complexity: O(1).
    static func floorSampleCapacity(rank: Int, tile: Int) -> Int {
        rank > maxFloorSampleRank ? (tile + floorSampleStride - 1) / floorSampleStride : max(1, rank)
    }

    /// Gives the selector a floor before the first tile is offered: the
    /// `rank`-th largest of a sample of the tile's scores, if at least `n`
    /// scores of the tile exceed it (then no item at or below it can be in
    /// the top n). The heap otherwise takes every item of the first tile that
    /// beats the running n-th best, several hundred sifts per query; with the
    /// floor it takes about 1.5 n.
    ///
    /// - Complexity: O(count + (count / floorSampleStride) rank), or with a
    ///   rank above `maxFloorSampleRank`, O(count) expected.
    @inline(__always)
    static func raiseFloor<Collector: ScoreCollector>(_ scores: UnsafePointer<Float>, count: Int, rank: Int,
                                                      buffer top: UnsafeMutablePointer<Float>,
                                                      of selector: inout Collector) {
        let stride = floorSampleStride
        guard count / stride >= floorSamplesPerRank * rank else { return }
        if rank > maxFloorSampleRank {
            // The whole sample, and its `rank` largest moved to the front.
            let samples = (count + stride - 1) / stride
            for e in 0..<samples { top[e] = scores[e * stride] }
            PartialSelection.moveLargestToFront(rank, of: top, count: samples)
            var candidate = top[0]
            for e in 1..<rank { candidate = min(candidate, top[e]) }
            if csae_k_count_above(scores, Int64(count), candidate) >= Int64(selector.capacity) {
                selector.raiseFloor(to: candidate)
            }
            return
        }
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
    ///
    /// - Complexity: O(count + o log n) for the `o` scores offered.
    @inline(__always)
    static func offerTile<Collector: ScoreCollector>(_ scores: UnsafeMutablePointer<Float>, first: Int, count: Int,
                                                     to selector: inout Collector) {
        let n = Int64(count)
        var i = csae_k_next_above(scores, 0, n, selector.threshold)
        while i < n {
            selector.offer(scores[Int(i)], Int64(first) + i)
            scores[Int(i)] = 0
            i = csae_k_next_above(scores, i + 1, n, selector.threshold)
        }
    }
}

/// `rows` sparse queries of `k` nonzeros, row-major, as the search kernel
/// reads them (`@unchecked Sendable`: workers only read them).
struct SparseQueries: @unchecked Sendable {
    let indices: UnsafePointer<Int32>
    let values: UnsafePointer<Float>
    /// Nonzeros per query.
    let k: Int
}
