extension SparseIndex {
    /// The codes of an index file, as read, before they are trusted.
    struct LoadedCodes {
        let mode: Mode
        let storage: Storage
        let count: Int
        let k: Int
        let latentDim: Int
        var rowIndices: [Int32] = []
        var rowValues: [Float] = []
        var rowIndices16: [UInt16] = []
        var rowValues16: [UInt16] = []
        var postingStart: [Int64] = []
        var postingIDs: [Int32] = []
        var postingValues: [Float] = []
        var postingValues16: [UInt16] = []
        var rowLevels: [UInt8] = []
        var postingLevels: [UInt8] = []
        var itemScales: [Float] = []

        /// How far a stored unit vector's norm may be from 1, relative to the
        /// scale of the sum that makes it: float32 rounding (standard), half
        /// rounding of 2^-11 per value (compact), each with a wide margin.
        /// Anything a writer did not write (a value scaled by 1.01 or by
        /// 1000) is far outside.
        var normTolerance: Float { storage == .standard ? 1e-3 : 1e-2 }

        /// Rows below which the decoded-norm check adds no worker.
        static let rowsPerValidationWorker = 64

        func value(_ position: Int, posting: Bool, item: Int) -> Float {
            if let bits = storage.levelBits {
                let level = SparseIndex.level(posting ? postingLevels : rowLevels,
                                              posting ? position : item * SparseIndex.levelRowBytes(k: k, bits: bits) * 8 / bits + position % k,
                                              bits: bits)
                return Float(level) * itemScales[item]
            }
            switch (storage, posting) {
            case (.standard, false): return rowValues[position]
            case (.compact, false): return HalfPrecision.decode(rowValues16[position])
            case (.standard, true): return postingValues[position]
            case (.compact, true): return HalfPrecision.decode(postingValues16[position])
            default: return 0
            }
        }

        /// Verifies everything `save` guarantees about the codes:
        /// - every value is finite (compact: a zero or normal half);
        /// - reconstructed mode: each row's k latents lie in `0..<h` and are
        ///   distinct, and the row decodes to a unit vector (or is all zero:
        ///   an item whose decoded vector was zero);
        /// - sparse mode: the posting lists' offsets run from 0 to count x k
        ///   without decreasing, each list's item ids ascend strictly below
        ///   `count` (no latent repeated within an item), every item is in
        ///   exactly k lists, and its values form a unit vector (or are all zero).
        ///
        /// - Parameter weightsVersion: the model's version when its
        ///   fingerprint was checked; the decoder must still be that one.
        /// - Throws: `format`-worthy messages as `invalidArgument` only for
        ///   the model changing meanwhile; `outOfMemory` for scratch buffers.
        /// - Complexity: O(count k) in sparse mode; O(count k d) in
        ///   reconstructed mode (every row decoded, on all cores).
        func validate(model: CompresSAEModel, weightsVersion: Int) throws {
            if storage.levelBits != nil { try validateLevels() }
            switch mode {
            case .reconstructed: try validateRows(model: model, weightsVersion: weightsVersion)
            case .sparse: try validatePostings()
            }
            if storage.levelBits != nil { try validateLevelMaxima(model: model) }
        }

        private func validateRows(model: CompresSAEModel, weightsVersion: Int) throws {
            let nonzeros = count * k
            switch storage {
            case .standard:
                if let e = rowValues.firstIndex(where: { !$0.isFinite }) {
                    throw CompresSAEError.format("stored code row \(e / k): value at position \(e % k) is not finite")
                }
                try checkRows(rowIndices, model: model, weightsVersion: weightsVersion)
            case .compact, .packed8, .packed4:
                if storage == .compact {
                    guard rowValues16.allSatisfy(HalfPrecision.isStorable) else {
                        throw CompresSAEError.format("a stored value is not a finite zero or normal half")
                    }
                }
                let widened = try [Int32].fallible(count: nonzeros, "the index's latent indices") { out in
                    for e in 0..<nonzeros { out[e] = Int32(rowIndices16[e]) }
                }
                try checkRows(widened, model: model, weightsVersion: weightsVersion)
            }
        }

