import CCompresSAE

#if canImport(Glibc)
import Glibc
#endif

/// `PyTorch's cosine_similarity` clamps each norm at this value.
private let cosineNormFloor: Float = 1e-8

extension CompresSAEModel {
    /// Trains the model on `x` with Adam, starting from the current weights
    /// (and a fresh optimiser state).
    ///
    /// Each step: a mini-batch is encoded, the objective
    /// `mean(1 - cos(x, recon_k)) + mean(1 - cos(x, recon_4k)) / 8` is
    /// differentiated through the selected entries only (with the similarity
    /// and dead-latent terms the options weight), Adam updates all three
    /// parameters, and the decoder rows are renormalised.
    ///
    /// - Parameters:
    ///   - x: `rows * d` floats; finite, no all-zero row.
    ///   - rows: number of rows, `>= 1`.
    ///   - options: batch size, epochs, Adam settings, shuffle seed, threads.
    ///   - progress: called after every step with (step, total, loss), and
    ///     again with the same values between the batches of each
    ///     end-of-epoch validation pass; return `false` to stop (then
    ///     `CompresSAEError.cancelled` is thrown and the steps done so far are kept).
    /// - Returns: the loss of every step, before its update (also in `lossHistory`).
    /// - Complexity: per step O(b d h) for the encoder GEMM, O(b h) for the
    ///   selection, O(b k d) for the sparse forward and backward, O(h d) for Adam;
    ///   the dead-latent term adds O(b (h + auxK d)).
    ///   Memory: the weights, Adam's moments, and O(b (d + k)) per batch; the
    ///   `[b,h]` pre-activations exist only one chunk of rows at a time.
    @discardableResult
    public func train(
        _ x: UnsafeBufferPointer<Float>, rows: Int, options: TrainingOptions = TrainingOptions(),
        progress: ((Int, Int, Float) -> Bool)? = nil
    ) throws -> [Float] {
        let d = inputDim
        try InputValidation.checkRowCount(rows)
        try InputValidation.checkCount(x.count, rows: rows, cols: d, name: "input")
        try options.validate(rows: rows)
        try InputValidation.checkRows(x.baseAddress!, rows: rows, dim: d)
        // Every row was checked above: batches need not check them again.
        return try train(reader: BufferRows(base: x.baseAddress!, rowCount: rows, d: d), blockRows: 1,
                         checkRows: false, options: options, progress: progress)
    }

    /// Trains the model on rows read by position, `reader`, a batch at a
    /// time: as `train(_:rows:options:progress:)`, with memory bounded by the
    /// batch rather than the data.
    ///
    /// The rows are cut into blocks of `blockRows` contiguous rows. The
    /// held-out validation rows are `options.validationFraction` of the
    /// blocks (a seeded random choice; at least one block when there are 20
    /// rows or more and two blocks), and each epoch visits the other blocks in a
    /// shuffled order, cutting batches from the rows of consecutive blocks and
    /// shuffling the rows within each batch. With `blockRows == 1` the
    /// results equal those of training on the same rows in memory, bit for bit;
    /// longer blocks let `reader` read each batch as a few sequential runs.
    ///
    /// - Parameters:
    ///   - reader: the data; every row read is checked (finite, not all zero),
    ///     and a bad row ends training with an error naming it, keeping the
    ///     steps done.
    ///   - blockRows: rows the shuffle keeps together, `>= 1`.
    /// - Complexity: as the in-memory form, plus the reads; memory: one `Int`
    ///   per block and one range per batch row beyond the in-memory form's.
    @discardableResult
    public func train(
        rows reader: some RowReader, blockRows: Int = 1, options: TrainingOptions = TrainingOptions(),
        progress: ((Int, Int, Float) -> Bool)? = nil
    ) throws -> [Float] {
        let rows = reader.rowCount
        try InputValidation.checkRowCount(rows)
        guard blockRows >= 1 else { throw CompresSAEError.invalid("block_rows must be >= 1, got \(blockRows)") }
        try options.validate(rows: rows)
        return try train(reader: reader, blockRows: blockRows, checkRows: true, options: options, progress: progress)
    }

