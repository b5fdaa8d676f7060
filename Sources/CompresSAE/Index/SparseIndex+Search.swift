// The search entry points: argument checks, query preparation, and the
// locking that gives each search one state of the index. The kernels are in
// SparseIndex+SparseSearch.swift and SparseIndex+ReconstructedSearch.swift.

extension SparseIndex {
    /// Nonzeros of a dense query's code in sparse mode per nonzero of the
    /// items' codes, by default: the top-4k code of the training objective.
    static let defaultQueryKFactor = 4

    /// Searches with dense queries `[rows, d]`: encoded with the model in
    /// sparse mode; used as they are in reconstructed mode (asymmetric search).
    ///
    /// In sparse mode a query's code may hold more nonzeros than the items'
    /// (`queryK`): items stay at `k` (their bytes), while the query keeps more
    /// of its direction. The default, `4k`, is the code the training objective
    /// also reconstructs from (its top-4k term), and it ranks closer to the
    /// dense cosine for about twice the search time (docs/quality.md,
    /// docs/performance.md). `queryK = k` is docs/maths.md's symmetric mode.
    ///
    /// - Parameters:
    ///   - queries: `rows * d` floats; finite, no all-zero row.
    ///   - n: results per query, `>= 1`.
    ///   - queryK: nonzeros of the query codes in sparse mode, `1...h`;
    ///     `nil` for `min(h, 4k)`. Ignored in reconstructed mode.
    ///   - candidates: reconstructed mode: `nil` scores every item; a count
    ///     `>= 1` scores only that many candidates exactly (at least `n`),
    ///     found through posting lists of the rows
    ///     (`searchRescored`; the lists are built at the first such search and
    ///     add about as many bytes again as the rows). Ignored in sparse mode.
    ///   - scores: receives `rows * n` cosines (rows of `n`), best first;
    ///     `-inf` in the columns past the result count.
    ///   - ids: receives `rows * n` item ids (insertion order); `-1` in the
    ///     columns past the result count.
    /// - Returns: the results per query, `min(n, items searched)`: 0 for an
    ///   empty index, which is an empty result rather than an error.
    /// - Complexity: sparse mode: the encoding, O(rows d h), then per query
    ///   O(sum of its posting-list lengths + count); reconstructed mode:
    ///   O(rows d h / 64) for the projections plus O(rows count k), or with
    ///   `candidates` per query O(h + the probed lists' lengths + count +
    ///   candidates k).
    @discardableResult
    public func search(
        dense queries: UnsafeBufferPointer<Float>, rows: Int, n: Int, queryK: Int? = nil, candidates: Int? = nil,
        scores: UnsafeMutableBufferPointer<Float>, ids: UnsafeMutableBufferPointer<Int64>, numThreads threads: Int = 0
    ) throws -> Int {
        let d = model.inputDim, h = model.latentDim
        if let queryK, queryK < 1 || queryK > h {
            throw CompresSAEError.invalid("query_k must be in 1...\(h) (the latent dimension), got \(queryK)")
        }
        try Self.checkCandidates(candidates)
        try InputValidation.checkRowCount(rows)
        try InputValidation.checkCount(queries.count, rows: rows, cols: d, name: "queries")
        try checkOutputs(rows: rows, n: n, scores: scores, ids: ids)
        try InputValidation.checkRows(queries.baseAddress!, rows: rows, dim: d, what: "query")
        switch mode {
        case .sparse:
            guard let itemK = k else { return SearchOutput.empty(scores, ids) }
            let kk = queryK ?? min(h, Self.defaultQueryKFactor * itemK)
            let count = try Size.product(rows, kk, what: "query codes")
            let indices = try FallibleBuffer<Int32>(count: count, "the query codes' indices")
            let values = try FallibleBuffer<Float>(count: count, "the query codes' values")
            // The queries' weights version needs no check of its own: versions
            // only rise, so codes made before `checkSearchable` passes belong
            // to the version the index's items were made with.
            try model.encode(queries, rows: rows, k: kk, indices: indices.buffer, values: values.buffer, numThreads: threads)
            return try withMergedPostings(ifEmpty: { SearchOutput.empty(scores, ids) }) {
                try searchSparse(indices: indices.base, values: values.base, rows: rows, k: kk, n: n,
                                 scores: scores.baseAddress!, ids: ids.baseAddress!, threads: threads)
            }
        case .reconstructed:
            let unit = try FallibleBuffer<Float>(count: try Size.product(rows, d, what: "queries"), "the normalised queries")
            normalizeRows(queries.baseAddress!, rows: rows, dim: d, into: unit.base)
            return try searchReconstructed(unitQueries: unit, rows: rows, n: n, candidates: candidates,
                                           scores: scores, ids: ids, threads: threads)
        }
    }

