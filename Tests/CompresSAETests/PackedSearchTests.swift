import Testing
@testable import CompresSAE

/// The packed storages' sparse search (level sums scattered per tile, the
/// item scales applied in the threshold scan) against brute-force cosine over
/// the dequantised codes, on an index of several search tiles with long
/// posting lists, so that every path of the kernels runs: 4-bit lists that
/// start in a byte's high nibble, 8-bit lists of 8 entries at a time and
/// their tails, the first tile's floor sample, and the scaled scan of the
/// later tiles.
@Suite("Packed search")
struct PackedSearchTests {
    static let h = 64, k = 8, items = 2 * SparseIndex.searchTile + 1500

    /// A sparse-mode index of `storage` over `codes`, added in two parts
    /// (the second pending until the first search).
    static func index(_ codes: SparseCodes, storage: SparseIndex.Storage) throws -> SparseIndex {
        let model = try CompresSAEModel(inputDim: 16, latentDim: h, k: k, seed: 3)
        let index = try SparseIndex(model: model, mode: .sparse, storage: storage)
        let split = codes.rows / 3
        try index.add(indices: Array(codes.indices[..<(split * k)]), values: Array(codes.values[..<(split * k)]),
                      rows: split, k: k)
        _ = try index.search(indices: Array(codes.indices[..<k]), values: Array(codes.values[..<k]), rows: 1, k: k, n: 3)
        try index.add(indices: Array(codes.indices[(split * k)...]), values: Array(codes.values[(split * k)...]),
                      rows: codes.rows - split, k: k)
        return index
    }

    static func dense(_ c: SparseCodes, _ i: Int) -> [Double] {
        var v = [Double](repeating: 0, count: c.dim)
        for t in 0..<c.k { v[Int(c.indices[i * c.k + t])] = Double(c.values[i * c.k + t]) }
        return v
    }

    @Test("packed sparse search ranks like brute force over the dequantised codes",
          arguments: [SparseIndex.Storage.packed8, .packed4], [10, 400])
    func rankingMatchesDequantised(storage: SparseIndex.Storage, n: Int) throws {
        let codes = randomCodes(rows: Self.items, k: Self.k, h: Self.h, seed: 21)
        let dequantised = try codes.packed(bits: storage.levelBits!).unpack()
        let index = try Self.index(codes, storage: storage)
        #expect(index.count == Self.items)
        let itemVectors = (0..<Self.items).map { Self.dense(dequantised, $0) }
        // k-code queries, and queries of 4k nonzeros (more lists per tile).
        for queryK in [Self.k, 4 * Self.k] {
            let queries = randomCodes(rows: 12, k: queryK, h: Self.h, seed: UInt64(100 + queryK))
            let results = try index.search(queries, n: n)
            let truth = bruteForceTopN(scores: (0..<queries.rows).map { q in
                let qv = Self.dense(queries, q)
                return itemVectors.map { cosine(qv, $0) }
            }, n: n)
            expectMatches(scores: results.scores, ids: results.ids, truth: truth, n: n, tolerance: 1e-5)
        }
    }

    @Test("packed sparse search returns the standard storage's ranking of the dequantised codes",
          arguments: [SparseIndex.Storage.packed8, .packed4])
    func sameAsStandardOverDequantised(storage: SparseIndex.Storage) throws {
        let codes = randomCodes(rows: Self.items, k: Self.k, h: Self.h, seed: 5)
        let packed = try Self.index(codes, storage: storage)
        let standard = try Self.index(try codes.packed(bits: storage.levelBits!).unpack(), storage: .standard)
        let queries = randomCodes(rows: 40, k: Self.k, h: Self.h, seed: 6)
        let n = 50
        let a = try packed.search(queries, n: n), b = try standard.search(queries, n: n)
        let truth = (0..<queries.rows).map { q in
            (0..<n).map { r in (Double(b.scores[q * n + r]), Int(b.ids[q * n + r])) }
        }
        expectMatches(scores: a.scores, ids: a.ids, truth: truth, n: n, tolerance: 1e-5)
    }

    @Test("a query without shared latents scores every item 0")
    func zeroScores() throws {
        // Items use latents below 32 only; the query's latents are all above.
        let codes = randomCodes(rows: SparseIndex.searchTile + 10, k: 4, h: 32, seed: 9)
        for storage in [SparseIndex.Storage.packed8, .packed4] {
            let model = try CompresSAEModel(inputDim: 16, latentDim: Self.h, k: 4, seed: 3)
            let index = try SparseIndex(model: model, mode: .sparse, storage: storage)
            try index.add(indices: codes.indices, values: codes.values, rows: codes.rows, k: 4)
            let results = try index.search(indices: [40, 41, 50, 63], values: [1, -2, 3, 0.5], rows: 1, k: 4, n: 5)
            #expect(results.scores.allSatisfy { $0 == 0 }, "storage \(storage)")
            #expect(Set(results.ids).count == 5 && results.ids.allSatisfy { $0 >= 0 && $0 < codes.rows },
                    "storage \(storage)")
        }
    }
}