    /// Trains the model on a stream of rows read in order, pass after pass
    /// (one pass per epoch), with memory bounded by the batch and the
    /// held-out rows rather than the data.
    ///
    /// The stream's order is the training order (`options.shuffle` has no
    /// effect: shuffle the stream itself). Held out for validation: the rows
    /// at positions a seeded hash selects with probability
    /// `options.validationFraction`, at most `maxValidationRows` (the first
    /// such positions); they are kept in memory from the first pass and
    /// skipped in the later ones, so every pass must give the same rows in
    /// the same order (a pass of another length is an error). The number of
    /// steps is known once the first pass ends: until then the progress
    /// callback's total is 0, and decays that need it (`.cosine`, `.linear`)
    /// are refused.
    ///
    /// - Complexity: as the in-memory form, plus the reads; memory:
    ///   `maxValidationRows * d` floats for the held-out rows.
    @discardableResult
    public func train(
        stream: some RowStream, maxValidationRows: Int = CompresSAEModel.defaultMaxValidationRows, options: TrainingOptions = TrainingOptions(),
        progress: ((Int, Int, Float) -> Bool)? = nil
    ) throws -> [Float] {
        guard maxValidationRows >= 0 else {
            throw CompresSAEError.invalid("max_validation_rows must be >= 0, got \(maxValidationRows)")
        }
        guard options.learningRateDecay != .cosine && options.learningRateDecay != .linear else {
            throw CompresSAEError.invalid(
                "lr_decay cosine and linear need the number of steps in advance, which a stream of unknown length does not give: use plateau or constant")
        }
        try options.validate(rows: 1)
        let kk = try beginTraining()
        defer { endTraining() }
        var batches = try StreamBatches(stream: stream, d: inputDim, maxValidationRows: maxValidationRows,
                                        options: options)
        var rng = SeededGenerator(seed: options.seed)
        return try runTraining(&batches, k: kk, options: options, rng: &rng, progress: progress)
    }

    private func train(
        reader: some RowReader, blockRows: Int, checkRows: Bool, options: TrainingOptions,
        progress: ((Int, Int, Float) -> Bool)?
    ) throws -> [Float] {
        let kk = try beginTraining()
        defer { endTraining() }
        var rng = SeededGenerator(seed: options.seed)
        var batches = try ShuffledBatches(
            reader: reader, blockRows: blockRows, d: inputDim, batchSize: min(options.batchSize, reader.rowCount),
            checkRows: checkRows, options: options, using: &rng)
        return try runTraining(&batches, k: kk, options: options, rng: &rng, progress: progress)
    }

    /// Marks the model as being trained and returns its k, read once with
    /// the flag that makes `setK` wait for `endTraining`: every step and
    /// validation pass of the call uses this k.
    private func beginTraining() throws -> Int {
        let kk = try lock.withWriteLock { () throws -> Int in
            guard !isTraining else { throw CompresSAEError(.busy, "the model is already being trained by another call") }
            isTraining = true
            return storedK
        }
        guard 4 * kk <= latentDim else {
            endTraining()
            throw CompresSAEError.invalid(
                "training needs 4k <= latent_dim (the loss uses the top-4k code): k = \(kk), latent_dim = \(latentDim)")
        }
        return kk
    }

    private func endTraining() {
        lock.withWriteLock { isTraining = false }
    }

