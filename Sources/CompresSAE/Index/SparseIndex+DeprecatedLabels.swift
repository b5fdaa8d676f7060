/// The former `threads:` labels of the index's methods, kept so existing
/// callers still compile (with a warning); C, Python and `TrainingOptions`
/// all name the count `numThreads`.
extension SparseIndex {
    @available(*, deprecated, renamed: "add(dense:rows:numThreads:)")
    public func add(dense x: UnsafeBufferPointer<Float>, rows: Int, threads: Int) throws {
        try add(dense: x, rows: rows, numThreads: threads)
    }

    @available(*, deprecated, renamed: "add(dense:rows:numThreads:)")
    public func add(dense x: [Float], rows: Int, threads: Int) throws {
        try add(dense: x, rows: rows, numThreads: threads)
    }

    @available(*, deprecated, renamed: "search(dense:rows:n:queryK:scores:ids:numThreads:)")
    @discardableResult
    public func search(
        dense queries: UnsafeBufferPointer<Float>, rows: Int, n: Int, queryK: Int? = nil,
        scores: UnsafeMutableBufferPointer<Float>, ids: UnsafeMutableBufferPointer<Int64>, threads: Int
    ) throws -> Int {
        try search(dense: queries, rows: rows, n: n, queryK: queryK, scores: scores, ids: ids, numThreads: threads)
    }

    @available(*, deprecated, renamed: "search(indices:values:rows:k:n:scores:ids:numThreads:)")
    @discardableResult
    public func search(
        indices: UnsafeBufferPointer<Int32>, values: UnsafeBufferPointer<Float>, rows: Int, k: Int, n: Int,
        scores: UnsafeMutableBufferPointer<Float>, ids: UnsafeMutableBufferPointer<Int64>, threads: Int
    ) throws -> Int {
        try search(indices: indices, values: values, rows: rows, k: k, n: n, scores: scores, ids: ids,
                   numThreads: threads)
    }

    @available(*, deprecated, renamed: "search(dense:rows:n:queryK:numThreads:)")
    public func search(dense queries: [Float], rows: Int, n: Int, queryK: Int? = nil,
                       threads: Int) throws -> SearchResults {
        try search(dense: queries, rows: rows, n: n, queryK: queryK, numThreads: threads)
    }

    @available(*, deprecated, renamed: "search(indices:values:rows:k:n:numThreads:)")
    public func search(indices: [Int32], values: [Float], rows: Int, k: Int, n: Int,
                       threads: Int) throws -> SearchResults {
        try search(indices: indices, values: values, rows: rows, k: k, n: n, numThreads: threads)
    }

    @available(*, deprecated, renamed: "search(_:n:numThreads:)")
    public func search(_ codes: SparseCodes, n: Int, threads: Int) throws -> SearchResults {
        try search(codes, n: n, numThreads: threads)
    }
}
