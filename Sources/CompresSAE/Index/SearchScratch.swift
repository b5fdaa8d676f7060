/// Per-worker scratch of the sparse-mode search, owning its buffers (freed
/// with it); allocated before the workers start, so that running out of
/// memory is an error rather than the end of the process.
///
/// Workers share the object (`@unchecked Sendable`) and touch only the
/// slices `worker(_:)` gives them.
final class SparseSearchScratch: @unchecked Sendable {
    /// One worker's slices.
    struct Worker {
        /// A tile's score accumulators (`SparseIndex.searchTile` floats),
        /// zeroed at allocation; scanning a tile leaves them zeroed again.
        let accumulator: UnsafeMutablePointer<Float>
        /// Per query latent, its list's tile offsets (`tiles + 1` of them).
        let lists: UnsafeMutablePointer<UnsafePointer<Int32>>
        /// Per query latent, where its list starts in the posting arrays.
        let listStarts: UnsafeMutablePointer<Int>
        /// Per query latent, its weight (the query's value over its norm).
        let weights: UnsafeMutablePointer<Float>
        /// Per query latent, the current tile's entry range in its list.
        let segmentFrom: UnsafeMutablePointer<Int64>, segmentTo: UnsafeMutablePointer<Int64>
        /// The floor sample of `SparseIndex.raiseFloor`
        /// (`SparseIndex.floorSampleCapacity(rank:tile:)` floats).
        let floorSample: UnsafeMutablePointer<Float>
    }

    private let accumulators: FallibleBuffer<Float>
    private let lists: FallibleBuffer<UnsafePointer<Int32>>
    private let listStarts: FallibleBuffer<Int>
    private let weights: FallibleBuffer<Float>
    private let segments: FallibleBuffer<Int64>
    private let samples: FallibleBuffer<Float>
    private let tile: Int, k: Int, sampleCount: Int

    /// Scratch for `workers` workers searching with `k`-nonzero queries in
    /// tiles of `tile` items, with floor samples of `floorRank` scores.
    ///
    /// - Throws: `invalidArgument` when a size overflows, `outOfMemory` when
    ///   a buffer cannot be allocated.
    /// - Complexity: O(workers (tile + k + the floor sample)), the accumulators being zeroed.
    init(workers: Int, k: Int, tile: Int, floorRank: Int) throws(CompresSAEError) {
        let what = "the sparse search's scratch"
        self.tile = tile
        self.k = k
        sampleCount = SparseIndex.floorSampleCapacity(rank: floorRank, tile: tile)
        accumulators = try FallibleBuffer(count: try Size.product(workers, tile, what: what), zeroed: true, what)
        let workerK = try Size.product(workers, k, what: what)
        lists = try FallibleBuffer(count: workerK, what)
        listStarts = try FallibleBuffer(count: workerK, what)
        weights = try FallibleBuffer(count: workerK, what)
        segments = try FallibleBuffer(count: try Size.product(2, workerK, what: what), what)
        samples = try FallibleBuffer(count: try Size.product(workers, sampleCount, what: what), what)
    }

    /// The slices of worker `w`.
    ///
    /// - Complexity: O(1).
    @inline(__always)
    func worker(_ w: Int) -> Worker {
        let segmentFrom = segments.base + 2 * w * k
        return Worker(accumulator: accumulators.base + w * tile, lists: lists.base + w * k,
                      listStarts: listStarts.base + w * k, weights: weights.base + w * k,
                      segmentFrom: segmentFrom, segmentTo: segmentFrom + k,
                      floorSample: samples.base + w * sampleCount)
    }
}

/// Scratch of the reconstructed-mode search, owning its buffers: a block of
/// queries, their projections onto the decoder, and per worker the running
/// limits and the scores of a run of items.
///
/// Workers share the object (`@unchecked Sendable`) and write only the
/// slices `worker(_:)` gives them; the query block and projections are
/// written between parallel sections.
final class ReconstructedSearchScratch: @unchecked Sendable {
    // Computed constants, so that the kernel's loops see literals.

    /// Queries scored together: eight 8-lane accumulators in the kernel.
    static var queryBlock: Int { 64 }
    /// Lanes of one limit vector.
    static var lanes: Int { SIMD8<Float>.scalarCount }
    /// Items the kernel scores before their scores are checked against the
    /// running limits: 256 items x 64 queries of scores (64 KB) stay in cache.
    static var runLength: Int { 256 }

    /// One worker's slices.
    struct Worker {
        /// Per group of `lanes` queries, the score an item must beat.
        let limits: UnsafeMutablePointer<SIMD8<Float>>
        /// `runLength x queryBlock` scores of a run of items.
        let runScores: UnsafeMutablePointer<Float>
        /// Per item of a run, whether any query's score may enter its top n.
        let runFlags: UnsafeMutablePointer<UInt8>
    }

    /// `queryBlock x d` queries of the current block (absent ones zero).
    let block: FallibleBuffer<Float>
    /// `h x queryBlock` projections `decoder_w @ q` of the block's queries.
    let projections: FallibleBuffer<Float>
    private let limits: FallibleBuffer<SIMD8<Float>>
    private let runScores: FallibleBuffer<Float>
    private let runFlags: FallibleBuffer<UInt8>

    /// - Throws: `invalidArgument` when a size overflows, `outOfMemory` when
    ///   a buffer cannot be allocated.
    /// - Complexity: O(1) (nothing is initialised).
    init(workers: Int, d: Int, h: Int) throws(CompresSAEError) {
        let qb = Self.queryBlock, what = "the reconstructed search's scratch"
        block = try FallibleBuffer(count: try Size.product(qb, d, what: "a query block"), "a block of queries")
        projections = try FallibleBuffer(count: try Size.product(h, qb, what: "query projections"),
                                         "the queries' projections")
        limits = try FallibleBuffer(count: try Size.product(workers, qb / Self.lanes, what: what), what)
        runScores = try FallibleBuffer(count: try Size.product(workers, Self.runLength, qb, what: what), what)
        runFlags = try FallibleBuffer(count: try Size.product(workers, Self.runLength, what: what), what)
    }

    /// The slices of worker `w`.
    ///
    /// - Complexity: O(1).
    @inline(__always)
    func worker(_ w: Int) -> Worker {
        let qb = Self.queryBlock
        return Worker(limits: limits.base + w * (qb / Self.lanes), runScores: runScores.base + w * Self.runLength * qb,
                      runFlags: runFlags.base + w * Self.runLength)
    }
}