    /// The training loop, the same for every kind of data: the learning-rate
    /// schedule, the steps, the dead-latent counts, the validation pass after
    /// an epoch (the first to end `validationSteps` steps or more after the
    /// previous one) and early stopping. `batches` gives the rows; `rng` is the
    /// generator it chose its held-out rows with, which goes on to shuffle.
    private func runTraining<Batches: TrainingBatches>(
        _ batches: inout Batches, k kk: Int, options: TrainingOptions, rng: inout SeededGenerator,
        progress: ((Int, Int, Float) -> Bool)?
    ) throws -> [Float] {
        let d = inputDim, h = latentDim
        let batchSize = min(options.batchSize, batches.trainingRows ?? options.batchSize)
        try Self.checkBatchEntries(rows: batchSize, k: kk)
        /// Steps of the whole call, once the rows per epoch are known (0 before).
        func plannedSteps() throws -> Int {
            guard let trainingRows = batches.trainingRows else { return 0 }
            let (steps, overflow) = options.epochs.multipliedReportingOverflow(
                by: (trainingRows + batchSize - 1) / batchSize)
            guard !overflow, steps <= 1 << 40 else { throw CompresSAEError.invalid("epochs x steps per epoch is too large") }
            return steps
        }
        var total = try plannedSteps()
        let workers = Parallel.threadCount(requested: options.numThreads)
        let buffers = try StepBuffers(rows: batchSize, d: d, h: h, m: 4 * kk, workers: workers)
        let adam = try AdamState(h: h, d: d)
        let batch = try FallibleBuffer<Float>(count: try Size.product(batchSize, d, what: "a training batch"),
                                              "a training batch of \(batchSize) rows")
        // Histories grow with the steps that run (a huge `epochs` bounded by
        // early stopping must not reserve its worst case).
        var history: [Float] = []
        lock.withWriteLock { storedHistory = []; storedDeadHistory = []; storedValidationHistory = [] }
        // Rows seen when each latent was last in a k-code (the start counts as a firing).
        let firedAt = try FallibleBuffer<Int>(count: h, zeroed: true, "the dead-latent counters")
        // Until the rows of an epoch are known, no window is complete.
        var window = options.deadLatentWindow > 0 ? options.deadLatentWindow : batches.trainingRows ?? Int.max
        var rowsSeen = 0
        var bestValidation = Double.infinity, validationsWithoutImprovement = 0
        // Steps at the last validation: a small set's epoch is a single step,
        // and the plateau rule has to count work, not passes.
        var stepAtValidation = 0
        // `.plateau`: the factor applied so far, and how many times it was cut.
        var plateauScale = 1.0, reductions = 0
        let sparseSimilarity = options.sparseSimilarityWeight > 0
            ? SimilarityTerm(weight: Float(options.sparseSimilarityWeight),
                             temperature: Float(options.similarityTemperature), sampleRows: options.similarityRows)
            : nil
        if let sparseSimilarity {
            // Made before the first step, so that running out of memory changes no weight.
            let sampled = min(sparseSimilarity.sampleRows, batchSize)
            if sampled >= 2 { _ = try buffers.similarityWorkspace(rows: sampled, k: kk, workers: min(workers, sampled)) }
        }

        // Made before the first step too; active once a window has shown which latents are dead.
        let deadLatents = options.deadLatentAuxWeight > 0
            ? try DeadLatentWorkspace(weight: Float(options.deadLatentAuxWeight),
                                      auxK: options.deadLatentAuxK(k: kk, d: d, h: h), rows: batchSize, d: d, h: h,
                                      blocks: buffers.latentBlocks)
            : nil

        // Huge but finite weights (from `init(weights:)`) can take a step's
        // products past the float range; then the call gives the model back.
        let startingWeights = try lock.withReadLock { () throws(CompresSAEError) in try WeightSnapshot(of: self) }

        var step = 0
        for _ in 0..<options.epochs {
            try batches.startEpoch(shuffle: options.shuffle, using: &rng)
            while true {
                // Read outside the lock: a reader may call back into the model.
                let count = try batches.nextBatch(into: batch.base, capacity: batchSize, using: &rng)
                if total == 0, let trainingRows = batches.trainingRows {
                    total = try plannedSteps()
                    if options.deadLatentWindow == 0 { window = trainingRows }
                }
                guard count > 0 else { break }
                let learningRate = options.learningRate(step: step + 1, total: total) * plateauScale
                if let deadLatents {
                    let seen = rowsSeen, span = window
                    deadLatents.setDead { seen >= span && seen - firedAt.base[$0] >= span }
                }
                let loss = try lock.withWriteLock { () throws -> Float in
                    let report = forwardBackward(batch.base, rows: count, k: kk, buffers: buffers, workers: workers,
                                                 deadLatents: deadLatents)
                    if let sparseSimilarity {
                        _ = try addSparseSimilarityGradient(sparseSimilarity, buffers: buffers, rows: count, k: kk,
                                                        workers: workers)
                    }
                    adam.step += 1
                    let scalars = AdamScalars(options: options, step: adam.step, learningRate: learningRate)
                    applyAdam(scalars, adam: adam, buffers: buffers, rows: count, k: kk, workers: workers,
                              deadLatents: deadLatents)
                    guard weightsAreUsable() else {
                        startingWeights.restore(into: self)
                        storedWeightsVersion += 1
                        throw CompresSAEError.invalid(
                            "training step \(step + 1) took a weight out of the float range a model may hold (weights or learning rate too large); the model keeps the weights it had before this call")
                    }
                    // Each k-code's latents fired at its row (rows ascend: the last one stays).
                    let selected = buffers.pointers.selected
                    for i in 0..<count {
                        for t in 0..<kk { firedAt.base[Int(selected[i * 4 * kk + t])] = rowsSeen + i + 1 }
                    }
                    rowsSeen += count
                    storedWeightsVersion += 1
                    storedHistory.append(report.loss)
                    var dead = 0
                    if rowsSeen >= window { for j in 0..<h where rowsSeen - firedAt.base[j] >= window { dead += 1 } }
                    storedDeadHistory.append(Float(dead) / Float(h))
                    return report.loss
                }
                history.append(loss)
                step += 1
                if let progress, !progress(step, total, loss) {
                    throw CompresSAEError(.cancelled, "training cancelled by the progress callback after step \(step) of \(total)")
                }
            }
            guard batches.validationRows > 0, step - stepAtValidation >= options.validationSteps else { continue }
            stepAtValidation = step
            let validationLoss = try meanValidationLoss(
                &batches, k: kk, batch: batch.base, batchSize: batchSize, buffers: buffers, workers: workers,
                lastStep: step, total: total, lastLoss: history.last ?? 0, progress: progress)
            lock.withWriteLock { storedValidationHistory.append(validationLoss) }
            if Double(validationLoss) < bestValidation * (1 - options.tolerance) {
                bestValidation = Double(validationLoss)
                validationsWithoutImprovement = 0
            } else {
                bestValidation = min(bestValidation, Double(validationLoss))
                validationsWithoutImprovement += 1
                if options.patience > 0 && validationsWithoutImprovement >= options.patience {
                    guard options.learningRateDecay == .plateau && reductions < options.plateauReductions else { break }
                    plateauScale *= options.plateauFactor
                    reductions += 1
                    validationsWithoutImprovement = 0
                }
            }
        }
        return history
    }

