#if canImport(Glibc)
import Glibc
#endif

/// Gradient accumulators of one worker, in the internal `[h,d]` layouts.
final class GradientBuffers {
    let encoderT: UnsafeMutablePointer<Float>
    let bias: UnsafeMutablePointer<Float>
    let decoder: UnsafeMutablePointer<Float>
    let weightCount: Int
    let latentCount: Int

    init(h: Int, d: Int) {
        weightCount = h * d
        latentCount = h
        encoderT = .allocate(capacity: weightCount)
        encoderT.initialize(repeating: 0, count: weightCount)
        bias = .allocate(capacity: h)
        bias.initialize(repeating: 0, count: h)
        decoder = .allocate(capacity: weightCount)
        decoder.initialize(repeating: 0, count: weightCount)
    }

    deinit {
        encoderT.deallocate()
        bias.deallocate()
        decoder.deallocate()
    }
}

/// Loss sums of one worker, in Double so that summing many rows loses nothing.
struct LossSums {
    var l2 = 0.0, l2_4k = 0.0, l1 = 0.0, l0 = 0.0, cosine = 0.0, cosine4k = 0.0

    mutating func add(_ o: LossSums) {
        l2 += o.l2; l2_4k += o.l2_4k; l1 += o.l1; l0 += o.l0; cosine += o.cosine; cosine4k += o.cosine4k
    }

    func report(rows: Int, dim: Int) -> LossReport {
        var r = LossReport()
        let b = Double(rows)
        r.l2 = Float(l2 / (b * Double(dim)))
        r.l2_4k = Float(l2_4k / (b * Double(dim)))
        r.l1 = Float(l1 / b)
        r.l0 = Float(l0 / b)
        r.cosine = Float(cosine / b)
        r.cosine4k = Float(cosine4k / b)
        r.loss = Float(cosine / b + cosine4k / b / 8)
        return r
    }
}

/// Adam's moments for the three parameters (internal layouts).
final class AdamState {
    var encoderT: [Float], bias: [Float], decoder: [Float]
    var encoderTSq: [Float], biasSq: [Float], decoderSq: [Float]
    var step = 0

    init(h: Int, d: Int) {
        encoderT = .init(repeating: 0, count: h * d); encoderTSq = encoderT
        bias = .init(repeating: 0, count: h); biasSq = bias
        decoder = .init(repeating: 0, count: h * d); decoderSq = decoder
    }
}

/// `PyTorch's cosine_similarity` clamps each norm at this value.
private let cosineNormFloor: Float = 1e-8

extension CompresSAEModel {
    /// Trains the model on `x` with Adam, starting from the current weights
    /// (and a fresh optimiser state).
    ///
    /// Each step: a mini-batch is encoded, the objective
    /// `mean(1 - cos(x, recon_k)) + mean(1 - cos(x, recon_4k)) / 8` is
    /// differentiated through the selected entries only, Adam updates all three
    /// parameters, and the decoder rows are renormalised.
    ///
    /// - Parameters:
    ///   - x: `rows * d` floats; finite, no all-zero row.
    ///   - rows: number of rows, `>= 1`.
    ///   - options: batch size, epochs, Adam settings, shuffle seed, threads.
    ///   - progress: called after every step with (step, total, loss); return
    ///     `false` to stop (then `CompresSAEError.cancelled` is thrown and the
    ///     steps done so far are kept).
    /// - Returns: the loss of every step, before its update (also in `lossHistory`).
    /// - Complexity: per step O(b d h) for the encoder GEMM plus O(b k d) for
    ///   the sparse forward and backward, plus O(h d) for Adam.
    @discardableResult
    public func train(
        _ x: UnsafeBufferPointer<Float>, rows: Int, options: TrainingOptions = TrainingOptions(),
        progress: ((Int, Int, Float) -> Bool)? = nil
    ) throws -> [Float] {
        let d = inputDim, h = latentDim
        try InputValidation.checkRowCount(rows)
        try InputValidation.checkCount(x.count, rows: rows, cols: d, name: "input")
        try options.validate(rows: rows)
        let kk = k
        guard 4 * kk <= h else {
            throw CompresSAEError.invalid(
                "training needs 4k <= latent_dim (the loss uses the top-4k code): k = \(kk), latent_dim = \(h)")
        }
        try InputValidation.checkRows(x.baseAddress!, rows: rows, dim: d)
        guard trainingFlag.tryAcquire() else {
            throw CompresSAEError(.busy, "the model is already being trained by another call")
        }
        defer { trainingFlag.release() }

        let batchSize = min(options.batchSize, rows)
        let stepsPerEpoch = (rows + batchSize - 1) / batchSize
        let total = options.epochs * stepsPerEpoch
        let workers = min(Parallel.threadCount(requested: options.threads), max(1, (batchSize + 63) / 64))
        let grads = (0..<workers).map { _ in GradientBuffers(h: h, d: d) }
        let adam = AdamState(h: h, d: d)
        var order = Array(0..<rows)
        var rng = SeededGenerator(seed: options.seed)
        let batch = UnsafeMutablePointer<Float>.allocate(capacity: batchSize * d)
        defer { batch.deallocate() }
        var history: [Float] = []
        history.reserveCapacity(total)
        lock.withWriteLock { storedHistory = [] }

        var step = 0
        for _ in 0..<options.epochs {
            if options.shuffle { order.shuffle(using: &rng) }
            for s in 0..<stepsPerEpoch {
                let first = s * batchSize
                let count = min(batchSize, rows - first)
                for r in 0..<count {
                    (batch + r * d).update(from: x.baseAddress! + order[first + r] * d, count: d)
                }
                let report = lock.withWriteLock { () -> LossReport in
                    let report = accumulateGradients(batch, rows: count, k: kk, into: grads, workers: workers)
                    adamStep(adam, grads: grads, options: options, workers: workers)
                    normalizeDecoderRows()
                    storedHistory.append(report.loss)
                    return report
                }
                history.append(report.loss)
                step += 1
                if let progress, !progress(step, total, report.loss) {
                    throw CompresSAEError(.cancelled, "training cancelled by the progress callback after step \(step) of \(total)")
                }
            }
        }
        return history
    }

