import Testing
@testable import CompresSAE

/// `n` rows of `d` floats of norm about `scale` (finite, nonzero entries).
private func scaledRows(_ n: Int, _ d: Int, scale: Float, seed: UInt64 = 5) -> [Float] {
    var rng = SeededGenerator(seed: seed)
    return (0..<(n * d)).map { _ in (2 * rng.nextUnitFloat() - 1 + 1e-3) * scale / Float(d).squareRoot() }
}

private func expectRefused(_ what: String, _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("\(what) accepted a row whose norm exceeds the float range")
    } catch let error as CompresSAEError {
        #expect(error.kind == .invalidArgument, "\(what): \(error)")
        #expect(error.message.contains("float range"), "\(what): \(error.message)")
    } catch {
        Issue.record("\(what): unexpected error \(error)")
    }
}

/// Finite rows of huge scale: the objective is a cosine, so training on
/// `c * x` is training on `x`; before, squares and products of raw entries
/// overflowed float (NaN weights with a successful status). (Tiny rows are
/// not scale-free: the reference clamps each norm of the cosine at 1e-8.)
@Suite("Rows of extreme scale")
struct HugeRowTests {
    @Test("training on rows near the float range matches training on the same rows at unit scale",
          arguments: [1, 2, 8, 64])
    func trainingIsScaleInvariant(d: Int) throws {
        let n = 8
        var options = TrainingOptions.reference
        options.epochs = 2
        options.batchSize = 4
        options.numThreads = 1
        let reference = try CompresSAEModel(inputDim: d, latentDim: 16, k: 2, seed: 3)
        let expected = try reference.train(scaledRows(n, d, scale: 1), rows: n, options: options)
        for scale: Float in [1e20, 4e37, 1.5e38, 3.3e38] {
            let model = try CompresSAEModel(inputDim: d, latentDim: 16, k: 2, seed: 3)
            let x = scaledRows(n, d, scale: scale)
            let history = try model.train(x, rows: n, options: options)
            let weights = model.decoderWeights + model.encoderWeights + model.encoderBiasWeights
            #expect(weights.allSatisfy { $0.isFinite }, "d \(d), scale \(scale)")
            #expect(history.count == expected.count)
            for (a, b) in zip(history, expected) {
                #expect(a.isFinite && abs(a - b) <= 1e-4 * max(1, abs(b)), "d \(d), scale \(scale): \(history) vs \(expected)")
            }
            let (report, gradients) = try x.withUnsafeBufferPointer { try model.lossAndGradients($0, rows: n) }
            #expect(report.loss.isFinite && report.cosine.isFinite && report.cosine4k.isFinite)
            let g = gradients!
            #expect((g.encoderWeights + g.encoderBias + g.decoderWeights).allSatisfy { $0.isFinite })
            let codes = try model.encode(x, rows: n, refit: true)
            #expect(codes.values.allSatisfy { $0.isFinite })
            let decoded = try model.decode(codes)
            #expect(decoded.allSatisfy { $0.isFinite })
        }
    }

    @Test("a row whose norm exceeds the float range is refused by every call that takes rows")
    func normBeyondFloatRangeIsRefused() throws {
        let d = 2
        let model = try CompresSAEModel(inputDim: d, latentDim: 16, k: 2, seed: 3)
        let x: [Float] = [0.5, 0.25, 3e38, -3e38]  // row 1: norm 4.2e38
        expectRefused("train") { try model.train(x, rows: 2) }
        expectRefused("encode") { _ = try model.encode(x, rows: 2) }
        expectRefused("encode with refit") { _ = try model.encode(x, rows: 2, refit: true) }
        expectRefused("loss") { _ = try x.withUnsafeBufferPointer { try model.lossAndGradients($0, rows: 2) } }
        var indices = [Int32](repeating: 0, count: 4), values = [Float](repeating: 1, count: 4)
        indices[1] = 1; indices[3] = 1
        expectRefused("refit") {
            try x.withUnsafeBufferPointer { xb in
                try indices.withUnsafeMutableBufferPointer { ib in
                    try values.withUnsafeMutableBufferPointer { vb in
                        try model.refit(xb, rows: 2, k: 2, indices: ib, values: vb)
                    }
                }
            }
        }
        for mode in [SparseIndex.Mode.sparse, .reconstructed] {
            let index = try SparseIndex(model: model, mode: mode)
            expectRefused("index add (\(mode))") { try index.add(dense: x, rows: 2) }
            try index.add(dense: [1, 2, 3, 4], rows: 2)
            expectRefused("index search (\(mode))") { _ = try index.search(dense: x, rows: 2, n: 1) }
        }
    }

    @Test("codes whose decoded rows overflow float are refused, not decoded to infinities")
    func hugeCodeValues() throws {
        let d = 4, h = 8
        let model = try CompresSAEModel(inputDim: d, latentDim: h, k: 2, seed: 3)
        let indices: [Int32] = [0, 1], values: [Float] = [3e38, 3e38]
        do {
            let decoded = try model.decode(SparseCodes(rows: 1, k: 2, dim: h, indices: indices, values: values))
            #expect(decoded.allSatisfy { $0.isFinite }, "\(decoded)")
        } catch let error as CompresSAEError {
            #expect(error.kind == .invalidArgument)
        }
        for mode in [SparseIndex.Mode.sparse, .reconstructed] {
            let index = try SparseIndex(model: model, mode: mode)
            try index.add(dense: scaledRows(4, d, scale: 1), rows: 4)
            do {
                try index.add(indices: indices, values: values, rows: 1, k: 2)
            } catch let error as CompresSAEError {
                #expect(error.kind == .invalidArgument)
            }
            do {
                let results = try index.search(indices: indices, values: values, rows: 1, k: 2, n: 3)
                #expect(results.scores.allSatisfy { !$0.isNaN }, "\(mode): \(results.scores)")
                #expect(results.scores.allSatisfy { $0 <= 1.001 }, "\(mode): \(results.scores)")
            } catch let error as CompresSAEError {
                #expect(error.kind == .invalidArgument)
            }
        }
    }
}
