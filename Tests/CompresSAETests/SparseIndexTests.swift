import Testing
@testable import CompresSAE

/// Brute-force cosine top-n in Double: the ground truth for exactness tests.
func bruteForceTopN(scores: [[Double]], n: Int) -> [[(Double, Int)]] {
    scores.map { row -> [(Double, Int)] in
        let pairs: [(Double, Int)] = row.enumerated().map { ($0.element, $0.offset) }
        let sorted = pairs.sorted { (a: (Double, Int), b: (Double, Int)) -> Bool in
            a.0 > b.0 || (a.0 == b.0 && a.1 < b.1)
        }
        return Array(sorted.prefix(n))
    }
}

func cosine(_ a: [Double], _ b: [Double]) -> Double {
    let dot = zip(a, b).reduce(0) { $0 + $1.0 * $1.1 }
    let na = a.reduce(0) { $0 + $1 * $1 }.squareRoot(), nb = b.reduce(0) { $0 + $1 * $1 }.squareRoot()
    return na == 0 || nb == 0 ? 0 : dot / (na * nb)
}

/// Checks a search result against brute force: scores within `tolerance`,
/// and ids equal wherever the true scores are separated by more than it.
func expectMatches(scores: [Float], ids: [Int64], truth: [[(Double, Int)]], n: Int, tolerance: Double,
                   sourceLocation: SourceLocation = #_sourceLocation) {
    for (q, expected) in truth.enumerated() {
        for r in 0..<n {
            let score = Double(scores[q * n + r])
            #expect(abs(score - expected[r].0) <= tolerance, "query \(q) rank \(r): \(score) vs \(expected[r].0)", sourceLocation: sourceLocation)
            let separated = (r == 0 || expected[r - 1].0 - expected[r].0 > tolerance)
                && (r == n - 1 || expected[r].0 - expected[r + 1].0 > tolerance)
            if separated {
                #expect(Int(ids[q * n + r]) == expected[r].1, "query \(q) rank \(r)", sourceLocation: sourceLocation)
            }
        }
    }
}

@Suite("Sparse index")
struct SparseIndexTests {
    static func setup() throws -> (CompresSAEModel, [Float], [Float], Int) {
        let (x, d) = try Fixtures.realEmbeddings(rows: 1200)
        let model = try CompresSAEModel(inputDim: d, latentDim: 512, k: 16, seed: 4)
        var options = TrainingOptions.reference
        options.batchSize = 200
        try model.train(Array(x[..<(1000 * d)]), rows: 1000, options: options)
        return (model, Array(x[..<(1000 * d)]), Array(x[(1000 * d)...]), d)
    }

