/// Version of the index file layout written by `SparseIndex.save`.
let indexFormatVersion = "1"

extension CompresSAEModel {
    /// A 64-bit FNV-1a hash of the shape and weights: an index file records
    /// it so that loading it against another model is refused.
    ///
    /// - Complexity: O(h d).
    func fingerprint() -> String {
        lock.withReadLock {
            var hash: UInt64 = 0xCBF2_9CE4_8422_2325
            func mix(_ bytes: UnsafeRawBufferPointer) {
                // Eight bytes at a time: the hash only needs to tell models apart.
                let words = bytes.count / 8
                for w in 0..<words {
                    hash = (hash ^ bytes.loadUnaligned(fromByteOffset: w * 8, as: UInt64.self)) &* 0x0000_0100_0000_01B3
                }
                for b in (words * 8)..<bytes.count { hash = (hash ^ UInt64(bytes[b])) &* 0x0000_0100_0000_01B3 }
            }
            withUnsafeBytes(of: (Int64(inputDim), Int64(latentDim))) { mix($0) }
            encoderT.withUnsafeBytes { mix($0) }
            encoderBias.withUnsafeBytes { mix($0) }
            decoder.withUnsafeBytes { mix($0) }
            let hex = String(hash, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }
    }
}

extension SparseIndex {
    /// Saves the index (its codes in the layout of its mode and storage, and
    /// the model's fingerprint) as a safetensors file, atomically.
    public func save(to path: String) throws {
        let fingerprint = model.fingerprint()
        // Merged and read under one write lock: an add from another thread
        // cannot land between the merge and the snapshot.
        let (tensors, metadata) = try lock.withWriteLock { () throws -> ([Safetensors.OutputTensor], [(String, String)]) in
            try checkModelVersion()
            try mergePending()
            let s = state
            let k = s.k ?? 0
            var tensors: [Safetensors.OutputTensor] = []
            switch (mode, storage) {
            case (.reconstructed, .standard):
                tensors = [.int32("indices", shape: [s.count, k], s.rowIndices),
                           .float32("values", shape: [s.count, k], s.rowValues)]
            case (.reconstructed, .compact):
                tensors = [.uint16("indices", dtype: "U16", shape: [s.count, k], s.rowIndices16),
                           .uint16("values", dtype: "F16", shape: [s.count, k], s.rowValues16)]
            case (.sparse, _):
                tensors = [.int64("posting_start", shape: [s.postingStart.count], s.postingStart.map(Int64.init)),
                           .int32("posting_ids", shape: [s.postingLocalIDs.count],
                                  globalPostingIDs(listedItems: s.count)),
                           storage == .standard
                               ? .float32("posting_values", shape: [s.postingValues.count], s.postingValues)
                               : .uint16("posting_values", dtype: "F16", shape: [s.postingValues16.count], s.postingValues16)]
            }
            let metadata = [("format", "compressae-index"), ("format_version", indexFormatVersion),
                            ("mode", mode.name), ("storage", storage.name), ("k", String(k)),
                            ("count", String(s.count)), ("input_dim", String(model.inputDim)),
                            ("latent_dim", String(model.latentDim)), ("model_fingerprint", fingerprint)]
            return (tensors, metadata)
        }
        try Safetensors.write(tensors, metadata: metadata, to: path)
    }

