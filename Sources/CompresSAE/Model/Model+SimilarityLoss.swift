#if canImport(Glibc)
import Glibc
#endif

/// Settings of the similarity term (`TrainingOptions.sparseSimilarityWeight`).
struct SimilarityTerm: Sendable {
    let weight: Float
    let temperature: Float
    let sampleRows: Int
}

/// Listwise cross-entropy of one row: the softmax of `scores[j] / t` over
/// `j != self` against the softmax of `targets[j] / t`. Overwrites `targets`
/// with `scale * d(loss)/d(scores[j])` (0 at `self`) and returns the loss.
private func listwiseCrossEntropy(
    scores: UnsafePointer<Float>, targets: UnsafeMutablePointer<Float>, count n: Int, skipping own: Int,
    invTemperature: Float, scale: Float
) -> Double {
    var maxS = -Float.infinity, maxG = -Float.infinity
    for j in 0..<n where j != own {
        maxS = max(maxS, scores[j])
        maxG = max(maxG, targets[j])
    }
    var sumS = 0.0, sumG = 0.0
    for j in 0..<n where j != own {
        sumS += Double(expf((scores[j] - maxS) * invTemperature))
        sumG += Double(expf((targets[j] - maxG) * invTemperature))
    }
    let logSumS = Double(maxS * invTemperature) + log(sumS)
    var loss = 0.0
    for j in 0..<n {
        if j == own { targets[j] = 0; continue }
        let target = Float(Double(expf((targets[j] - maxG) * invTemperature)) / sumG)
        let logQ = Double(scores[j] * invTemperature) - logSumS
        loss -= Double(target) * logQ
        targets[j] = scale * (Float(exp(logQ)) - target) * invTemperature
    }
    return loss
}

extension CompresSAEModel {
    /// Adds the gradient of the similarity term to the k-code entries of
    /// `buffers.gPre` and returns the term's value.
    ///
    /// The reconstruction objective says nothing about how codes compare with
    /// each other, yet sparse-mode search ranks items by the cosine of their
    /// codes. This term makes that ranking follow the dense one: over the
    /// first `sampleRows` rows of the (shuffled) batch, each row's softmax of
    /// code cosines `S_ij / t` (`j != i`) is trained towards its softmax of
    /// input cosines `G_ij / t`, by cross-entropy:
    /// `weight * mean_i sum_j -softmax(G_i/t)_j log softmax(S_i/t)_j`.
    /// Its gradient reaches the selected pre-activations only (the selection
    /// itself is fixed, as for the reconstruction terms), so it moves the
    /// encoder and its bias, never the decoder.
    ///
    /// - Complexity: O(P^2 d) for the input cosines (one GEMM) and O(P^2 k)
    ///   for the code cosines and the gradient, with `P = sampleRows`.
    func addSparseSimilarityGradient(
        _ term: SimilarityTerm, buffers: StepBuffers, rows b: Int, k: Int, workers: Int
    ) throws(CompresSAEError) -> Float {
        let d = inputDim, h = latentDim, m = 4 * k
        let n = min(term.sampleRows, b)
        guard n >= 2 else { return 0 }
        let p = buffers.pointers
        let work = try buffers.similarityWorkspace(rows: n, k: k, workers: min(workers, n))
        let inputCos = work.inputCos, codeCos = work.codeCos, unit = work.unit
        let codeNorm = work.codeNorm, rowLoss = work.rowLoss
        GEMM.multiplyTransposed(m: n, n: n, kk: d, a: p.normalized, b: p.normalized, beta: 0, c: inputCos)
        for i in 0..<n {
            let values = p.values + i * m
            var sum: Float = 0
            for t in 0..<k { sum += values[t] * values[t] }
            let norm = sum.squareRoot()
            codeNorm[i] = norm
            for t in 0..<k { unit[i * k + t] = norm > 0 ? values[t] / norm : 0 }
        }

        let g = SharedPointer(inputCos), s = SharedPointer(codeCos), u = SharedConstPointer(UnsafePointer(unit))
        let losses = SharedPointer(rowLoss), selected = SharedConstPointer(UnsafePointer(p.selected))
        let workerCount = min(workers, n)
        let invTemperature = 1 / term.temperature
        let scale = term.weight / Float(n)
        let maps = SharedPointer(work.slotMaps), gradients = SharedPointer(work.gradients)
        /// For each row of the worker: its latent -> slot map (all -1 between
        /// uses) set for the row's k-code, then `body(i, map, scratch)` with `k`
        /// floats of scratch; the map is reset afterwards.
        func forEachRow(
            _ body: @escaping @Sendable (Int, UnsafeMutablePointer<Int32>, UnsafeMutablePointer<Float>) -> Void
        ) {
            Parallel.run(workers: workerCount) { w in
                let map = maps.base + w * h, scratch = gradients.base + w * k
                for i in (w * n / workerCount)..<((w + 1) * n / workerCount) {
                    let own = selected.base + i * m
                    for t in 0..<k { map[Int(own[t])] = Int32(t) }
                    body(i, map, scratch)
                    for t in 0..<k { map[Int(own[t])] = -1 }
                }
            }
        }

        // Code cosines S_ij through the slot map (O(k) per pair), then per row
        // the cross-entropy and dL/dS_ij = scale * (q_ij - target_ij) / t,
        // written over row i of the input cosines.
        forEachRow { i, map, _ in
            let own = u.base + i * k
            let sRow = s.base + i * n, gRow = g.base + i * n
            for j in 0..<n {
                let other = selected.base + j * m, otherUnit = u.base + j * k
                var dot: Float = 0
                for t in 0..<k {
                    let slot = map[Int(other[t])]
                    if slot >= 0 { dot += own[Int(slot)] * otherUnit[t] }
                }
                sRow[j] = dot
            }
            let loss = listwiseCrossEntropy(scores: sRow, targets: gRow, count: n, skipping: i,
                                            invTemperature: invTemperature, scale: scale)
            losses.base[i] = loss
        }

        // dL/dv_i = sum_j w_ij (unit_j restricted to i's latents - S_ij unit_i) / |v_i|,
        // with w_ij = a_ij + a_ji (S is symmetric and sits in both rows' terms).
        let gPre = SharedPointer(p.gPre), norms = SharedConstPointer(UnsafePointer(codeNorm))
        forEachRow { i, map, gradient in
            let norm = norms.base[i]
            guard norm > 0 else { return }
            let own = u.base + i * k, out = gPre.base + i * m
            gradient.initialize(repeating: 0, count: k)
            var radial: Float = 0
            for j in 0..<n where j != i {
                let w = g.base[i * n + j] + g.base[j * n + i]
                if w == 0 { continue }
                radial += w * s.base[i * n + j]
                let other = selected.base + j * m, otherUnit = u.base + j * k
                for t in 0..<k {
                    let slot = map[Int(other[t])]
                    if slot >= 0 { gradient[Int(slot)] += w * otherUnit[t] }
                }
            }
            for t in 0..<k { out[t] += (gradient[t] - radial * own[t]) / norm }
        }
        var total = 0.0
        for i in 0..<n { total += rowLoss[i] }
        return Float(Double(term.weight) * total / Double(n))
    }
}