    /// Convenience form of `train` on a flat array.
    @discardableResult
    public func train(
        _ x: [Float], rows: Int, options: TrainingOptions = TrainingOptions(),
        progress: ((Int, Int, Float) -> Bool)? = nil
    ) throws -> [Float] {
        try x.withUnsafeBufferPointer { try train($0, rows: rows, options: options, progress: progress) }
    }

    /// The seven loss values of a batch and, optionally, the gradients of the
    /// objective at the current weights; nothing is updated.
    ///
    /// - Parameters:
    ///   - x: `rows * d` floats.
    ///   - rows: batch size `b`.
    ///   - withGradients: also return the gradients.
    /// - Throws: if `4k > h`, or on bad input.
    public func lossAndGradients(
        _ x: UnsafeBufferPointer<Float>, rows: Int, withGradients: Bool = true, threads: Int = 0
    ) throws -> (LossReport, Gradients?) {
        let d = inputDim, h = latentDim
        try InputValidation.checkRowCount(rows)
        try InputValidation.checkCount(x.count, rows: rows, cols: d, name: "input")
        let kk = k
        guard 4 * kk <= h else {
            throw CompresSAEError.invalid("the loss needs 4k <= latent_dim: k = \(kk), latent_dim = \(h)")
        }
        try InputValidation.checkRows(x.baseAddress!, rows: rows, dim: d)
        let workers = min(Parallel.threadCount(requested: threads), max(1, (rows + 63) / 64))
        let grads = (0..<workers).map { _ in GradientBuffers(h: h, d: d) }
        return lock.withReadLock {
            let report = accumulateGradients(x.baseAddress!, rows: rows, k: kk, into: grads, workers: workers)
            guard withGradients else { return (report, nil) }
            // Sum the workers' buffers in a fixed order, then restore public layouts.
            var encT = [Float](repeating: 0, count: h * d)
            var bias = [Float](repeating: 0, count: h)
            var dec = [Float](repeating: 0, count: h * d)
            for g in grads {
                for i in 0..<(h * d) { encT[i] += g.encoderT[i]; dec[i] += g.decoder[i] }
                for j in 0..<h { bias[j] += g.bias[j] }
            }
            var enc = [Float](repeating: 0, count: d * h)
            encT.withUnsafeBufferPointer { Self.transpose($0.baseAddress!, rows: h, cols: d, into: &enc) }
            return (report, Gradients(encoderWeights: enc, encoderBias: bias, decoderWeights: dec))
        }
    }

    // MARK: - The step