    /// Searches with sparse queries (`rows` codes of `k` nonzeros; `k` may
    /// differ from the index's). In reconstructed mode the queries are decoded
    /// first. Outputs and result count as the dense form.
    ///
    /// - Complexity: as the dense form without the encoding; reconstructed
    ///   mode adds O(rows k d) for the decoding.
    @discardableResult
    public func search(
        indices: UnsafeBufferPointer<Int32>, values: UnsafeBufferPointer<Float>, rows: Int, k: Int, n: Int,
        candidates: Int? = nil,
        scores: UnsafeMutableBufferPointer<Float>, ids: UnsafeMutableBufferPointer<Int64>, numThreads threads: Int = 0
    ) throws -> Int {
        let d = model.inputDim, h = model.latentDim
        try Self.checkCandidates(candidates)
        try InputValidation.checkRowCount(rows)
        guard k >= 1 && k <= h else { throw CompresSAEError.invalid("k must be in 1...\(h), got \(k)") }
        try InputValidation.checkCount(indices.count, rows: rows, cols: k, name: "query indices")
        try InputValidation.checkCount(values.count, rows: rows, cols: k, name: "query values")
        try checkOutputs(rows: rows, n: n, scores: scores, ids: ids)
        try Self.validateCodes(indices: indices.baseAddress!, values: values.baseAddress!, rows: rows, k: k,
                               latentDim: h, what: "query")
        switch mode {
        case .sparse:
            return try withMergedPostings(ifEmpty: { SearchOutput.empty(scores, ids) }) {
                try searchSparse(indices: indices.baseAddress!, values: values.baseAddress!, rows: rows, k: k, n: n,
                                 scores: scores.baseAddress!, ids: ids.baseAddress!, threads: threads)
            }
        case .reconstructed:
            let unit = try FallibleBuffer<Float>(count: try Size.product(rows, d, what: "queries"), "the decoded queries")
            try model.decode(indices: indices, values: values, rows: rows, k: k, into: unit.buffer, numThreads: threads)
            // A query decoding to zero has no direction: its row stays zero and scores 0 everywhere.
            for i in 0..<rows {
                let row = unit.base + i * d
                let norm = robustNorm(row, d)
                if norm > 0 { for c in 0..<d { row[c] /= norm } }
            }
            return try searchReconstructed(unitQueries: unit, rows: rows, n: n, candidates: candidates,
                                           scores: scores, ids: ids, threads: threads)
        }
    }

    /// Reconstructed mode's search of unit queries: every item scored, or
    /// with `candidates`, the rescored search over the candidate lists.
    ///
    /// - Complexity: as `search(dense:...)` without the normalisation.
    private func searchReconstructed(unitQueries unit: FallibleBuffer<Float>, rows: Int, n: Int, candidates: Int?,
                                     scores: UnsafeMutableBufferPointer<Float>, ids: UnsafeMutableBufferPointer<Int64>,
                                     threads: Int) throws -> Int {
        if let candidates, rows > 0 {
            return try withCandidateLists(ifEmpty: { SearchOutput.empty(scores, ids) }) {
                try searchRescored(unitQueries: unit, rows: rows, n: n, candidates: candidates,
                                   scores: scores.baseAddress!, ids: ids.baseAddress!, threads: threads)
            }
        }
        return try lock.withReadLock {
            guard try checkSearchable() else { return SearchOutput.empty(scores, ids) }
            return try searchReconstructed(unitQueries: unit, rows: rows, n: n,
                                           scores: scores.baseAddress!, ids: ids.baseAddress!, threads: threads)
        }
    }

    // MARK: - Checks

    /// Refuses a candidate count below 1 (`nil`: every item is scored).
    ///
    /// - Complexity: O(1).
    static func checkCandidates(_ candidates: Int?) throws {
        if let candidates, candidates < 1 {
            throw CompresSAEError.invalid("candidates must be >= 1 (or absent, to score every item), got \(candidates)")
        }
    }

    /// Checks `n` and that the output buffers hold `rows * n` slots.
    ///
    /// - Complexity: O(1).
    func checkOutputs(rows: Int, n: Int, scores: UnsafeMutableBufferPointer<Float>,
                      ids: UnsafeMutableBufferPointer<Int64>) throws {
        guard n >= 1 else { throw CompresSAEError.invalid("n must be >= 1, got \(n)") }
        try InputValidation.checkCount(scores.count, rows: rows, cols: n, name: "scores buffer")
        try InputValidation.checkCount(ids.count, rows: rows, cols: n, name: "ids buffer")
    }

    /// Whether the index holds items to search (false: the result is empty);
    /// throws when they are stale. Caller holds the read lock.
    ///
    /// - Complexity: O(1).
    func checkSearchable() throws -> Bool {
        guard state.count > 0 else { return false }
        try checkModelVersion()
        return true
    }

    /// Merges a search tries before it searches the lists as they are
    /// (`withMergedPostings`).
    static let mergeRounds = 4

    /// Runs `body` under the read lock on posting lists that hold every item
    /// added before this call began: items still pending are merged first
    /// (under the write lock), and should adds from other threads land between
    /// that merge and the read lock, the merge is done again. One search thus
    /// reads one state, whatever adds run meanwhile.
    ///
    /// After `mergeRounds` rounds lost to a stream of adds, `body` runs on the lists
    /// as they are (every item added before the call began is in them, the
    /// later ones are not), so that a search cannot starve.
    /// An index without items gives `ifEmpty()` (an empty result, not an error).
    ///
    /// - Complexity: O(1) plus `body`, plus a merge (`mergePending`) per round that finds items pending.
    func withMergedPostings<R>(ifEmpty: () -> R, _ body: () throws -> R) throws -> R {
        var round = 0
        while true {
            let pending = lock.withReadLock { state.pendingCount }
            if pending > 0 { try lock.withWriteLock { try mergePending() } }
            round += 1
            let result: R? = try lock.withReadLock {
                guard try checkSearchable() else { return ifEmpty() }
                let listed = state.count - state.pendingCount
                guard state.pendingCount == 0 || (round >= Self.mergeRounds && listed > 0) else { return nil }
                return try body()
            }
            if let result { return result }
        }
    }
}
