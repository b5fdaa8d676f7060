/// Version of the index file layout written by `SparseIndex.save`.
///
/// Version 2 added the file checksum and the XXH64 weights fingerprint.
/// Version 1 files are refused: they carry no checksum, and a version 1 save
/// of an index whose model had been trained after its items were added
/// recorded the new weights' fingerprint beside codes of the old ones, so a
/// version 1 file cannot be trusted to match any model. An index is rebuilt
/// from the model and the embeddings.
let indexFormatVersion = "2"

extension CompresSAEModel {
    /// The model's weights version and a fingerprint of its shape and
    /// weights, taken under one read lock (so they describe the same weights).
    ///
    /// The fingerprint is the XXH64, as 16 hex digits, of `d` and `h` (two
    /// little-endian int64) followed by the float32 bytes of `encoder_w`
    /// transposed (`[h,d]`, the model's internal layout), `encoder_b` and
    /// `decoder_w`. An index file records it so that loading the file
    /// against a model with other weights is refused.
    ///
    /// - Complexity: O(h d).
    func weightsFingerprint() -> (version: Int, fingerprint: String) {
        lock.withReadLock {
            var hasher = XXH64()
            withUnsafeBytes(of: (Int64(inputDim).littleEndian, Int64(latentDim).littleEndian)) { hasher.update($0) }
            #if _endian(big)
            for w in [encoderT, encoderBias, decoder] {
                w.map { $0.bitPattern.littleEndian }.withUnsafeBytes { hasher.update($0) }
            }
            #else
            encoderT.withUnsafeBytes { hasher.update($0) }
            encoderBias.withUnsafeBytes { hasher.update($0) }
            decoder.withUnsafeBytes { hasher.update($0) }
            #endif
            return (storedWeightsVersion, XXH64.hex(hasher.finalize()))
        }
    }
}

extension SparseIndex {
    /// The tensors of an index file of `mode` and `storage`, in the order the
    /// writer puts them.
    static func tensorNames(mode: Mode, storage: Storage) -> [String] {
        switch (mode, storage.levelBits != nil) {
        case (.reconstructed, false): return ["indices", "values"]
        case (.reconstructed, true): return ["indices", "levels", "item_scales"]
        case (.sparse, false): return ["posting_start", "posting_ids", "posting_values"]
        case (.sparse, true): return ["posting_start", "posting_ids", "posting_levels", "item_scales"]
        }
    }