    /// Forward and sparse backward of a batch; adds the objective's gradients
    /// into `grads` (one buffer per worker) and returns the batch's losses.
    /// Only the encoder forward is a dense product; everything else touches the
    /// 4k selected latents of each row. Caller holds a lock.
    func accumulateGradients(
        _ x: UnsafePointer<Float>, rows b: Int, k: Int, into grads: [GradientBuffers], workers: Int
    ) -> LossReport {
        let d = inputDim, h = latentDim, m = 4 * k
        let perWorkerSums = UnsafeMutablePointer<LossSums>.allocate(capacity: workers)
        perWorkerSums.initialize(repeating: LossSums(), count: workers)
        defer { perWorkerSums.deallocate() }
        let sums = SharedPointer(perWorkerSums)
        let weightK = 1 / Float(b), weight4k = 1 / (8 * Float(b))
        let src = SharedConstPointer(x)
        let gradBuffers = UnsafeSendableBox(grads)

        decoder.withUnsafeBufferPointer { decBuffer in
            let dec = SharedConstPointer(decBuffer.baseAddress!)
            forEachEncoderChunk(x, rows: b, threads: workers) { start, count, pre, scratch in
                // Chunk c runs on worker c % workers, so this index is the worker's own.
                let worker = (start / min(encoderChunkRows, b)) % workers
                let g = gradBuffers.value[worker]
                var local = LossSums()
                let selected = UnsafeMutablePointer<Int32>.allocate(capacity: m)
                let work = UnsafeMutablePointer<Float>.allocate(capacity: 4 * d)
                defer { selected.deallocate(); work.deallocate() }
                let reconK = work, recon4k = work + d, gradK = work + 2 * d, grad4k = work + 3 * d
                for r in 0..<count {
                    let row = pre + r * h
                    let xi = src.base + (start + r) * d
                    let xn = scratch.normalized + r * d
                    TopK.select(row: row, n: h, m: m, outIndices: selected,
                                heapKeys: scratch.heapKeys, heapIndices: scratch.heapIndices)
                    // Reconstructions: the k-code is a prefix of the 4k-code.
                    reconK.initialize(repeating: 0, count: d)
                    for t in 0..<k {
                        let j = Int(selected[t])
                        axpy(row[j], dec.base + j * d, reconK, d)
                        local.l1 += Double(abs(row[j]))
                        if row[j] != 0 { local.l0 += 1 }
                    }
                    recon4k.update(from: reconK, count: d)
                    for t in k..<m {
                        let j = Int(selected[t])
                        axpy(row[j], dec.base + j * d, recon4k, d)
                    }
                    // Losses and d(loss)/d(recon) for both reconstructions.
                    let xNorm = max(squaredNorm(xi, d).squareRoot(), cosineNormFloor)
                    var l2 = Float(0), l2_4k = Float(0)
                    for c in 0..<d {
                        let e = reconK[c] - xi[c], e4 = recon4k[c] - xi[c]
                        l2 += e * e
                        l2_4k += e4 * e4
                    }
                    local.l2 += Double(l2)
                    local.l2_4k += Double(l2_4k)
                    let cosK = cosineGradient(x: xi, xNorm: xNorm, recon: reconK, d: d,
                                              weight: weightK, into: gradK)
                    let cos4k = cosineGradient(x: xi, xNorm: xNorm, recon: recon4k, d: d,
                                               weight: weight4k, into: grad4k)
                    local.cosine += Double(1 - cosK)
                    local.cosine4k += Double(1 - cos4k)
                    // The k-code's entries receive both gradients, the rest only the 4k one.
                    axpy(1, grad4k, gradK, d)
                    for t in 0..<m {
                        let j = Int(selected[t])
                        let upstream = t < k ? UnsafePointer(gradK) : UnsafePointer(grad4k)
                        let decRow = dec.base + j * d
                        let gPre = dot(decRow, upstream, d)
                        axpy(row[j], upstream, g.decoder + j * d, d)
                        axpy(gPre, xn, g.encoderT + j * d, d)
                        g.bias[j] += gPre
                    }
                }
                sums.base[worker].add(local)
            }
        }
        var total = LossSums()
        for w in 0..<workers { total.add(perWorkerSums[w]) }
        return total.report(rows: b, dim: d)
    }

