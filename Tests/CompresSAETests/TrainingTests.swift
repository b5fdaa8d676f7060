import Testing
@testable import CompresSAE

@Suite("Training on real embeddings")
struct TrainingTests {
    @Test("the loss falls steadily over a few epochs")
    func lossFalls() throws {
        let (x, d) = try Fixtures.realEmbeddings(rows: 2000)
        let model = try CompresSAEModel(inputDim: d, latentDim: 1024, k: 16, seed: 7)
        var options = TrainingOptions.reference
        options.batchSize = 200
        options.epochs = 4
        options.learningRate = 2e-3
        let history = try model.train(x, rows: 2000, options: options)
        #expect(history.count == 40)
        let first = history.prefix(5).reduce(0, +) / 5
        let last = history.suffix(5).reduce(0, +) / 5
        // Per-epoch means must decrease epoch after epoch.
        let epochMeans = (0..<4).map { e in history[(e * 10)..<(e * 10 + 10)].reduce(0, +) / 10 }
        #expect(last < 0.8 * first, "first \(first), last \(last)")
        for e in 1..<4 { #expect(epochMeans[e] < epochMeans[e - 1], "epoch means \(epochMeans)") }
        #expect(history.allSatisfy { $0.isFinite })
    }

    @Test("a 5-step run with fixed seeds is bit-for-bit repeatable")
    func repeatable() throws {
        let (x, d) = try Fixtures.realEmbeddings(rows: 1000)
        var options = TrainingOptions.reference
        options.batchSize = 200
        options.seed = 11
        func run() throws -> ([Float], [Float], [Float], [Float]) {
            let model = try CompresSAEModel(inputDim: d, latentDim: 512, k: 8, seed: 3)
            let history = try model.train(x, rows: 1000, options: options)
            return (history, model.encoderWeights, model.encoderBiasWeights, model.decoderWeights)
        }
        let a = try run(), b = try run()
        #expect(a.0.count == 5)
        #expect(a.0.map(\.bitPattern) == b.0.map(\.bitPattern))
        #expect(a.1.map(\.bitPattern) == b.1.map(\.bitPattern))
        #expect(a.2.map(\.bitPattern) == b.2.map(\.bitPattern))
        #expect(a.3.map(\.bitPattern) == b.3.map(\.bitPattern))
    }

    @Test("the progress callback sees every step and can cancel")
    func progressAndCancel() throws {
        let (x, d) = try Fixtures.realEmbeddings(rows: 500)
        let model = try CompresSAEModel(inputDim: d, latentDim: 256, k: 8)
        var options = TrainingOptions.reference
        options.batchSize = 100
        options.epochs = 2
        var seen: [Int] = []
        try model.train(x, rows: 500, options: options) { step, total, loss in
            #expect(total == 10)
            #expect(loss.isFinite)
            seen.append(step)
            return true
        }
        #expect(seen == Array(1...10))
        let error = #expect(throws: CompresSAEError.self) {
            try model.train(x, rows: 500, options: options) { step, _, _ in step < 3 }
        }
        #expect(error?.kind == .cancelled)
        #expect(model.lossHistory.count == 3)
    }

    @Test("latents that can never fire are reported dead after one window")
    func deadLatents() throws {
        let (x, d) = try Fixtures.realEmbeddings(rows: 400)
        let h = 64
        let seeded = try CompresSAEModel(inputDim: d, latentDim: h, k: 4, seed: 8)
        // Latents 0..<8 get zero encoder columns and bias: their pre-activation is
        // always 0, below the 16 selected magnitudes, so their gradient stays 0.
        var encoder = seeded.encoderWeights
        for row in 0..<d { for j in 0..<8 { encoder[row * h + j] = 0 } }
        let model = try CompresSAEModel(inputDim: d, latentDim: h, k: 4, encoderWeights: encoder,
                                        encoderBias: seeded.encoderBiasWeights, decoderWeights: seeded.decoderWeights)
        var options = TrainingOptions.reference
        options.batchSize = 100
        options.epochs = 2
        options.deadLatentWindow = 200
        try model.train(x, rows: 400, options: options)
        let dead = model.deadLatentHistory
        #expect(dead.count == 8)
        #expect(dead[0] == 0)  // fewer rows seen than the window
        #expect(dead[1...].allSatisfy { $0 >= 8.0 / Float(h) }, "\(dead)")
    }

    @Test("the decoder rows stay unit norm after training")
    func decoderNormalised() throws {
        let (x, d) = try Fixtures.realEmbeddings(rows: 400)
        let model = try CompresSAEModel(inputDim: d, latentDim: 256, k: 4)
        var options = TrainingOptions.reference
        options.batchSize = 100
        try model.train(x, rows: 400, options: options)
        let w = model.decoderWeights
        for j in 0..<256 {
            let norm = (0..<d).reduce(Float(0)) { $0 + w[j * d + $1] * w[j * d + $1] }.squareRoot()
            #expect(abs(norm - 1) < 1e-5)
        }
    }
}