/// The buffers of the similarity term, kept across training steps (like the
/// encoder scratch) so that a step neither maps nor faults in fresh pages.
final class SimilarityWorkspace {
    let rows: Int, k: Int, h: Int, workers: Int
    private let floats: FallibleBuffer<Float>
    private let doubles: FallibleBuffer<Double>
    private let maps: FallibleBuffer<Int32>
    /// `[rows,rows]` input cosines, then the term's weights dL/dS.
    let inputCos: UnsafeMutablePointer<Float>
    /// `[rows,rows]` code cosines.
    let codeCos: UnsafeMutablePointer<Float>
    /// `[rows,k]` codes divided by their norms, and `[rows]` those norms.
    let unit: UnsafeMutablePointer<Float>, codeNorm: UnsafeMutablePointer<Float>
    /// `[rows]` each row's cross-entropy.
    let rowLoss: UnsafeMutablePointer<Double>
    /// Per worker: an `[h]` latent -> slot map, all -1 between uses, and `k` floats.
    let slotMaps: UnsafeMutablePointer<Int32>, gradients: UnsafeMutablePointer<Float>

    init(rows: Int, k: Int, h: Int, workers: Int) throws(CompresSAEError) {
        self.rows = rows
        self.k = k
        self.h = h
        self.workers = workers
        let what = "the similarity term's buffers"
        let square = try Size.product(rows, rows, what: what), rk = try Size.product(rows, k, what: what)
        let wk = try Size.product(workers, k, what: what)
        floats = try FallibleBuffer(count: try Size.sum(try Size.sum(2 * square, rk, what: what),
                                                        try Size.sum(rows, wk, what: what), what: what), what)
        doubles = try FallibleBuffer(count: rows, what)
        maps = try FallibleBuffer(count: try Size.product(workers, h, what: what), what)
        inputCos = floats.base
        codeCos = inputCos + square
        unit = codeCos + square
        codeNorm = unit + rk
        gradients = codeNorm + rows
        rowLoss = doubles.base
        slotMaps = maps.base
        slotMaps.initialize(repeating: -1, count: workers * h)
    }
}
