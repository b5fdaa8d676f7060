import Testing
@testable import CompresSAE

/// Solves `a z = b` (symmetric positive definite, `n x n`) by Gaussian
/// elimination in Double: the reference for the library's Float Cholesky.
func solveDense(_ a: [Double], _ b: [Double], n: Int) -> [Double] {
    var m = a, rhs = b
    for col in 0..<n {
        let pivot = m[col * n + col]
        for row in (col + 1)..<max(col + 1, n) {
            let f = m[row * n + col] / pivot
            for c in col..<n { m[row * n + c] -= f * m[col * n + c] }
            rhs[row] -= f * rhs[col]
        }
    }
    var z = [Double](repeating: 0, count: n)
    for row in stride(from: n - 1, through: 0, by: -1) {
        var s = rhs[row]
        for c in (row + 1)..<max(row + 1, n) { s -= m[row * n + c] * z[c] }
        z[row] = s / m[row * n + row]
    }
    return z
}

@Suite("Least-squares refit of code values")
struct RefitTests {
    @Test("refit values solve the ridge normal equations on the encoder's support", arguments: [1, 2])
    func matchesNormalEquations(threads: Int) throws {
        let (x, d) = try Fixtures.realEmbeddings(rows: 300)
        let (h, k, rows) = (256, 12, 300)
        let model = try CompresSAEModel(inputDim: d, latentDim: h, k: k, seed: 11)
        let plain = try model.encode(x, rows: rows)
        var indices = plain.indices, values = plain.values
        try x.withUnsafeBufferPointer { xb in
            try indices.withUnsafeMutableBufferPointer { ib in
                try values.withUnsafeMutableBufferPointer { vb in
                    try model.refit(xb, rows: rows, k: k, indices: ib, values: vb, numThreads: threads)
                }
            }
        }
        let decoder = model.decoder
        var worstRelative = 0.0
        for i in 0..<rows {
            // The same latents, reordered by decreasing |value|.
            #expect(Set(indices[(i * k)..<((i + 1) * k)]) == Set(plain.indices[(i * k)..<((i + 1) * k)]))
            for t in 1..<k { #expect(abs(values[i * k + t - 1]) >= abs(values[i * k + t])) }
            let support = (0..<k).map { Int(indices[i * k + $0]) }
            var gram = [Double](repeating: 0, count: k * k), rhs = [Double](repeating: 0, count: k)
            for a in 0..<k {
                for b in 0..<k {
                    gram[a * k + b] = (0..<d).reduce(0.0) {
                        $0 + Double(decoder[support[a] * d + $1]) * Double(decoder[support[b] * d + $1])
                    }
                }
                rhs[a] = (0..<d).reduce(0.0) { $0 + Double(decoder[support[a] * d + $1]) * Double(x[i * d + $1]) }
            }
            let ridge = Double(refitRidge) * (0..<k).reduce(0.0) { $0 + gram[$1 * k + $1] } / Double(k)
            for a in 0..<k { gram[a * k + a] += ridge }
            let expected = solveDense(gram, rhs, n: k)
            let scale = expected.map(abs).max()!
            for t in 0..<k { worstRelative = max(worstRelative, abs(Double(values[i * k + t]) - expected[t]) / scale) }
        }
        #expect(worstRelative < 1e-4, "largest relative deviation \(worstRelative)")
    }

    @Test("refitted codes reconstruct at least as well as the encoder's, at any scale")
    func lowersReconstructionError() throws {
        let (x, d) = try Fixtures.realEmbeddings(rows: 200)
        let model = try CompresSAEModel(inputDim: d, latentDim: 256, k: 8, seed: 3)
        let plain = try model.encode(x, rows: 200)
        for scale: Float in [1, 1e-20, 1e20] {
            let scaled = x.map { $0 * scale }
            var indices = plain.indices, values = plain.values
            try scaled.withUnsafeBufferPointer { xb in
                try indices.withUnsafeMutableBufferPointer { ib in
                    try values.withUnsafeMutableBufferPointer { vb in try model.refit(xb, rows: 200, k: 8, indices: ib, values: vb) }
                }
            }
            let before = try model.decode(plain), after = try model.decode(
                SparseCodes(rows: 200, k: 8, dim: 256, indices: indices, values: values))
            for i in 0..<200 {
                let row = (0..<d).map { Double(scaled[i * d + $0]) }
                let cosBefore = cosine(row, (0..<d).map { Double(before[i * d + $0]) })
                let cosAfter = cosine(row, (0..<d).map { Double(after[i * d + $0]) })
                #expect(cosAfter >= cosBefore - 1e-5, "row \(i) at scale \(scale): \(cosAfter) < \(cosBefore)")
                // Least squares against x itself: the decoded row has x's scale.
                let ratio = (0..<d).reduce(0.0) { $0 + Double(after[i * d + $1]) * row[$1] }
                    / (0..<d).reduce(0.0) { $0 + row[$1] * row[$1] }
                #expect(ratio > 0 && ratio < 1.0001, "row \(i) at scale \(scale): projection ratio \(ratio)")
            }
        }
    }

    @Test("bad supports are refused before any work")
    func badSupports() throws {
        let model = try CompresSAEModel(inputDim: 4, latentDim: 16, k: 2, seed: 0)
        let x: [Float] = [1, 2, 3, 4]
        for bad: [Int32] in [[3, 3], [-1, 2], [2, 16]] {
            var indices = bad, values: [Float] = [0, 0]
            #expect(throws: CompresSAEError.self) {
                try x.withUnsafeBufferPointer { xb in
                    try indices.withUnsafeMutableBufferPointer { ib in
                        try values.withUnsafeMutableBufferPointer { vb in try model.refit(xb, rows: 1, k: 2, indices: ib, values: vb) }
                    }
                }
            }
        }
    }