    /// Loads an index saved by `save`, for the same model.
    ///
    /// - Throws: `CompresSAEError` for a damaged file, or when `model` is not
    ///   the model (shape and weights) the index was built with.
    public static func load(from path: String, model: CompresSAEModel) throws -> SparseIndex {
        let file = try Safetensors.File(path: path)
        let meta = file.metadata
        func fail(_ message: String) -> CompresSAEError { .format("'\(path)': \(message)") }
        guard meta["format"] == "compressae-index" else { throw fail("not a compressae index file (no format metadata)") }
        guard meta["format_version"] == indexFormatVersion else {
            throw fail("index format version \(meta["format_version"] ?? "?"); this library reads version \(indexFormatVersion)")
        }
        guard let mode = meta["mode"].flatMap({ $0 == "sparse" ? Mode.sparse : $0 == "reconstructed" ? Mode.reconstructed : nil }),
              let storage = meta["storage"].flatMap({ $0 == "standard" ? Storage.standard : $0 == "compact" ? Storage.compact : nil })
        else { throw fail("unknown mode or storage") }
        guard let k = meta["k"].flatMap(Int.init), let count = meta["count"].flatMap(Int.init),
              let d = meta["input_dim"].flatMap(Int.init), let h = meta["latent_dim"].flatMap(Int.init),
              k >= 0, count >= 0, count <= Int(Int32.max), (count == 0) == (k == 0), k <= h
        else { throw fail("invalid k, count or dimensions in the metadata") }
        guard d == model.inputDim && h == model.latentDim else {
            throw CompresSAEError.invalid("'\(path)' indexes codes of a \(d) -> \(h) model; this model is \(model.inputDim) -> \(model.latentDim)")
        }
        guard meta["model_fingerprint"] == model.fingerprint() else {
            throw CompresSAEError.invalid("'\(path)' was built with different model weights than the model given")
        }
        let index = try SparseIndex(model: model, mode: mode, storage: storage)
        var s = index.state
        var postingIDs: [Int32] = []
        s.count = count
        s.k = count > 0 ? k : nil
        s.modelVersion = model.weightsVersion
        let nonzeros = count * k
        switch (mode, storage) {
        case (.reconstructed, .standard):
            s.rowIndices = try file.readInt32("indices", shape: [count, k])
            s.rowValues = try file.readFloat32("values", shape: [count, k])
            try s.rowIndices.withUnsafeBufferPointer { ib in
                try s.rowValues.withUnsafeBufferPointer { vb in
                    try validateCodes(indices: ib.baseAddress!, values: vb.baseAddress!, rows: count, k: k,
                                      latentDim: h, what: "stored code")
                }
            }
        case (.reconstructed, .compact):
            s.rowIndices16 = try file.readUInt16("indices", dtype: "U16", shape: [count, k])
            s.rowValues16 = try file.readUInt16("values", dtype: "F16", shape: [count, k])
            guard s.rowIndices16.allSatisfy({ Int($0) < h }) else { throw fail("a stored latent index is >= \(h)") }
            guard s.rowValues16.allSatisfy(HalfPrecision.isStorable) else {
                throw fail("a stored value is not a finite zero or normal half")
            }
        case (.sparse, _):
            let start = try file.readInt64("posting_start", shape: [h + 1])
            guard start[0] == 0, start[h] == Int64(nonzeros), zip(start, start.dropFirst()).allSatisfy({ $0 <= $1 }) else {
                throw fail("posting_start is not a non-decreasing sequence from 0 to count x k")
            }
            s.postingStart = start.map(Int.init)
            postingIDs = try file.readInt32("posting_ids", shape: [nonzeros])
            for j in 0..<h {
                var previous: Int32 = -1
                for e in s.postingStart[j]..<s.postingStart[j + 1] {
                    let id = postingIDs[e]
                    guard id > previous, Int(id) < count else {
                        throw fail("posting list \(j) has ids out of range or not ascending")
                    }
                    previous = id
                }
            }
            if storage == .standard {
                s.postingValues = try file.readFloat32("posting_values", shape: [nonzeros])
                guard s.postingValues.allSatisfy({ $0.isFinite }) else { throw fail("a stored value is not finite") }
            } else {
                s.postingValues16 = try file.readUInt16("posting_values", dtype: "F16", shape: [nonzeros])
                guard s.postingValues16.allSatisfy(HalfPrecision.isStorable) else {
                    throw fail("a stored value is not a finite zero or normal half")
                }
            }
        }
        index.state = s
        if mode == .sparse { index.setPostingIDs(postingIDs) }
        return index
    }
}
