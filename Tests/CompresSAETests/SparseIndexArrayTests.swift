import Testing
@testable import CompresSAE

@Suite("Sparse index: array forms")
struct SparseIndexArrayTests {
    static func rows(_ count: Int, _ d: Int, seed: UInt64) -> [Float] {
        var state = seed
        return (0..<(count * d)).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2001 - 1000) / 1000 + 0.001
        }
    }

    /// The buffer form's results, for comparison.
    static func bufferSearch(_ index: SparseIndex, dense queries: [Float], rows: Int, n: Int) throws -> ([Float], [Int64]) {
        var scores = [Float](repeating: 0, count: rows * n), ids = [Int64](repeating: 0, count: rows * n)
        try queries.withUnsafeBufferPointer { qb in
            try scores.withUnsafeMutableBufferPointer { sb in
                try ids.withUnsafeMutableBufferPointer { ib in
                    _ = try index.search(dense: qb, rows: rows, n: n, scores: sb, ids: ib)
                }
            }
        }
        return (scores, ids)
    }

    @Test("arrays give the buffer form's results", arguments: [SparseIndex.Mode.sparse, .reconstructed])
    func sameAsBuffers(mode: SparseIndex.Mode) throws {
        let d = 24, items = 300, queries = 7
        let model = try CompresSAEModel(inputDim: d, latentDim: 96, k: 6, seed: 2)
        let x = Self.rows(items, d, seed: 1), q = Self.rows(queries, d, seed: 9)
        let byCodes = try SparseIndex(model: model, mode: mode)
        let byDense = try SparseIndex(model: model, mode: mode)
        let codes = try model.encode(x, rows: items)
        try byCodes.add(codes)
        try byDense.add(dense: x, rows: items)
        #expect(byCodes.count == items && byDense.count == items)

        let results = try byCodes.search(dense: q, rows: queries, n: 10)
        let (scores, ids) = try Self.bufferSearch(byCodes, dense: q, rows: queries, n: 10)
        #expect(results.rows == queries && results.n == 10)
        #expect(results.scores == scores && results.ids == ids)
        #expect(Array(results.ids(ofQuery: 3)) == Array(ids[30..<40]))
        if mode == .sparse {
            #expect(try byDense.search(dense: q, rows: queries, n: 10) == results)
        }

        // Sparse queries: each item's own code finds it first.
        let own = try byCodes.search(codes, n: 5)
        #expect(own.rows == items && own.n == 5)
        var ownFound = 0
        for row in 0..<items where own.ids(ofQuery: row).contains(Int64(row)) { ownFound += 1 }
        #expect(ownFound == items)
        let flat = try byCodes.search(indices: codes.indices, values: codes.values, rows: items, k: codes.k, n: 5)
        #expect(flat == own)
    }

    @Test("n is capped at the number of items; bad arguments throw before allocating")
    func limits() throws {
        let d = 16
        let model = try CompresSAEModel(inputDim: d, latentDim: 64, k: 4, seed: 5)
        let index = try SparseIndex(model: model, mode: .sparse)
        let q = Self.rows(2, d, seed: 3)
        let empty = try index.search(dense: q, rows: 2, n: 3)  // an empty index: an empty result
        #expect(empty.rows == 2 && empty.n == 0 && empty.ids.isEmpty && empty.scores.isEmpty)
        try index.add(dense: Self.rows(5, d, seed: 4), rows: 5)
        let results = try index.search(dense: q, rows: 2, n: 1_000_000_000_000)
        #expect(results.n == 5 && results.ids.count == 10 && !results.ids.contains(-1))
        // A row count that disagrees with the array is refused, not allocated.
        #expect(throws: CompresSAEError.self) { try index.search(dense: q, rows: 1 << 40, n: 5) }
        #expect(throws: CompresSAEError.self) {
            try index.search(indices: [1, 2, 3, 4], values: [1, 1, 1, 1], rows: 1 << 40, k: 4, n: 5)
        }
        #expect(throws: CompresSAEError.self) { try index.search(dense: q, rows: 2, n: 0) }
        let other = try CompresSAEModel(inputDim: d, latentDim: 32, k: 4, seed: 5)
        let foreign = try other.encode(q, rows: 2)
        #expect(throws: CompresSAEError.self) { try index.add(foreign) }
        #expect(throws: CompresSAEError.self) { try index.search(foreign, n: 2) }
    }
}
