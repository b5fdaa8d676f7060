/// The results of a search: `rows` queries by `n` columns, best first.
public struct SearchResults: Sendable, Equatable {
    /// Number of queries.
    public let rows: Int
    /// Results per query.
    public let n: Int
    /// `rows * n` cosines, row-major; `-inf` where the index has fewer than `n` items.
    public var scores: [Float]
    /// `rows * n` item ids (insertion order), row-major; `-1` as padding.
    public var ids: [Int64]

    public init(rows: Int, n: Int, scores: [Float], ids: [Int64]) {
        self.rows = rows
        self.n = n
        self.scores = scores
        self.ids = ids
    }

    /// The ids of query `row`, best first (padding included).
    public func ids(ofQuery row: Int) -> ArraySlice<Int64> { ids[(row * n)..<((row + 1) * n)] }

    /// The scores of query `row`, best first.
    public func scores(ofQuery row: Int) -> ArraySlice<Float> { scores[(row * n)..<((row + 1) * n)] }
}

// Array forms of the index's buffer-pointer API: the same checks and
// results, with the outputs allocated and returned.
extension SparseIndex {
    /// Adds codes from `CompresSAEModel.encode` (see `add(indices:values:rows:k:)`).
    ///
    /// - Complexity: as `add(indices:values:rows:k:)`, O(rows k) in sparse mode.
    public func add(_ codes: SparseCodes) throws {
        guard codes.dim == model.latentDim else {
            throw CompresSAEError.invalid(
                "the codes have dimension \(codes.dim); the index's model has \(model.latentDim) latents")
        }
        try add(indices: codes.indices, values: codes.values, rows: codes.rows, k: codes.k)
    }

    /// Adds `rows` codes of `k` nonzeros each, given as flat row-major arrays.
    ///
    /// - Complexity: as `add(indices:values:rows:k:)`.
    public func add(indices: [Int32], values: [Float], rows: Int, k: Int) throws {
        try indices.withUnsafeBufferPointer { ib in
            try values.withUnsafeBufferPointer { vb in try add(indices: ib, values: vb, rows: rows, k: k) }
        }
    }

    /// Encodes `rows` dense rows (a flat row-major array of `rows * d`
    /// floats) with the model and adds their codes.
    ///
    /// - Complexity: O(rows d h) for the encoding, then as `add(indices:values:rows:k:)`.
    public func add(dense x: [Float], rows: Int, numThreads threads: Int = 0) throws {
        try x.withUnsafeBufferPointer { try add(dense: $0, rows: rows, numThreads: threads) }
    }

    /// Searches with dense queries (a flat row-major array of `rows * d`
    /// floats); see `search(dense:rows:n:queryK:candidates:scores:ids:numThreads:)`.
    /// `n` is capped at the number of items, so the results hold no padding
    /// (an empty index gives `n = 0`).
    ///
    /// - Complexity: as the buffer form.
    public func search(dense queries: [Float], rows: Int, n: Int, queryK: Int? = nil, candidates: Int? = nil,
                       numThreads threads: Int = 0) throws -> SearchResults {
        try InputValidation.checkCount(queries.count, rows: rows, cols: model.inputDim, name: "queries")
        return try withResults(rows: rows, n: n) { scores, ids, columns in
            try queries.withUnsafeBufferPointer {
                try search(dense: $0, rows: rows, n: columns, queryK: queryK, candidates: candidates,
                           scores: scores, ids: ids, numThreads: threads)
            }
        }
    }

    /// Searches with sparse queries given as flat row-major arrays of `rows * k`
    /// entries; see `search(indices:values:rows:k:n:candidates:scores:ids:numThreads:)`.
    /// `n` is capped at the number of items, so the results hold no padding
    /// (an empty index gives `n = 0`).
    ///
    /// - Complexity: as the buffer form.
    public func search(indices: [Int32], values: [Float], rows: Int, k: Int, n: Int, candidates: Int? = nil,
                       numThreads threads: Int = 0) throws -> SearchResults {
        guard k >= 1 else { throw CompresSAEError.invalid("k must be >= 1, got \(k)") }
        try InputValidation.checkCount(indices.count, rows: rows, cols: k, name: "query indices")
        return try withResults(rows: rows, n: n) { scores, ids, columns in
            try indices.withUnsafeBufferPointer { ib in
                try values.withUnsafeBufferPointer { vb in
                    try search(indices: ib, values: vb, rows: rows, k: k, n: columns, candidates: candidates,
                               scores: scores, ids: ids, numThreads: threads)
                }
            }
        }
    }

    /// Searches with codes from `CompresSAEModel.encode`.
    ///
    /// - Complexity: as `search(indices:values:rows:k:n:candidates:scores:ids:numThreads:)`.
    public func search(_ codes: SparseCodes, n: Int, candidates: Int? = nil,
                       numThreads threads: Int = 0) throws -> SearchResults {
        guard codes.dim == model.latentDim else {
            throw CompresSAEError.invalid(
                "the codes have dimension \(codes.dim); the index's model has \(model.latentDim) latents")
        }
        return try search(indices: codes.indices, values: codes.values, rows: codes.rows, k: codes.k, n: n,
                          candidates: candidates, numThreads: threads)
    }

    /// Allocates `rows x min(n, count)` results (bounded by the queries,
    /// whose count the caller has checked, and the index, never by `n`
    /// alone), fills them with `body` (which returns the result count) and
    /// keeps the columns that hold results.
    private func withResults(
        rows: Int, n: Int,
        _ body: (UnsafeMutableBufferPointer<Float>, UnsafeMutableBufferPointer<Int64>, Int) throws -> Int
    ) throws -> SearchResults {
        try InputValidation.checkRowCount(rows)
        guard n >= 1 else { throw CompresSAEError.invalid("n must be >= 1, got \(n)") }
        // An empty index still gets one column: the queries are checked as for any search.
        let columns = max(1, min(n, count))
        let (total, overflow) = rows.multipliedReportingOverflow(by: columns)
        guard !overflow, total <= Int(Int32.max) else {
            throw CompresSAEError(.outOfMemory, "\(rows) x \(columns) search results are too many to return")
        }
        var scores = [Float](repeating: 0, count: total)
        var ids = [Int64](repeating: 0, count: total)
        let found = try scores.withUnsafeMutableBufferPointer { sb in
            try ids.withUnsafeMutableBufferPointer { ib in try body(sb, ib, columns) }
        }
        guard found < columns else { return SearchResults(rows: rows, n: columns, scores: scores, ids: ids) }
        // Fewer items than a snapshot of the count said (0 for an empty index): drop the padding.
        let kept = (0..<rows).flatMap { r in (r * columns)..<(r * columns + found) }
        return SearchResults(rows: rows, n: found, scores: kept.map { scores[$0] }, ids: kept.map { ids[$0] })
    }
}