    @Test("sparse mode ranks exactly like brute-force cosine over the codes", arguments: [1, 2])
    func sparseExact(threads: Int) throws {
        let (model, items, queries, _) = try Self.setup()
        let index = try SparseIndex(model: model, mode: .sparse)
        let itemCodes = try model.encode(items, rows: 1000)
        // Two adds: the second lands in the pending buffer and is merged at search.
        try itemCodes.indices.withUnsafeBufferPointer { ib in
            try itemCodes.values.withUnsafeBufferPointer { vb in
                try index.add(indices: UnsafeBufferPointer(rebasing: ib[..<(600 * 16)]),
                              values: UnsafeBufferPointer(rebasing: vb[..<(600 * 16)]), rows: 600, k: 16)
                try index.add(indices: UnsafeBufferPointer(rebasing: ib[(600 * 16)...]),
                              values: UnsafeBufferPointer(rebasing: vb[(600 * 16)...]), rows: 400, k: 16)
            }
        }
        #expect(index.count == 1000)
        func dense(_ c: SparseCodes, _ i: Int) -> [Double] {
            var v = [Double](repeating: 0, count: c.dim)
            for t in 0..<c.k { v[Int(c.indices[i * c.k + t])] = Double(c.values[i * c.k + t]) }
            return v
        }
        let itemVectors = (0..<1000).map { dense(itemCodes, $0) }
        // Dense queries are encoded with 4k nonzeros by default, or with queryK.
        for (queryK, codeK) in [(nil, 64), (16, 16), (100, 100)] as [(Int?, Int)] {
            let queryCodes = try model.encode(queries, rows: 200, k: codeK)
            let n = 50
            var scores = [Float](repeating: 0, count: 200 * n), ids = [Int64](repeating: 0, count: 200 * n)
            try queries.withUnsafeBufferPointer { qb in
                try scores.withUnsafeMutableBufferPointer { sb in
                    try ids.withUnsafeMutableBufferPointer { ib in
                        _ = try index.search(dense: qb, rows: 200, n: n, queryK: queryK, scores: sb, ids: ib, numThreads: threads)
                    }
                }
            }
            let truth = bruteForceTopN(scores: (0..<200).map { q in
                let qv = dense(queryCodes, q)
                return itemVectors.map { cosine(qv, $0) }
            }, n: n)
            expectMatches(scores: scores, ids: ids, truth: truth, n: n, tolerance: 1e-5)
        }
        var scores = [Float](repeating: 0, count: 10), ids = [Int64](repeating: 0, count: 10)
        for bad in [0, 513] {
            #expect(throws: CompresSAEError.self) {
                try queries.withUnsafeBufferPointer { qb in
                    try scores.withUnsafeMutableBufferPointer { sb in
                        try ids.withUnsafeMutableBufferPointer { ib in
                            try index.search(dense: UnsafeBufferPointer(rebasing: qb[..<384]), rows: 1, n: 10, queryK: bad,
                                             scores: sb, ids: ib)
                        }
                    }
                }
            }
        }
    }

    @Test("reconstructed mode scores equal the cosine of decoded vectors", arguments: [1, 2])
    func reconstructedExact(threads: Int) throws {
        let (model, items, queries, d) = try Self.setup()
        let index = try SparseIndex(model: model, mode: .reconstructed)
        try items.withUnsafeBufferPointer { try index.add(dense: $0, rows: 1000) }
        // Dense rows added to a reconstructed index are encoded with refitted values.
        let decodedItems = try model.decode(try model.encode(items, rows: 1000, refit: true))
        let queryCodes = try model.encode(queries, rows: 200)
        let decodedQueries = try model.decode(queryCodes)
        let n = 40
        var scores = [Float](repeating: 0, count: 200 * n), ids = [Int64](repeating: 0, count: 200 * n)
        try queryCodes.indices.withUnsafeBufferPointer { qi in
            try queryCodes.values.withUnsafeBufferPointer { qv in
                try scores.withUnsafeMutableBufferPointer { sb in
                    try ids.withUnsafeMutableBufferPointer { ib in
                        _ = try index.search(indices: qi, values: qv, rows: 200, k: 16, n: n, scores: sb, ids: ib, numThreads: threads)
                    }
                }
            }
        }
        let row = { (a: [Float], i: Int) in (0..<d).map { Double(a[i * d + $0]) } }
        let itemRows = (0..<1000).map { row(decodedItems, $0) }
        var truth = bruteForceTopN(scores: (0..<200).map { q in
            let qv = row(decodedQueries, q)
            return itemRows.map { cosine(qv, $0) }
        }, n: n)
        expectMatches(scores: scores, ids: ids, truth: truth, n: n, tolerance: 1e-5)

        // Asymmetric: dense queries against decoded items.
        try queries.withUnsafeBufferPointer { qb in
            try scores.withUnsafeMutableBufferPointer { sb in
                try ids.withUnsafeMutableBufferPointer { ib in
                    _ = try index.search(dense: qb, rows: 200, n: n, scores: sb, ids: ib, numThreads: threads)
                }
            }
        }
        truth = bruteForceTopN(scores: (0..<200).map { q in
            let qv = row(queries, q)
            return itemRows.map { cosine(qv, $0) }
        }, n: n)
        expectMatches(scores: scores, ids: ids, truth: truth, n: n, tolerance: 1e-5)
    }

    @Test("items no posting list reaches rank by id between positive and negative scores")
    func zeroScoreFill() throws {
        // d = h = 4 with an identity encoder: codes are the normalised inputs' top-k.
        let identity: [Float] = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]
        let model = try CompresSAEModel(inputDim: 4, latentDim: 4, k: 1, encoderWeights: identity,
                                        encoderBias: [0, 0, 0, 0], decoderWeights: identity)
        let index = try SparseIndex(model: model, mode: .sparse)
        // Items: +e0, +e1, -e0, +e2, +e0.
        let indices: [Int32] = [0, 1, 0, 2, 0], values: [Float] = [1, 1, -1, 1, 2]
        try indices.withUnsafeBufferPointer { ib in
            try values.withUnsafeBufferPointer { try index.add(indices: ib, values: $0, rows: 5, k: 1) }
        }
        var scores = [Float](repeating: 0, count: 7), ids = [Int64](repeating: 0, count: 7)
        try scores.withUnsafeMutableBufferPointer { sb in
            try ids.withUnsafeMutableBufferPointer { ib in
                try [Int32(0)].withUnsafeBufferPointer { qi in
                    try [Float(3)].withUnsafeBufferPointer { qv in
                        _ = try index.search(indices: qi, values: qv, rows: 1, k: 1, n: 7, scores: sb, ids: ib)
                    }
                }
            }
        }
        #expect(ids == [0, 4, 1, 3, 2, -1, -1])
        #expect(scores == [1, 1, 0, 0, -1, -.infinity, -.infinity])
    }

    @Test("massive ties rank by id, with the first tile's sampled floor and across tiles", arguments: [1, 5, 20, 300])
    func tiesAcrossTiles(n: Int) throws {
        // d = h = 8, identity encoder and decoder: codes are written directly.
        var identity = [Float](repeating: 0, count: 64)
        for j in 0..<8 { identity[j * 8 + j] = 1 }
        let model = try CompresSAEModel(inputDim: 8, latentDim: 8, k: 2, encoderWeights: identity,
                                        encoderBias: [Float](repeating: 0, count: 8), decoderWeights: identity)
        // Six codes with well separated cosines to the query; 20,000 items
        // (three search tiles) drawn from them, so every score is tied
        // thousands of times. The best code (cosine 0.99) is every 320th item
        // from id 7: 26 in the first tile, none among the ids the floor
        // samples (multiples of 8), so for small n the floor is the tied
        // second score, which at least n items exceed.
        let palette: [([Int32], [Float])] = [([0, 1], [3, 1]), ([0, 2], [1, 1]), ([1, 3], [2, 1]),
                                             ([4, 5], [1, 1]), ([0, 6], [-1, 2]), ([0, 1], [1, 3])]
        var rng = SeededGenerator(seed: 9)
        let choice = (0..<20_000).map { i in i % 320 == 7 ? 0 : Int.random(in: 1..<palette.count, using: &rng) }
        let indices = choice.flatMap { palette[$0].0 }, values = choice.flatMap { palette[$0].1 }
        for storage in [SparseIndex.Storage.standard, .compact] {
            let index = try SparseIndex(model: model, mode: .sparse, storage: storage)
            try indices.withUnsafeBufferPointer { ib in
                try values.withUnsafeBufferPointer { try index.add(indices: ib, values: $0, rows: 20_000, k: 2) }
            }
            let query: ([Int32], [Float]) = ([0, 1], [2, 1])
            func cosineToQuery(_ code: ([Int32], [Float])) -> Double {
                var dot = 0.0
                for (t, j) in code.0.enumerated() {
                    if let u = query.0.firstIndex(of: j) { dot += Double(code.1[t]) * Double(query.1[u]) }
                }
                let norm = { (v: [Float]) in v.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot() }
                return dot / (norm(code.1) * norm(query.1))
            }
            let truth = bruteForceTopN(scores: [choice.map { cosineToQuery(palette[$0]) }], n: n)[0]
            var scores = [Float](repeating: 0, count: n), ids = [Int64](repeating: 0, count: n)
            try scores.withUnsafeMutableBufferPointer { sb in
                try ids.withUnsafeMutableBufferPointer { ib in
                    try query.0.withUnsafeBufferPointer { qi in
                        try query.1.withUnsafeBufferPointer { qv in
                            _ = try index.search(indices: qi, values: qv, rows: 1, k: 2, n: n, scores: sb, ids: ib)
                        }
                    }
                }
            }
            #expect(ids == truth.map { Int64($0.1) }, "storage \(storage)")
            // Compact storage keeps half-precision values: its scores carry their rounding.
            let tolerance = storage == .standard ? 1e-6 : 2e-3
            #expect(zip(scores, truth).allSatisfy { abs(Double($0) - $1.0) < tolerance }, "storage \(storage)")
        }
    }

    @Test("bad queries are refused with a message; an empty index is an empty result")
    func badQueries() throws {
        let (model, items, _, d) = try Self.setup()
        let index = try SparseIndex(model: model, mode: .sparse)
        var scores = [Float](repeating: 0, count: 10), ids = [Int64](repeating: 0, count: 10)
        @discardableResult
        func search(_ q: [Float], rows: Int, n: Int) throws -> Int {
            try q.withUnsafeBufferPointer { qb in
                try scores.withUnsafeMutableBufferPointer { sb in
                    try ids.withUnsafeMutableBufferPointer { ib in
                        try index.search(dense: qb, rows: rows, n: n, scores: UnsafeMutableBufferPointer(rebasing: sb[..<(rows * n)]),
                                         ids: UnsafeMutableBufferPointer(rebasing: ib[..<(rows * n)]))
                    }
                }
            }
        }
        let query = Array(items[..<d])
        #expect(try search(query, rows: 1, n: 5) == 0)
        #expect(ids[..<5].allSatisfy { $0 == -1 } && scores[..<5].allSatisfy { $0 == -.infinity })
        try items.withUnsafeBufferPointer { try index.add(dense: $0, rows: 1000) }
        try search(query, rows: 1, n: 5)
        #expect(ids[0] == 0)
        #expect(throws: CompresSAEError.self) { try search(query, rows: 1, n: 0) }
        #expect(throws: CompresSAEError.self) { try search(Array(query.dropLast()), rows: 1, n: 5) }
        var nan = query
        nan[3] = .nan
        let error = #expect(throws: CompresSAEError.self) { try search(nan, rows: 1, n: 5) }
        #expect(error?.message.contains("column 3") == true)
        // Retraining the model invalidates codes already in the index.
        var options = TrainingOptions.reference
        options.batchSize = 500
        try model.train(items, rows: 1000, options: options)
        let stale = #expect(throws: CompresSAEError.self) { try search(query, rows: 1, n: 5) }
        #expect(stale?.message.contains("trained after") == true)
    }
}

