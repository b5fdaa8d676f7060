import Testing
import Dispatch
import Synchronization
@testable import CompresSAE

/// Rows of `d` floats that are finite and nonzero, from a seed.
private func unitRows(_ n: Int, _ d: Int, seed: UInt64) -> [Float] {
    var rng = SeededGenerator(seed: seed)
    return (0..<(n * d)).map { _ in 2 * rng.nextUnitFloat() - 1 + 1e-3 }
}

/// A sparse-mode search merges pending items into the posting lists and
/// then reads them; an add from another thread may land in between. Each
/// search must read one consistent state (before: a search whose merge found
/// nothing pending, racing the first add, read the never-built posting lists
/// and trapped on their missing storage).
@Suite("Index: adds racing searches")
struct IndexConcurrencyTests {
    @Test("sparse search racing the first adds of fresh indexes: an empty result for an empty index, else consistent results",
          .timeLimit(.minutes(5)))
    func searchRacesFirstAdd() throws {
        let d = 8, h = 32, k = 2
        let model = try CompresSAEModel(inputDim: d, latentDim: h, k: k, seed: 4)
        let items = unitRows(64, d, seed: 6)
        let codes = try model.encode(items, rows: 64)
        let queries = try model.encode(Array(items[0..<(2 * d)]), rows: 2)
        for storage in [SparseIndex.Storage.standard, .compact] {
            for round in 0..<200 {
                let index = try SparseIndex(model: model, mode: .sparse, storage: storage)
                let box = UnsafeSendableBox(index)
                let group = DispatchGroup()
                let batches = 1 + round % 4
                DispatchQueue.global().async(group: group) {
                    for b in 0..<batches {
                        let rows = b * 16..<(b + 1) * 16
                        try? box.value.add(indices: Array(codes.indices[rows.lowerBound * k..<rows.upperBound * k]),
                                           values: Array(codes.values[rows.lowerBound * k..<rows.upperBound * k]),
                                           rows: 16, k: k)
                    }
                }
                var searches = 0
                while searches < 40 {
                    searches += 1
                    let before = index.count
                    do {
                        let results = try index.search(queries, n: 70)
                        // It sees at least the items added before it began (an
                        // index still empty gives an empty result, not an error).
                        #expect(results.ids.filter { $0 >= 0 }.count >= 2 * min(70, before),
                                "\(storage): \(results.ids)")
                        // Every listed id is an item that had been added, once; scores are cosines (to half precision in compact storage), best first.
                        let width = results.n
                        for q in 0..<2 {
                            let ids = results.ids[(q * width)..<((q + 1) * width)].filter { $0 >= 0 }
                            #expect(ids.allSatisfy { $0 < 64 })
                            #expect(Set(ids).count == ids.count)
                            let row = results.scores[(q * width)..<((q + 1) * width)].filter { $0 > -.infinity }
                            #expect(row.count == ids.count)
                            #expect(zip(row, row.dropFirst()).allSatisfy { $0 >= $1 })
                            #expect(row.allSatisfy { $0 <= 1.002 && $0 >= -1.002 }, "\(storage) \(row)")
                        }
                    } catch let error as CompresSAEError {
                        #expect(error.message.contains("empty"), "\(error)")
                    }
                }
                group.wait()
                #expect(index.count == 16 * batches)
            }
        }
    }
}