    /// The objective at `k` averaged over the held-out rows of `batches`, in
    /// batches of `batchSize` (the same arithmetic as a training step;
    /// nothing is updated). `k` is the one `buffers` were sized for.
    ///
    /// Each batch runs under the read lock on its own (training is this
    /// call's alone, so the weights do not change in between), and between
    /// batches `progress` is called again with the last step's
    /// `(lastStep, total, lastLoss)`: a callback can stop a long pass (Ctrl-C
    /// in Python) the way it stops training, and may call the model meanwhile.
    ///
    /// - Throws: `cancelled` when `progress` returns false.
    /// - Complexity: the forward pass of a training step per batch.
    private func meanValidationLoss<Batches: TrainingBatches>(
        _ batches: inout Batches, k: Int, batch: UnsafeMutablePointer<Float>, batchSize: Int,
        buffers: StepBuffers, workers: Int, lastStep: Int, total: Int, lastLoss: Float,
        progress: ((Int, Int, Float) -> Bool)?
    ) throws -> Float {
        var sum = 0.0, rows = 0, index = 0
        while true {
            let count = try batches.validationBatch(index, into: batch, capacity: batchSize)
            guard count > 0 else { break }
            if index > 0, let progress, !progress(lastStep, total, lastLoss) {
                throw CompresSAEError(.cancelled, "training cancelled by the progress callback during the validation pass after step \(lastStep) of \(total)")
            }
            let report = lock.withReadLock {
                forwardBackward(batch, rows: count, k: k, buffers: buffers, workers: workers)
            }
            sum += Double(report.loss) * Double(count)
            rows += count
            index += 1
        }
        return Float(sum / Double(rows))
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
        _ x: UnsafeBufferPointer<Float>, rows: Int, withGradients: Bool = true, numThreads threads: Int = 0
    ) throws -> (LossReport, Gradients?) {
        let d = inputDim, h = latentDim
        try InputValidation.checkRowCount(rows)
        try InputValidation.checkCount(x.count, rows: rows, cols: d, name: "input")
        let kk = k
        guard 4 * kk <= h else {
            throw CompresSAEError.invalid("the loss needs 4k <= latent_dim: k = \(kk), latent_dim = \(h)")
        }
        try InputValidation.checkRows(x.baseAddress!, rows: rows, dim: d)
        try Self.checkBatchEntries(rows: rows, k: kk)
        let workers = Parallel.threadCount(requested: threads)
        let buffers = try StepBuffers(rows: rows, d: d, h: h, m: 4 * kk, workers: workers)
        let gradients = withGradients
            ? Gradients(encoderWeights: try [Float].fallible(repeating: 0, count: d * h, "the encoder_w gradient"),
                        encoderBias: try [Float].fallible(repeating: 0, count: h, "the encoder_b gradient"),
                        decoderWeights: try [Float].fallible(repeating: 0, count: h * d, "the decoder_w gradient"))
            : nil
        return lock.withReadLock {
            let report = forwardBackward(x.baseAddress!, rows: rows, k: kk, buffers: buffers, workers: workers)
            guard var gradients else { return (report, nil) }
            gradients.encoderWeights.withUnsafeMutableBufferPointer { encBuffer in
                gradients.encoderBias.withUnsafeMutableBufferPointer { biasBuffer in
                    gradients.decoderWeights.withUnsafeMutableBufferPointer { decBuffer in
                        let enc = SharedPointer(encBuffer.baseAddress!), bias = SharedPointer(biasBuffer.baseAddress!)
                        let dec = SharedPointer(decBuffer.baseAddress!)
                        forEachLatentGradient(buffers: buffers, rows: rows, k: kk, workers: workers) { j, gEnc, gDec, gBias in
                            // encoder_w is [d,h]: latent j is column j.
                            for c in 0..<d { enc.base[c * h + j] = gEnc[c] }
                            (dec.base + j * d).update(from: gDec, count: d)
                            bias.base[j] = gBias
                        }
                    }
                }
            }
            return (report, gradients)
        }
    }

