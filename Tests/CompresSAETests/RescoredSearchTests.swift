import Dispatch
import Glibc
import Testing
@testable import CompresSAE

/// Reconstructed mode's rescored search (`candidates:`): with a pool that
/// holds every item it must give the exhaustive search's results bit for
/// bit, in every storage, for dense and code queries, on an index of
/// several search tiles, with items added before and after the candidate
/// lists were built, and after a save and load (which keeps no lists). An
/// odd k puts the 4-bit rows' last level in a half-used byte.
@Suite("Rescored search")
struct RescoredSearchTests {
    static let d = 24, h = 128, k = 7, items = 2 * SparseIndex.searchTile + 700

    static func model() throws -> CompresSAEModel {
        try CompresSAEModel(inputDim: d, latentDim: h, k: k, seed: 11)
    }

    static func denseRows(_ rows: Int, seed: UInt64) -> [Float] {
        var rng = SeededGenerator(seed: seed)
        return (0..<(rows * d)).map { _ in Float.random(in: -1...1, using: &rng) }
    }

    /// Results of both searches, which must be equal.
    static func expectSame(_ a: SearchResults, _ b: SearchResults,
                           _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(a.ids == b.ids, "\(what): ids", sourceLocation: sourceLocation)
        #expect(a.scores == b.scores, "\(what): scores", sourceLocation: sourceLocation)
    }

    @Test("a pool of every item gives the exhaustive results exactly",
          arguments: [SparseIndex.Storage.standard, .compact, .packed8, .packed4])
    func fullPoolIsExhaustive(storage: SparseIndex.Storage) throws {
        let model = try Self.model()
        let index = try SparseIndex(model: model, mode: .reconstructed, storage: storage)
        let codes = randomCodes(rows: Self.items, k: Self.k, h: Self.h, seed: 4)
        let split = Self.items / 2
        try index.add(indices: Array(codes.indices[..<(split * Self.k)]), values: Array(codes.values[..<(split * Self.k)]),
                      rows: split, k: Self.k)
        let queries = Self.denseRows(70, seed: 8)
        let bytesBefore = index.nbytes
        // The first rescored search builds the lists from the rows added so far.
        Self.expectSame(try index.search(dense: queries, rows: 70, n: 30, candidates: split),
                        try index.search(dense: queries, rows: 70, n: 30), "\(storage), half the items")
        #expect(index.nbytes > bytesBefore)
        // Later adds join the lists.
        try index.add(indices: Array(codes.indices[(split * Self.k)...]), values: Array(codes.values[(split * Self.k)...]),
                      rows: Self.items - split, k: Self.k)
        for threads in [1, 2] {
            Self.expectSame(try index.search(dense: queries, rows: 70, n: 30, candidates: Self.items, numThreads: threads),
                            try index.search(dense: queries, rows: 70, n: 30, numThreads: threads),
                            "\(storage), all items, \(threads) threads")
        }
        let queryCodes = randomCodes(rows: 9, k: 5, h: Self.h, seed: 12)
        Self.expectSame(try index.search(queryCodes, n: 12, candidates: Self.items + 50),
                        try index.search(queryCodes, n: 12), "\(storage), code queries")
    }