@Suite("Index files")
struct IndexPersistenceTests {
    func results(_ index: SparseIndex, _ queries: [Float], rows: Int, n: Int) throws -> ([Float], [Int64]) {
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

    @Test("save and load give identical results in every mode and storage")
    func roundTrip() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let (x, d) = try Fixtures.realEmbeddings(rows: 700)
        let model = try CompresSAEModel(inputDim: d, latentDim: 512, k: 8, seed: 1)
        let items = Array(x[..<(600 * d)]), queries = Array(x[(600 * d)...])
        for mode in [SparseIndex.Mode.sparse, .reconstructed] {
            for storage in [SparseIndex.Storage.standard, .compact, .packed8, .packed4] {
                let index = try SparseIndex(model: model, mode: mode, storage: storage)
                try items.withUnsafeBufferPointer { try index.add(dense: $0, rows: 600) }
                let before = try results(index, queries, rows: 100, n: 20)
                let path = dir.file("\(mode.name)-\(storage.name).safetensors")
                try index.save(to: path)
                let loaded = try SparseIndex.load(from: path, model: model)
                #expect(loaded.count == 600 && loaded.k == 8 && loaded.mode == mode && loaded.storage == storage)
                #expect(loaded.nbytes == index.nbytes)
                let after = try results(loaded, queries, rows: 100, n: 20)
                #expect(before.1 == after.1, "\(mode) \(storage)")
                #expect(before.0 == after.0, "\(mode) \(storage)")
                // Sparse mode's structure: list starts (8 B per latent + 1) and, per
                // latent and 8192-item tile (one here), where the tile starts and ends (2 x 4 B).
                let bytesPerNonzero = Double(index.nbytes - (mode == .sparse ? 8 * 513 + 4 * 512 * 2 : 0)) / Double(600 * 8)
                let expected: Double = switch (mode, storage) {
                // Sparse: 16-bit tile-relative item id + float32 / float16 value.
                case (.sparse, .standard): 6
                case (.sparse, .compact): 4
                case (.reconstructed, .standard): 8
                case (.reconstructed, .compact): 4
                // 16-bit index or item id + a level, and 4 B per item (8 nonzeros).
                case (_, .packed8): 3 + 0.5
                case (_, .packed4): 2.5 + 0.5
                }
                #expect(bytesPerNonzero == expected, "\(mode) \(storage)")
            }
        }
    }