    /// The latent phase indexes the `b * 4k` selected entries of a batch with Int32.
    static func checkBatchEntries(rows: Int, k: Int) throws {
        let (entries, overflow) = rows.multipliedReportingOverflow(by: 4 &* min(k, Int(Int32.max)))
        guard !overflow, entries < Int(Int32.max) else {
            throw CompresSAEError.invalid("batch of \(rows) rows x 4k (k = \(k)) selected entries is too large (limit 2^31); use a smaller batch_size")
        }
    }

    // MARK: - Phase A: rows

    /// Encodes the batch and differentiates the loss with respect to each
    /// row's selected pre-activations and reconstructions; leaves in `buffers`
    /// what the per-latent phase needs. Rows are independent, so the results do
    /// not depend on how chunks are spread over workers. Caller holds a lock.
    ///
    /// - Complexity: the chunked encoder GEMM, then O(b (h + k d)).
    func forwardBackward(
        _ x: UnsafePointer<Float>, rows b: Int, k: Int, buffers: StepBuffers, workers: Int,
        deadLatents: DeadLatentWorkspace? = nil
    ) -> LossReport {
        let d = inputDim, h = latentDim, m = 4 * k
        let chunkRows = min(encoderChunkRows, b)
        let chunks = (b + chunkRows - 1) / chunkRows
        // Loss sums per chunk, added in chunk order: repeatable for any thread count.
        let chunkSums = buffers.chunkSums
        chunkSums.initialize(repeating: LossSums(), count: chunks)
        let sums = SharedPointer(chunkSums)
        let weightK = 1 / Float(b), weight4k = 1 / (8 * Float(b))
        let src = SharedConstPointer(x)
        let out = buffers.pointers
        let aux = deadLatents.flatMap { $0.isActive ? DeadLatentPointers($0) : nil }
        if let deadLatents { deadLatents.chunkSums.initialize(repeating: 0, count: chunks) }

        decoder.withUnsafeBufferPointer { decBuffer in
            let dec = SharedConstPointer(decBuffer.baseAddress!)
            forEachEncoderChunk(x, rows: b, threads: workers, normalizedOut: out.normalized,
                                scratchPool: buffers.encoderScratch) { start, count, pre, scratch in
                var local = LossSums(), localAux = 0.0
                let reconK = scratch.reconstructions, recon4k = reconK + d
                // The dead-latent term's residual (d floats) and gathered pre-activations.
                let auxWork = aux.map { $0.chunkWork + (start / chunkRows) * (d + h) }
                var boundHint: UInt32 = 0
                for r in 0..<count {
                    let i = start + r
                    let row = pre + r * h
                    let xi = src.base + i * d
                    let selected = out.selected + i * m, values = out.values + i * m
                    let gPre = out.gPre + i * m
                    let upstreamK = out.upstreamK + i * d, upstream4k = out.upstream4k + i * d
                    // Order within the k-code and within the rest does not matter here.
                    TopK.select(row: row, n: h, m: m, split: k, sorted: false, outIndices: selected,
                                scratch: scratch.selection, boundHint: &boundHint)
                    // Reconstructions: the k-code is a prefix of the 4k-code.
                    for t in 0..<m { values[t] = row[Int(selected[t])] }
                    for t in 0..<k {
                        local.l1 += Double(abs(values[t]))
                        if values[t] != 0 { local.l0 += 1 }
                    }
                    reconK.initialize(repeating: 0, count: d)
                    gatherAxpy(into: reconK, d, rowsOf: dec.base, indices: selected, weights: values, count: k)
                    recon4k.update(from: reconK, count: d)
                    gatherAxpy(into: recon4k, d, rowsOf: dec.base, indices: selected + k, weights: values + k,
                               count: m - k)
                    let xSquared = squaredNorm(xi, d)
                    let xNorm = max(robustNorm(xi, d), cosineNormFloor)
                    // The k-code's entries feed both reconstructions, the others only the 4k one:
                    // upstreamK = d(loss)/d(recon_k) + d(loss)/d(recon_4k).
                    let termsK = cosineGradient(x: xi, xNorm: xNorm, recon: reconK, d: d, weight: weightK, into: upstreamK)
                    let terms4k = cosineGradient(x: xi, xNorm: xNorm, recon: recon4k, d: d, weight: weight4k, into: upstream4k)
                    axpy(1, upstream4k, upstreamK, d)
                    local.cosine += Double(1 - termsK.cos)
                    local.cosine4k += Double(1 - terms4k.cos)
                    // |r - x|^2 = |r|^2 - 2 r.x + |x|^2 from the dot products already taken;
                    // rows whose squares overflow float take the direct sum.
                    if xSquared.isFinite && termsK.rr.isFinite && terms4k.rr.isFinite && termsK.xr.isFinite && terms4k.xr.isFinite {
                        local.l2 += Double(termsK.rr) - 2 * Double(termsK.xr) + Double(xSquared)
                        local.l2_4k += Double(terms4k.rr) - 2 * Double(terms4k.xr) + Double(xSquared)
                    } else {
                        for c in 0..<d {
                            let e = Double(reconK[c]) - Double(xi[c]), e4 = Double(recon4k[c]) - Double(xi[c])
                            local.l2 += e * e
                            local.l2_4k += e4 * e4
                        }
                    }
                    gatherDot(into: gPre, rowsOf: dec.base, indices: selected, count: k, with: upstreamK, d)
                    gatherDot(into: gPre + k, rowsOf: dec.base, indices: selected + k, count: m - k, with: upstream4k, d)
                    if let aux, let auxWork {
                        localAux += deadLatentRow(i, rows: b, pre: row, xn: out.normalized + i * d, reconK: reconK,
                                                  decoder: dec.base, aux: aux, gather: auxWork + d,
                                                  work: auxWork, scratch: scratch.selection)
                    }
                }
                sums.base[start / chunkRows] = local
                if let aux { aux.chunkSums[start / chunkRows] = localAux }
            }
        }
        var total = LossSums()
        for c in 0..<chunks { total.add(chunkSums[c]) }
        if let deadLatents {
            var auxTotal = 0.0
            if aux != nil { for c in 0..<chunks { auxTotal += deadLatents.chunkSums[c] } }
            deadLatents.lastLoss = Float(Double(deadLatents.weight) * auxTotal / Double(b))
        }
        return total.report(rows: b, dim: d)
    }