@Suite("Encoding")
struct EncodingTests {
    @Test("ties are broken towards the lower index, codes are ordered by |value|")
    func ties() throws {
        // Identity-like encoder: d = h, so pre-activations are the normalised input.
        let d = 8
        var enc = [Float](repeating: 0, count: d * d)
        for i in 0..<d { enc[i * d + i] = 1 }
        let model = try CompresSAEModel(inputDim: d, latentDim: d, k: 3, encoderWeights: enc,
                                        encoderBias: .init(repeating: 0, count: d), decoderWeights: enc)
        let codes = try model.encode([1, -2, 2, 1, -2, 0, 0, 1], rows: 1)
        #expect(codes.indices == [1, 2, 4])
        let more = try model.encode([1, -2, 2, 1, -2, 0, 0, 1], rows: 1, k: 6)
        #expect(more.indices == [1, 2, 4, 0, 3, 7])
        #expect(more.values[0] < 0 && more.values[1] > 0)
    }

    @Test("multi-threaded encoding equals single-threaded, and a k' prefix equals encoding at k'")
    func threadsAndPrefix() throws {
        let (x, d) = try Fixtures.realEmbeddings(rows: 1500)
        let model = try CompresSAEModel(inputDim: d, latentDim: 1024, k: 32, seed: 5)
        let one = try model.encode(x, rows: 1500, numThreads: 1)
        let two = try model.encode(x, rows: 1500, numThreads: 2)
        let same = one == two  // compared outside #expect, which would print both arrays
        #expect(same)
        let small = try model.encode(x, rows: 1500, k: 8, numThreads: 2)
        let prefixes = (0..<1500).allSatisfy {
            Array(one.indices[($0 * 32)..<($0 * 32 + 8)]) == Array(small.indices[($0 * 8)..<($0 * 8 + 8)])
        }
        #expect(prefixes)
    }

    @Test("top-k selection equals a full sort, ties included", arguments: [(4096, 128), (4096, 32), (4096, 1), (4096, 256), (1000, 500), (384, 24), (100, 7), (64, 4), (9, 9)])
    func topKAgainstSort(n: Int, m: Int) {
        var rng = SeededGenerator(seed: UInt64(n * 31 + m))
        let keys = UnsafeMutablePointer<UInt32>.allocate(capacity: TopK.scratchKeys(n: n))
        let candidates = UnsafeMutablePointer<Int32>.allocate(capacity: TopK.scratchIndices(n: n))
        defer { keys.deallocate(); candidates.deallocate() }
        // Carried from row to row, as encoding and training do; the rows'
        // scales jump (every 3rd row is 100 times smaller), so that the
        // carried bound is sometimes far too high.
        var sortedHint: UInt32 = 0, splitHint: UInt32 = 0
        for trial in 0..<20 {
            // Few distinct magnitudes in odd trials, to force many ties.
            let scale: Float = trial % 3 == 2 ? 0.01 : 1
            let row: [Float] = (0..<n).map { _ in
                let u = rng.nextUnitFloat() * 2 - 1
                return (trial % 2 == 1 ? (u * 4).rounded() / 4 : u) * scale
            }
            var out = [Int32](repeating: -1, count: m)
            row.withUnsafeBufferPointer { rb in
                TopK.select(row: rb.baseAddress!, n: n, m: m, outIndices: &out, scratch: (keys, candidates))
            }
            let expected = (0..<n).sorted { abs(row[$0]) > abs(row[$1]) || (abs(row[$0]) == abs(row[$1]) && $0 < $1) }
            #expect(out.map(Int.init) == Array(expected.prefix(m)), "n \(n) m \(m) trial \(trial)")
            // The training form: the top m/4 first, then the rest, each part in index order.
            let split = max(1, m / 4)
            row.withUnsafeBufferPointer { rb in
                TopK.select(row: rb.baseAddress!, n: n, m: m, split: split, sorted: false, outIndices: &out,
                            scratch: (keys, candidates))
            }
            #expect(out.prefix(split).map(Int.init) == expected.prefix(split).sorted(), "split, n \(n) m \(m)")
            #expect(out.dropFirst(split).map(Int.init) == expected[split..<m].sorted(), "split, n \(n) m \(m)")
            // With a bound carried over from the previous row: the same results.
            var carried = [Int32](repeating: -1, count: m)
            row.withUnsafeBufferPointer { rb in
                TopK.select(row: rb.baseAddress!, n: n, m: m, split: split, sorted: false, outIndices: &carried,
                            scratch: (keys, candidates), boundHint: &splitHint)
            }
            #expect(carried == out, "split with a carried bound, n \(n) m \(m) trial \(trial)")
            row.withUnsafeBufferPointer { rb in
                TopK.select(row: rb.baseAddress!, n: n, m: m, outIndices: &carried, scratch: (keys, candidates),
                            boundHint: &sortedHint)
            }
            #expect(carried.map(Int.init) == Array(expected.prefix(m)), "carried bound, n \(n) m \(m) trial \(trial)")
        }
    }

    @Test("the built-in GEMM agrees with the BLAS one")
    func portableGEMM() {
        let m = 5, n = 37, kk = 19
        let a = (0..<(m * kk)).map { Float(($0 * 7919) % 23) / 23 - 0.5 }
        let b = (0..<(n * kk)).map { Float(($0 * 104_729) % 31) / 31 - 0.5 }
        var viaBLAS = [Float](repeating: 0, count: m * n), portable = viaBLAS
        GEMM.multiplyTransposed(m: m, n: n, kk: kk, a: a, b: b, beta: 0, c: &viaBLAS)
        GEMM.portableMultiplyTransposed(m: m, n: n, kk: kk, a: a, b: b, beta: 0, c: &portable)
        #expect(relativeError(portable, viaBLAS) < 1e-5)
    }
}