    /// One bias-corrected Adam update of all parameters (PyTorch's arithmetic),
    /// consuming and zeroing the workers' gradient buffers in the same pass.
    func adamStep(_ adam: AdamState, grads: [GradientBuffers], options: TrainingOptions, workers: Int) {
        adam.step += 1
        let t = Double(adam.step)
        // Scalars are computed in Double and rounded once, as PyTorch does with
        // its Python-float hyperparameters.
        let beta1 = options.beta1, beta2 = options.beta2
        let stepSize = Float(options.learningRate / (1 - _pow(beta1, t)))
        let correction2Sqrt = Float((1 - _pow(beta2, t)).squareRoot())
        let params = AdamScalars(oneMinusBeta1: Float(1 - beta1), beta2: Float(beta2),
                                 oneMinusBeta2: Float(1 - beta2), eps: Float(options.eps),
                                 stepSize: stepSize, correction2Sqrt: correction2Sqrt)
        let box = UnsafeSendableBox(grads)
        func update(_ p: inout [Float], _ m: inout [Float], _ v: inout [Float],
                    gradient: @escaping @Sendable (GradientBuffers) -> UnsafeMutablePointer<Float>) {
            let n = p.count
            p.withUnsafeMutableBufferPointer { pb in
                m.withUnsafeMutableBufferPointer { mb in
                    v.withUnsafeMutableBufferPointer { vb in
                        let pp = SharedPointer(pb.baseAddress!), mp = SharedPointer(mb.baseAddress!)
                        let vp = SharedPointer(vb.baseAddress!)
                        let parts = min(workers, max(1, n / 65536))
                        Parallel.run(workers: parts) { w in
                            let lo = n * w / parts, hi = n * (w + 1) / parts
                            adamUpdate(params, p: pp.base, m: mp.base, v: vp.base, range: lo..<hi,
                                       gradients: box.value.map { gradient($0) })
                        }
                    }
                }
            }
        }
        update(&encoderT, &adam.encoderT, &adam.encoderTSq) { $0.encoderT }
        update(&encoderBias, &adam.bias, &adam.biasSq) { $0.bias }
        update(&decoder, &adam.decoder, &adam.decoderSq) { $0.decoder }
    }
}

/// `1 - cos` needs `d cos / d recon = x / (|x||r|) - cos * r / |r|^2`; writes
/// `-weight * d cos / d recon` (the objective's gradient) and returns `cos`.
@inline(__always)
private func cosineGradient(
    x: UnsafePointer<Float>, xNorm: Float, recon: UnsafePointer<Float>, d: Int,
    weight: Float, into out: UnsafeMutablePointer<Float>
) -> Float {
    let rNorm = max(squaredNorm(recon, d).squareRoot(), cosineNormFloor)
    let cos = dot(x, recon, d) / (xNorm * rNorm)
    let a = -weight / (xNorm * rNorm)
    let c = weight * cos / (rNorm * rNorm)
    for i in 0..<d { out[i] = a * x[i] + c * recon[i] }
    return cos
}

struct AdamScalars: Sendable {
    let oneMinusBeta1: Float, beta2: Float, oneMinusBeta2: Float, eps: Float
    let stepSize: Float, correction2Sqrt: Float
}

/// The fused update of one slice: sum the workers' gradients (and zero them),
/// then PyTorch's `exp_avg.lerp_(g, 1-beta1)`,
/// `exp_avg_sq = beta2 * exp_avg_sq + (1-beta2) g^2`,
/// `p -= step_size * exp_avg / (sqrt(exp_avg_sq) / sqrt(bc2) + eps)`.
@inline(__always)
private func adamUpdate(
    _ s: AdamScalars, p: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>,
    v: UnsafeMutablePointer<Float>, range: Range<Int>, gradients: [UnsafeMutablePointer<Float>]
) {
    let oneMinusBeta1 = s.oneMinusBeta1, oneMinusBeta2 = s.oneMinusBeta2
    for i in range {
        var g: Float = 0
        for buffer in gradients {
            g += buffer[i]
            buffer[i] = 0
        }
        let mi = m[i] + oneMinusBeta1 * (g - m[i])
        let vi = s.beta2 * v[i] + oneMinusBeta2 * g * g
        m[i] = mi
        v[i] = vi
        let denom = vi.squareRoot() / s.correction2Sqrt + s.eps
        p[i] = p[i] - s.stepSize * (mi / denom)
    }
}

/// Boxes a non-Sendable value for workers that only read it.
struct UnsafeSendableBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

@inline(__always)
func _pow(_ base: Double, _ exponent: Double) -> Double { Glibc.pow(base, exponent) }