    @Test("a reconstructed index refits what it encodes; a sparse index keeps the encoder's values")
    func indexAddDense() throws {
        let (x, d) = try Fixtures.realEmbeddings(rows: 64)
        let model = try CompresSAEModel(inputDim: d, latentDim: 256, k: 8, seed: 5)
        var refitted = [Int32](repeating: 0, count: 64 * 8), refittedValues = [Float](repeating: 0, count: 64 * 8)
        try x.withUnsafeBufferPointer { xb in
            try refitted.withUnsafeMutableBufferPointer { ib in
                try refittedValues.withUnsafeMutableBufferPointer { vb in
                    try model.encodeRefitted(xb, rows: 64, indices: ib, values: vb)
                }
            }
        }
        let plain = try model.encode(x, rows: 64)
        for (mode, codes) in [(SparseIndex.Mode.reconstructed, SparseCodes(rows: 64, k: 8, dim: 256, indices: refitted, values: refittedValues)),
                              (.sparse, plain)] {
            let fromDense = try SparseIndex(model: model, mode: mode)
            let fromCodes = try SparseIndex(model: model, mode: mode)
            try x.withUnsafeBufferPointer { try fromDense.add(dense: $0, rows: 64) }
            try codes.indices.withUnsafeBufferPointer { ib in
                try codes.values.withUnsafeBufferPointer { vb in try fromCodes.add(indices: ib, values: vb, rows: 64, k: 8) }
            }
            var s1 = [Float](repeating: 0, count: 64 * 5), s2 = s1
            var i1 = [Int64](repeating: 0, count: 64 * 5), i2 = i1
            try codes.indices.withUnsafeBufferPointer { ib in
                try codes.values.withUnsafeBufferPointer { vb in
                    try s1.withUnsafeMutableBufferPointer { sb in
                        try i1.withUnsafeMutableBufferPointer { idb in
                            _ = try fromDense.search(indices: ib, values: vb, rows: 64, k: 8, n: 5, scores: sb, ids: idb)
                        }
                    }
                    try s2.withUnsafeMutableBufferPointer { sb in
                        try i2.withUnsafeMutableBufferPointer { idb in
                            _ = try fromCodes.search(indices: ib, values: vb, rows: 64, k: 8, n: 5, scores: sb, ids: idb)
                        }
                    }
                }
            }
            #expect(s1 == s2 && i1 == i2, "\(mode)")
        }
    }
}