    // MARK: - Phase B: latents

    /// For every latent `j`, gathers the gradient of its encoder row, decoder
    /// row and bias from the rows that selected it, and hands them to
    /// `body(j, gEncoder, gDecoder, gBias)`. Latents no row selected get zero
    /// gradients.
    ///
    /// Latents are processed in blocks (`StepBuffers.latentBlockSize`);
    /// within a block the entries are visited in row order, so each batch row
    /// is read once per block, sequentially, instead of once per entry at
    /// random (the batch's rows do not fit in cache). Each latent still
    /// sums its rows in ascending order: the gradients are the same for any
    /// thread count.
    ///
    /// - Complexity: O(b k d) arithmetic; O(b d * blocks) memory traffic.
    func forEachLatentGradient(
        buffers: StepBuffers, rows b: Int, k: Int, workers: Int, deadLatents: DeadLatentWorkspace? = nil,
        _ body: @Sendable (Int, UnsafePointer<Float>, UnsafePointer<Float>, Float) -> Void
    ) {
        let d = inputDim, h = latentDim
        let blockSize = buffers.latentBlockSize, blocks = buffers.latentBlocks
        buffers.groupEntriesByLatentBlock(rows: b, k: k)
        let p = buffers.pointers
        // The dead-latent term's entries: a second pass of the same kernel per block.
        let aux = deadLatents.flatMap { $0.isActive ? $0 : nil }
        aux?.groupEntriesByLatentBlock(rows: b, blocks: blocks, shift: buffers.latentBlockShift)
        let auxStart = aux.map { SharedConstPointer(UnsafePointer($0.blockStart)) }
        let auxEntries = aux.map { SharedConstPointer(UnsafePointer($0.blockEntries)) }
        let auxUpstream = aux.map { SharedConstPointer(UnsafePointer($0.upstream)) }
        let stride = min(workers, blocks, buffers.latentWorkers)
        let firstAccumulators = SharedPointer(buffers.latentAccumulators(worker: 0))
        Parallel.run(workers: stride) { w in
            let accumulators = firstAccumulators.base + w * blockSize * (2 * d + 1)
            let accBias = accumulators + 2 * blockSize * d
            var blockIndex = w
            while blockIndex < blocks {
                let first = blockIndex * blockSize
                let count = min(blockSize, h - first)
                let entries = p.blockEntries + p.blockStart[blockIndex]
                let entryCount = p.blockStart[blockIndex + 1] - p.blockStart[blockIndex]
                accumulators.initialize(repeating: 0, count: blockSize * (2 * d + 1))
                csae_k_latent_block_sums(accumulators, accBias, Int64(d), entries, Int64(entryCount),
                                         p.normalized, p.upstreamK, p.upstream4k)
                if let auxStart, let auxEntries, let auxUpstream {
                    let start = auxStart.base[blockIndex], end = auxStart.base[blockIndex + 1]
                    if end > start {
                        csae_k_latent_block_sums(accumulators, accBias, Int64(d), auxEntries.base + start,
                                                 Int64(end - start), p.normalized, auxUpstream.base, auxUpstream.base)
                    }
                }
                for local in 0..<count {
                    let acc = accumulators + local * 2 * d
                    body(first + local, acc, acc + d, accBias[local])
                }
                blockIndex += stride
            }
        }
    }