    /// Saves the index (its codes in the layout of its mode and storage, the
    /// fingerprint of the weights the codes were made with, and a checksum of
    /// the payload) as a safetensors file, atomically and durably.
    ///
    /// - Throws: `invalidArgument` when the model was trained after items
    ///   were added (the codes no longer match its weights, and a file would
    ///   claim they do); `io` when the file cannot be written.
    public func save(to path: String) throws {
        // Taken before the index's lock: the fingerprint costs O(h d), and
        // holding the lock that long would stall searches. If the model
        // trains meanwhile, the captured version still tells whether the
        // codes were made with the fingerprinted weights.
        let (version, fingerprint) = model.weightsFingerprint()
        // Merged and read under one write lock: an add from another thread
        // cannot land between the merge and the snapshot.
        let (tensors, metadata) = try lock.withWriteLock { () throws -> ([Safetensors.OutputTensor], [(String, String)]) in
            if let made = state.modelVersion, made != version {
                throw CompresSAEError.invalid(
                    "the model was trained after items were added to this index: its codes no longer match the model's weights, so it cannot be saved as an index of this model; build a new index")
            }
            // Reconstructed mode's candidate lists are not saved: nothing to merge.
            if mode == .sparse { try mergePending() }
            // The arrays are copied while the lock is held: an add after it
            // is released may append to them in place.
            let s = state
            let k = s.k ?? 0
            var tensors: [Safetensors.OutputTensor] = []
            switch (mode, storage) {
            case (.reconstructed, .standard):
                tensors = [.int32("indices", shape: [s.count, k], try .fallibleCopy(of: s.rowIndices, "index save")),
                           .float32("values", shape: [s.count, k], try .fallibleCopy(of: s.rowValues, "index save"))]
            case (.reconstructed, .compact):
                tensors = [.uint16("indices", dtype: "U16", shape: [s.count, k], try .fallibleCopy(of: s.rowIndices16, "index save")),
                           .uint16("values", dtype: "F16", shape: [s.count, k], try .fallibleCopy(of: s.rowValues16, "index save"))]
            case (.reconstructed, .packed8), (.reconstructed, .packed4):
                tensors = [.uint16("indices", dtype: "U16", shape: [s.count, k], try .fallibleCopy(of: s.rowIndices16, "index save")),
                           Self.levelTensor("levels", bits: storage.levelBits!,
                                            shape: [s.count, Self.levelRowBytes(k: k, bits: storage.levelBits!)],
                                            try .fallibleCopy(of: s.rowLevels, "index save")),
                           .float32("item_scales", shape: [s.count], try .fallibleCopy(of: s.itemScales, "index save"))]
            case (.sparse, .packed8), (.sparse, .packed4):
                tensors = [.int64("posting_start", shape: [s.postingStart.count], s.postingStart.map(Int64.init)),
                           .int32("posting_ids", shape: [s.postingLocalIDs.count], globalPostingIDs(listedItems: s.count)),
                           Self.levelTensor("posting_levels", bits: storage.levelBits!, shape: [s.postingLevels.count],
                                            try .fallibleCopy(of: s.postingLevels, "index save")),
                           .float32("item_scales", shape: [s.count], try .fallibleCopy(of: s.itemScales, "index save"))]
            case (.sparse, _):
                tensors = [.int64("posting_start", shape: [s.postingStart.count], s.postingStart.map(Int64.init)),
                           .int32("posting_ids", shape: [s.postingLocalIDs.count],
                                  globalPostingIDs(listedItems: s.count)),
                           storage == .standard
                               ? .float32("posting_values", shape: [s.postingValues.count], try .fallibleCopy(of: s.postingValues, "index save"))
                               : .uint16("posting_values", dtype: "F16", shape: [s.postingValues16.count], try .fallibleCopy(of: s.postingValues16, "index save"))]
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
    /// Everything the writer guarantees is verified before the index is
    /// used: the file's checksum, the model's fingerprint, and the meaning
    /// of the codes (`SparseIndex.LoadedCodes.validate`).
    ///
    /// - Throws: `format` for a damaged or foreign file; `invalidArgument`
    ///   when `model` is not the model (shape and weights) the index was
    ///   built with; `outOfMemory` when its buffers cannot be had.
    /// - Complexity: O(file bytes + h) plus, in reconstructed mode, O(count k d)
    ///   to check that every code decodes to a unit vector.
    public static func load(from path: String, model: CompresSAEModel) throws -> SparseIndex {
        let file = try Safetensors.File(path: path)
        let meta = file.metadata
        func fail(_ message: String) -> CompresSAEError { .format("'\(path)': \(message)") }
        guard meta["format"] == "compressae-index" else { throw fail("not a compressae index file (no format metadata)") }
        guard meta["format_version"] == indexFormatVersion else {
            if meta["format_version"] == "1" {
                throw fail("index format version 1 has no checksum and may hold codes of weights other than those it names; rebuild the index (add the embeddings to a new index) and save it again")
            }
            throw fail("index format version \(meta["format_version"] ?? "?"); this library reads version \(indexFormatVersion)")
        }
        guard let mode = meta["mode"].flatMap({ $0 == "sparse" ? Mode.sparse : $0 == "reconstructed" ? Mode.reconstructed : nil }),
              let storage = meta["storage"].flatMap({ name in (0...3).lazy.compactMap { Storage(rawValue: Int32($0)) }.first { $0.name == name } })
        else { throw fail("unknown mode or storage") }
        guard let k = meta["k"].flatMap(Int.init), let count = meta["count"].flatMap(Int.init),
              let d = meta["input_dim"].flatMap(Int.init), let h = meta["latent_dim"].flatMap(Int.init),
              k >= 0, count >= 0, count <= Int(Int32.max), (count == 0) == (k == 0), k <= h
        else { throw fail("invalid k, count or dimensions in the metadata") }
        guard d == model.inputDim && h == model.latentDim else {
            throw CompresSAEError.invalid("'\(path)' indexes codes of a \(d) -> \(h) model; this model is \(model.inputDim) -> \(model.latentDim)")
        }
        let names = tensorNames(mode: mode, storage: storage)
        guard file.tensors.count == names.count, names.allSatisfy({ file.tensors[$0] != nil }) else {
            throw fail("holds tensors \(file.tensors.keys.sorted().prefix(8)); an index of this mode holds exactly \(names)")
        }
        let (version, fingerprint) = model.weightsFingerprint()
        guard meta["model_fingerprint"] == fingerprint else {
            throw CompresSAEError.invalid("'\(path)' was built with different model weights than the model given")
        }
        // count * k <= Int32.max * Int32.max cannot overflow; it is bounded
        // by the file's size through the tensors' shapes below.
        let nonzeros = count * k
        var codes = LoadedCodes(mode: mode, storage: storage, count: count, k: k, latentDim: h)
        var digest: Safetensors.PayloadDigest? = file.digest()
        switch (mode, storage) {
        case (.reconstructed, .standard):
            codes.rowIndices = try file.readInt32("indices", shape: [count, k], digest: &digest)
            codes.rowValues = try file.readFloat32("values", shape: [count, k], digest: &digest)
        case (.reconstructed, .compact):
            codes.rowIndices16 = try file.readUInt16("indices", dtype: "U16", shape: [count, k], digest: &digest)
            codes.rowValues16 = try file.readUInt16("values", dtype: "F16", shape: [count, k], digest: &digest)
        case (.reconstructed, .packed8), (.reconstructed, .packed4):
            let bits = storage.levelBits!
            codes.rowIndices16 = try file.readUInt16("indices", dtype: "U16", shape: [count, k], digest: &digest)
            codes.rowLevels = try file.read("levels", dtype: bits == 8 ? "I8" : "U8",
                                            shape: [count, levelRowBytes(k: k, bits: bits)], as: UInt8.self, digest: &digest)
            codes.itemScales = try file.readFloat32("item_scales", shape: [count], digest: &digest)
        case (.sparse, .packed8), (.sparse, .packed4):
            let bits = storage.levelBits!
            codes.postingStart = try file.readInt64("posting_start", shape: [h + 1], digest: &digest)
            codes.postingIDs = try file.readInt32("posting_ids", shape: [nonzeros], digest: &digest)
            codes.postingLevels = try file.read("posting_levels", dtype: bits == 8 ? "I8" : "U8",
                                                shape: [levelBytes(nonzeros, bits: bits)], as: UInt8.self, digest: &digest)
            codes.itemScales = try file.readFloat32("item_scales", shape: [count], digest: &digest)
        case (.sparse, _):
            codes.postingStart = try file.readInt64("posting_start", shape: [h + 1], digest: &digest)
            codes.postingIDs = try file.readInt32("posting_ids", shape: [nonzeros], digest: &digest)
            if storage == .standard {
                codes.postingValues = try file.readFloat32("posting_values", shape: [nonzeros], digest: &digest)
            } else {
                codes.postingValues16 = try file.readUInt16("posting_values", dtype: "F16", shape: [nonzeros], digest: &digest)
            }
        }
        try file.verify(digest!)
        do {
            try codes.validate(model: model, weightsVersion: version)
        } catch let e as CompresSAEError {
            throw CompresSAEError(e.kind == .outOfMemory || e.kind == .invalidArgument ? e.kind : .format, "'\(path)': \(e.message)")
        }

        let index = try SparseIndex(model: model, mode: mode, storage: storage)
        var s = index.state
        s.count = count
        s.k = count > 0 ? k : nil
        s.modelVersion = version
        s.rowIndices = codes.rowIndices
        s.rowValues = codes.rowValues
        s.rowIndices16 = codes.rowIndices16
        s.rowValues16 = codes.rowValues16
        s.rowLevels = codes.rowLevels
        s.postingLevels = codes.postingLevels
        s.itemScales = codes.itemScales
        if mode == .sparse {
            s.postingStart = codes.postingStart.map(Int.init)
            s.postingValues = codes.postingValues
            s.postingValues16 = codes.postingValues16
        }
        index.state = s
        if mode == .sparse { index.setPostingIDs(codes.postingIDs) }
        return index
    }
}