    @Test("a smaller pool returns exact scores of items it found, best first")
    func smallPoolScoresAreExact() throws {
        let model = try Self.model()
        let index = try SparseIndex(model: model, mode: .reconstructed)
        let codes = randomCodes(rows: Self.items, k: Self.k, h: Self.h, seed: 6)
        try index.add(codes)
        let queries = Self.denseRows(20, seed: 9)
        let n = 10
        let exhaustive = try index.search(dense: queries, rows: 20, n: Self.items)
        let rescored = try index.search(dense: queries, rows: 20, n: n, candidates: 200)
        var found = 0
        for q in 0..<20 {
            var exact: [Int64: Float] = [:]
            for r in 0..<Self.items { exact[exhaustive.ids[q * Self.items + r]] = exhaustive.scores[q * Self.items + r] }
            for r in 0..<n {
                let id = rescored.ids[q * n + r]
                #expect(rescored.scores[q * n + r] == exact[id], "query \(q) rank \(r)")
                if r > 0 { #expect(rescored.scores[q * n + r - 1] >= rescored.scores[q * n + r]) }
            }
            let truth = Set(exhaustive.ids[(q * Self.items)..<(q * Self.items + n)])
            found += Set(rescored.ids[(q * n)..<((q + 1) * n)]).intersection(truth).count
        }
        // Random codes are the hard case (no structure for the probes to
        // find); the pool still holds most of the true top 10.
        #expect(found >= 20 * n / 2, "found \(found) of \(20 * n)")
    }

    @Test("a saved and loaded index searches with candidates; the file holds no lists")
    func saveAndLoad() throws {
        let model = try Self.model()
        let index = try SparseIndex(model: model, mode: .reconstructed, storage: .compact)
        try index.add(randomCodes(rows: 3000, k: Self.k, h: Self.h, seed: 2))
        let queries = Self.denseRows(5, seed: 3)
        let before = try index.search(dense: queries, rows: 5, n: 7, candidates: 3000)
        let bytesWithLists = index.nbytes
        let path = "/tmp/csae-rescored-\(UInt32.random(in: 0...UInt32.max)).csae"
        defer { _ = path.withCString { unlink($0) } }
        try index.save(to: path)
        let loaded = try SparseIndex.load(from: path, model: model)
        #expect(loaded.nbytes < bytesWithLists)
        Self.expectSame(try loaded.search(dense: queries, rows: 5, n: 7, candidates: 3000), before, "loaded")
    }

    @Test("rescored searches racing adds read one state: every id found was added, once; a full pool then equals the exhaustive search",
          .timeLimit(.minutes(5)))
    func searchesRaceAdds() throws {
        let model = try Self.model()
        let codes = randomCodes(rows: 4000, k: Self.k, h: Self.h, seed: 13)
        let queries = Self.denseRows(3, seed: 14)
        for storage in [SparseIndex.Storage.standard, .packed4] {
            let index = try SparseIndex(model: model, mode: .reconstructed, storage: storage)
            let box = UnsafeSendableBox(index)
            let group = DispatchGroup()
            let failures = LockedBox([String]())
            DispatchQueue.global().async(group: group) {
                for b in 0..<20 {
                    let rows = (b * 200)..<((b + 1) * 200)
                    do {
                        try box.value.add(indices: Array(codes.indices[(rows.lowerBound * Self.k)..<(rows.upperBound * Self.k)]),
                                       values: Array(codes.values[(rows.lowerBound * Self.k)..<(rows.upperBound * Self.k)]),
                                       rows: 200, k: Self.k)
                    } catch {
                        failures.withLock { $0.append("\(error)") }
                    }
                }
            }
            for _ in 0..<30 {
                let results = try index.search(dense: queries, rows: 3, n: 20, candidates: 300)
                for q in 0..<3 {
                    let ids = results.ids[(q * results.n)..<((q + 1) * results.n)]
                    #expect(ids.allSatisfy { $0 >= 0 && $0 < 4000 } && Set(ids).count == ids.count, "\(storage)")
                }
            }
            group.wait()
            #expect(failures.withLock { $0 }.isEmpty)
            Self.expectSame(try index.search(dense: queries, rows: 3, n: 20, candidates: 4000),
                            try index.search(dense: queries, rows: 3, n: 20), "\(storage) after the race")
        }
    }

    @Test("a model trained after the adds: the rescored search is refused and builds no lists")
    func staleModel() throws {
        let model = try Self.model()
        let index = try SparseIndex(model: model, mode: .reconstructed)
        try index.add(randomCodes(rows: 300, k: Self.k, h: Self.h, seed: 15))
        let bytes = index.nbytes
        let x = Self.denseRows(64, seed: 16)
        var options = TrainingOptions.reference
        options.epochs = 1
        options.batchSize = 64
        try model.train(x, rows: 64, options: options)
        #expect(throws: CompresSAEError.self) { try index.search(dense: x, rows: 2, n: 5, candidates: 10) }
        #expect(index.nbytes == bytes)
    }

    @Test("candidates below 1 are refused; sparse mode ignores them; an empty index gives nothing")
    func arguments() throws {
        let model = try Self.model()
        let index = try SparseIndex(model: model, mode: .reconstructed)
        let queries = Self.denseRows(2, seed: 1)
        #expect(try index.search(dense: queries, rows: 2, n: 5, candidates: 10).ids.isEmpty)
        try index.add(randomCodes(rows: 50, k: Self.k, h: Self.h, seed: 1))
        #expect(throws: CompresSAEError.self) { try index.search(dense: queries, rows: 2, n: 5, candidates: 0) }
        #expect(throws: CompresSAEError.self) { try index.search(dense: queries, rows: 2, n: 5, candidates: -3) }
        let sparse = try SparseIndex(model: model, mode: .sparse)
        try sparse.add(randomCodes(rows: 50, k: Self.k, h: Self.h, seed: 1))
        Self.expectSame(try sparse.search(dense: queries, rows: 2, n: 5, candidates: 3),
                        try sparse.search(dense: queries, rows: 2, n: 5), "sparse mode")
    }

    @Test("the candidate pool keeps exactly the best pairs (many ties, several cuts)")
    func candidatePool() throws {
        var rng = SeededGenerator(seed: 5)
        for capacity in [1, 7, 64, 300, 1000] {
            var pool = try CandidatePool(capacity: capacity)
            // Few distinct scores: ties are decided by the lower id.
            let scores = (0..<20_000).map { _ in Float(Int.random(in: 0..<40, using: &rng)) / 4 }
            for (id, score) in scores.enumerated() { pool.offer(score, Int64(id)) }
            pool.finish()
            let kept = (0..<pool.count).map { pool.pair($0) }.sorted { $0.score > $1.score || ($0.score == $1.score && $0.id < $1.id) }
            let truth = scores.enumerated().sorted { $0.element > $1.element || ($0.element == $1.element && $0.offset < $1.offset) }
                .prefix(capacity)
            #expect(kept.map(\.id) == truth.map { Int64($0.offset) }, "capacity \(capacity)")
        }
    }
}