    /// One bias-corrected Adam update of all parameters, fused with the
    /// gradient gathering and the decoder renormalisation: each latent's rows
    /// are updated while they are in cache. Caller holds the write lock.
    func applyAdam(
        _ s: AdamScalars, adam: AdamState, buffers: StepBuffers, rows: Int, k: Int, workers: Int,
        deadLatents: DeadLatentWorkspace? = nil
    ) {
        let d = inputDim
        encoderT.withUnsafeMutableBufferPointer { encBuffer in
            encoderBias.withUnsafeMutableBufferPointer { biasBuffer in
                decoder.withUnsafeMutableBufferPointer { decBuffer in
                    let enc = SharedPointer(encBuffer.baseAddress!), bias = SharedPointer(biasBuffer.baseAddress!)
                    let dec = SharedPointer(decBuffer.baseAddress!)
                    let moments = adam.pointers
                    forEachLatentGradient(buffers: buffers, rows: rows, k: k, workers: workers,
                                          deadLatents: deadLatents) { j, gEnc, gDec, gBias in
                        let row = j * d
                        withUnsafePointer(to: s) { s in
                            csae_k_adam(enc.base + row, moments.encoderT + row, moments.encoderTSq + row, gEnc,
                                        Int64(d), s)
                            csae_k_adam(dec.base + row, moments.decoder + row, moments.decoderSq + row, gDec,
                                        Int64(d), s)
                            var g = gBias
                            csae_k_adam(bias.base + j, moments.bias + j, moments.biasSq + j, &g, 1, s)
                        }
                        let decRow = dec.base + row
                        let norm = squaredNorm(decRow, d).squareRoot()
                        if norm > 0 { for c in 0..<d { decRow[c] = decRow[c] / norm } }
                    }
                }
            }
        }
    }
}