    @Test("an index is refused with another model's weights, or when damaged")
    func refused() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let (x, d) = try Fixtures.realEmbeddings(rows: 100)
        let model = try CompresSAEModel(inputDim: d, latentDim: 256, k: 4, seed: 1)
        let index = try SparseIndex(model: model, mode: .sparse)
        try x.withUnsafeBufferPointer { try index.add(dense: $0, rows: 100) }
        try index.save(to: dir.file("i.safetensors"))
        let other = try CompresSAEModel(inputDim: d, latentDim: 256, k: 4, seed: 2)
        let error = #expect(throws: CompresSAEError.self) { try SparseIndex.load(from: dir.file("i.safetensors"), model: other) }
        #expect(error?.message.contains("different model") == true)
        // A model file is not an index file.
        try model.save(to: dir.file("m.safetensors"))
        #expect(throws: CompresSAEError.self) { try SparseIndex.load(from: dir.file("m.safetensors"), model: model) }
        // Truncation is caught by the container checks.
        let bytes = try readBytes(dir.file("i.safetensors"))
        try writeBytes(Array(bytes.prefix(bytes.count - 3)), to: dir.file("t.safetensors"))
        #expect(throws: CompresSAEError.self) { try SparseIndex.load(from: dir.file("t.safetensors"), model: model) }
    }
}