        /// Latents in range and distinct per row, and unit decoded norms.
        private func checkRows(_ indices: [Int32], model: CompresSAEModel, weightsVersion: Int) throws {
            let h = latentDim, k = self.k, count = self.count
            guard count > 0 else { return }
            do {
                try indices.withUnsafeBufferPointer {
                    try InputValidation.checkSupports($0.baseAddress!, rows: count, k: k, latentDim: h, what: "stored code")
                }
            } catch let e as CompresSAEError {
                throw CompresSAEError.format(e.message)
            }
            let nonzeros = try Size.product(count, k, what: "the index's values")
            let values = try FallibleBuffer<Float>(count: nonzeros, "the index's values")
            for e in 0..<nonzeros { values.base[e] = value(e, posting: false, item: e / k) }
            let tolerance = normTolerance
            // Half precision flushes magnitudes below its smallest normal to zero.
            let flushed: Float = storage == .compact ? HalfPrecision.smallestNormal : 0
            let d = model.inputDim
            let workers = max(1, min(Parallel.threadCount(requested: 0), count / Self.rowsPerValidationWorker))
            // Per worker, the first row it found that does not decode to a unit vector.
            let firstBad = try FallibleBuffer<Int>(count: workers, "per-worker results")
            firstBad.buffer.initialize(repeating: Int.max)
            let scratch = try FallibleBuffer<Float>(count: try Size.product(workers, d, what: "decode scratch"),
                                                    "decode scratch")
            let rowNorms = try FallibleBuffer<Float>(count: h, "decoder row norms")
            try model.withDecoder { decoderRows, version in
                guard version == weightsVersion else {
                    throw CompresSAEError.invalid("the model was trained while the index was loading")
                }
                for j in 0..<h { rowNorms.base[j] = robustNorm(decoderRows + j * d, d) }
                let decoder = SharedConstPointer(decoderRows)
                indices.withUnsafeBufferPointer { ib in
                    let idx = SharedConstPointer(ib.baseAddress!)
                    Parallel.run(workers: workers) { w in
                        let decoded = scratch.base + w * d, val = values.base, norms = rowNorms.base
                        for i in (count * w / workers)..<(count * (w + 1) / workers) {
                            decoded.initialize(repeating: 0, count: d)
                            var scale: Float = 0, allZero = true
                            for t in 0..<k {
                                let v = val[i * k + t], j = Int(idx.base[i * k + t])
                                if v != 0 { allZero = false }
                                axpy(v, decoder.base + j * d, decoded, d)
                                scale += abs(v) * norms[j] + flushed * norms[j]
                            }
                            if allZero { continue }
                            let norm = robustNorm(decoded, d)
                            if !(abs(norm - 1) <= tolerance * max(1, scale)) {
                                firstBad.base[w] = i
                                return
                            }
                        }
                    }
                }
            }
            if let row = firstBad.buffer.min(), row != Int.max {
                throw CompresSAEError.format("stored code row \(row) does not decode to a unit vector (the writer stores codes divided by their decoded norm)")
            }
        }

        private func validatePostings() throws {
            let h = latentDim, count = self.count, k = self.k, nonzeros = count * k
            guard postingStart.first == 0, postingStart.last == Int64(nonzeros),
                  zip(postingStart, postingStart.dropFirst()).allSatisfy({ $0 <= $1 }) else {
                throw CompresSAEError.format("posting_start is not a non-decreasing sequence from 0 to count x k")
            }
            var entries = try [Int32].fallible(repeating: 0, count: count, "per-item entry counts")
            var sumSquares = try [Float].fallible(repeating: 0, count: count, "per-item norms")
            var nonzero = try [Bool].fallible(repeating: false, count: count, "per-item flags")
            for j in 0..<h {
                var previous: Int32 = -1
                for e in Int(postingStart[j])..<Int(postingStart[j + 1]) {
                    let id = postingIDs[e]
                    guard id > previous, Int(id) < count else {
                        throw CompresSAEError.format("posting list \(j) has item ids out of range or not strictly ascending (an item listed twice under one latent)")
                    }
                    previous = id
                    if storage == .compact {
                        guard HalfPrecision.isStorable(postingValues16[e]) else {
                            throw CompresSAEError.format("a stored value is not a finite zero or normal half")
                        }
                    }
                    let v = value(e, posting: true, item: Int(id))
                    guard v.isFinite else { throw CompresSAEError.format("posting list \(j) holds a non-finite value") }
                    let item = Int(id)
                    entries[item] += 1
                    sumSquares[item] += v * v
                    if v != 0 { nonzero[item] = true }
                }
            }
            let tolerance = normTolerance
            for item in 0..<count {
                guard entries[item] == Int32(k) else {
                    throw CompresSAEError.format("item \(item) is in \(entries[item]) posting lists; each item is in exactly k = \(k)")
                }
                // Values are stored divided by the code's norm: a unit vector, or zeros.
                guard !nonzero[item] || abs(sumSquares[item].squareRoot() - 1) <= tolerance else {
                    throw CompresSAEError.format("item \(item)'s stored values have norm \(sumSquares[item].squareRoot()), not 1 (the writer stores codes divided by their norm)")
                }
            }
        }
    }
}