/// `1 - cos` needs `d cos / d recon = x / (|x||r|) - cos * r / |r|^2`; writes
/// `-weight * d cos / d recon` (the objective's gradient) and returns `cos`
/// with the dot products it took (`|r|^2`, `x . r`).
@inline(__always)
private func cosineGradient(
    x: UnsafePointer<Float>, xNorm: Float, recon: UnsafePointer<Float>, d: Int,
    weight: Float, into out: UnsafeMutablePointer<Float>
) -> (cos: Float, rr: Float, xr: Float) {
    let rr = squaredNorm(recon, d), xr = dot(x, recon, d)
    let rNorm = max(rr.squareRoot(), cosineNormFloor)
    let cos = xr / (xNorm * rNorm)
    let alpha = -weight / (xNorm * rNorm), beta = weight * cos / (rNorm * rNorm)
    // Rows of huge scale (or reconstructions of huge norm) overflow these
    // float products, or leave `alpha` subnormal; they take the double path.
    guard rr.isFinite && xr.isFinite && cos.isFinite && beta.isFinite
            && abs(alpha) >= Float.leastNormalMagnitude else {
        return wideCosineGradient(x: x, recon: recon, d: d, weight: weight, into: out)
    }
    csae_k_axpby(out, alpha, x, beta, recon, Int64(d))
    return (cos, rr, xr)
}

/// `cosineGradient` in double precision, for rows whose float products
/// overflow: any finite `x` and `recon` give finite results. Returns `rr` and
/// `xr` rounded to float (possibly infinite; the caller then sums `|r - x|^2` directly).
private func wideCosineGradient(
    x: UnsafePointer<Float>, recon: UnsafePointer<Float>, d: Int, weight: Float, into out: UnsafeMutablePointer<Float>
) -> (cos: Float, rr: Float, xr: Float) {
    var xx = 0.0, rr = 0.0, xr = 0.0
    for c in 0..<d {
        let xc = Double(x[c]), rc = Double(recon[c])
        xx += xc * xc
        rr += rc * rc
        xr += xc * rc
    }
    let floor = Double(cosineNormFloor)
    let xNorm = max(xx.squareRoot(), floor), rNorm = max(rr.squareRoot(), floor)
    let cos = xr / (xNorm * rNorm)
    let alpha = -Double(weight) / (xNorm * rNorm), beta = Double(weight) * cos / (rNorm * rNorm)
    for c in 0..<d { out[c] = Float(alpha * Double(x[c]) + beta * Double(recon[c])) }
    return (Float(cos), Float(rr), Float(xr))
}
