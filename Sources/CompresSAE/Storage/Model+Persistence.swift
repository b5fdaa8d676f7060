/// Version of the model file layout written by `save`.
let modelFormatVersion = "1"

extension CompresSAEModel {
    /// Saves the model as a safetensors file with `encoder_w [d,h]`,
    /// `encoder_b [h]`, `decoder_w [h,d]` (float32) and `k`, the format name
    /// and version and the file's checksum in `__metadata__`. The write is
    /// atomic and durable (`FileIO.writeAtomically`).
    public func save(to path: String) throws {
        // Deep copies taken under the lock: a running training call updates
        // the weights in place through pointers it took before this save, so
        // sharing the arrays' storage would write a half-updated model.
        let (tensors, k) = lock.withReadLock { () -> ([Safetensors.OutputTensor], Int) in
            ([
                .float32("encoder_w", shape: [inputDim, latentDim], encoderWeightsLocked()),
                .float32("encoder_b", shape: [latentDim], encoderBias.withUnsafeBufferPointer { Array($0) }),
                .float32("decoder_w", shape: [latentDim, inputDim], decoder.withUnsafeBufferPointer { Array($0) }),
            ], storedK)
        }
        try Safetensors.write(
            tensors,
            metadata: [("format", "compressae"), ("format_version", modelFormatVersion), ("k", String(k))],
            to: path)
    }

    /// Loads a model saved by `save`, or a state dict of the PyTorch reference
    /// saved with `safetensors.torch.save_file` (then `k` must be given).
    ///
    /// A file that records a checksum (every file `save` writes) must
    /// match it and hold exactly the three tensors.
    ///
    /// - Parameters:
    ///   - path: the file.
    ///   - k: nonzeros per code; `nil` takes it from the file's metadata.
    /// - Throws: `CompresSAEError` for a missing, truncated or malformed file,
    ///   a wrong dtype or shape, non-finite weights, or an unknown `k`.
    public static func load(from path: String, k: Int? = nil) throws -> CompresSAEModel {
        let file = try Safetensors.File(path: path)
        func bad(_ what: String) -> CompresSAEError { .format("'\(path)': \(what)") }
        if let version = file.metadata["format_version"], file.metadata["format"] == "compressae",
           version != modelFormatVersion {
            throw CompresSAEError.format("'\(path)' has model format version \(version); this library reads version \(modelFormatVersion)")
        }
        // The shape comes from encoder_w [d,h]; the other tensors are checked against it.
        guard let enc = file.tensors["encoder_w"], enc.shape.count == 2 else {
            throw CompresSAEError.format("'\(path)' has no 2-D tensor \"encoder_w\": not a CompresSAE model")
        }
        let d = enc.shape[0], h = enc.shape[1]
        // The file's shape is the file's to get right, whatever k the caller gives.
        do {
            try validateShape(inputDim: d, latentDim: h, k: 1)
        } catch let e as CompresSAEError {
            throw bad(e.message)
        }
        // Every tensor's presence, dtype and shape is checked before k, so a
        // damaged file is reported as such even when k is missing too.
        let names = ["encoder_w", "encoder_b", "decoder_w"]
        for (name, shape) in zip(names, [[d, h], [h], [h, d]]) {
            _ = try file.requireTensor(name, dtype: "F32", shape: shape)
        }
        let checksummed = file.metadata[Safetensors.checksumKey] != nil
        if checksummed, file.tensors.count != names.count {
            throw bad("holds \(file.tensors.count) tensors; a saved model holds exactly \(names.joined(separator: ", "))")
        }
        let chosenK: Int
        if let k {
            guard k >= 1 && k <= h else {
                throw CompresSAEError.invalid("k must be in 1...\(h) (the latent dimension of '\(path)'), got \(k)")
            }
            chosenK = k
        } else if let text = file.metadata["k"] {
            guard let parsed = Int(text), parsed >= 1, parsed <= h else {
                throw bad("metadata k = \"\(text)\" is not an integer in 1...\(h)")
            }
            chosenK = parsed
        } else {
            throw CompresSAEError.invalid("'\(path)' does not record k (e.g. a reference state dict): pass k explicitly")
        }
        // Read in file order, so that the checksum sees the file as written.
        var digest: Safetensors.PayloadDigest? = checksummed ? file.digest() : nil
        var weights: [String: [Float]] = [:]
        for name in names.sorted(by: { file.tensors[$0]!.begin < file.tensors[$1]!.begin }) {
            weights[name] = try file.readFloat32(name, shape: file.tensors[name]!.shape, digest: &digest)
        }
        if let digest { try file.verify(digest) }
        do {
            return try CompresSAEModel(inputDim: d, latentDim: h, k: chosenK, encoderWeights: weights["encoder_w"]!,
                                       encoderBias: weights["encoder_b"]!, decoderWeights: weights["decoder_w"]!)
        } catch let e as CompresSAEError {
            throw CompresSAEError(e.kind == .outOfMemory ? .outOfMemory : .format, "'\(path)': \(e.message)")
        }
    }
}
