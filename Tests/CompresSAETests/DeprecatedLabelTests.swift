import Testing
@testable import CompresSAE

/// The former `threads:` labels still compile and give what `numThreads:`
/// gives. The test is itself marked deprecated, which silences the
/// deprecation warnings of its calls and keeps the build free of warnings.
@Suite("Deprecated labels")
struct DeprecatedLabelTests {
    @available(*, deprecated)
    @Test("threads: forwards to numThreads: on the model and the index")
    func threadsForwards() throws {
        let (x, d) = try Fixtures.realEmbeddings(rows: 300)
        let model = try CompresSAEModel(inputDim: d, latentDim: 256, k: 8, seed: 3)
        let codes = try model.encode(x, rows: 300, numThreads: 2)
        let old = try model.encode(x, rows: 300, threads: 2)
        #expect(old.indices == codes.indices && old.values == codes.values)
        #expect(try model.decode(codes, threads: 1) == model.decode(codes, numThreads: 1))

        let index = try SparseIndex(model: model, mode: .sparse)
        try index.add(dense: Array(x[..<(200 * d)]), rows: 200, threads: 1)
        let queries = Array(x[(200 * d)...])
        let new = try index.search(dense: queries, rows: 100, n: 5, numThreads: 2)
        #expect(try index.search(dense: queries, rows: 100, n: 5, threads: 2) == new)
        #expect(try index.search(codes, n: 5, threads: 1) == index.search(codes, n: 5, numThreads: 1))
    }
}
