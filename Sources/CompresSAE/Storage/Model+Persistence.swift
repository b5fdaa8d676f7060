/// Version of the model file layout written by `save`.
let modelFormatVersion = "1"

extension CompresSAEModel {
    /// Saves the model as a safetensors file with `encoder_w [d,h]`,
    /// `encoder_b [h]`, `decoder_w [h,d]` (float32) and `k`, the format name
    /// and version in `__metadata__`. The write is atomic.
    public func save(to path: String) throws {
        let (tensors, k) = lock.withReadLock { () -> ([Safetensors.OutputTensor], Int) in
            ([
                .float32("encoder_w", shape: [inputDim, latentDim], encoderWeightsLocked()),
                .float32("encoder_b", shape: [latentDim], encoderBias),
                .float32("decoder_w", shape: [latentDim, inputDim], decoder),
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
    /// - Parameters:
    ///   - path: the file.
    ///   - k: nonzeros per code; `nil` takes it from the file's metadata.
    /// - Throws: `CompresSAEError` for a missing, truncated or malformed file,
    ///   a wrong dtype or shape, non-finite weights, or an unknown `k`.
    public static func load(from path: String, k: Int? = nil) throws -> CompresSAEModel {
        let file = try Safetensors.File(path: path)
        if let version = file.metadata["format_version"], file.metadata["format"] == "compressae",
           version != modelFormatVersion {
            throw CompresSAEError.format("'\(path)' has model format version \(version); this library reads version \(modelFormatVersion)")
        }
        // The shape comes from encoder_w [d,h]; the other tensors are checked against it.
        guard let enc = file.tensors["encoder_w"], enc.shape.count == 2 else {
            throw CompresSAEError.format("'\(path)' has no 2-D tensor \"encoder_w\": not a CompresSAE model")
        }
        let d = enc.shape[0], h = enc.shape[1]
        // Every tensor's presence, dtype and shape is checked before k, so a
        // damaged file is reported as such even when k is missing too.
        for (name, shape) in [("encoder_w", [d, h]), ("encoder_b", [h]), ("decoder_w", [h, d])] {
            _ = try file.requireTensor(name, dtype: "F32", shape: shape)
        }
        let chosenK: Int
        if let k {
            chosenK = k
        } else if let text = file.metadata["k"] {
            guard let parsed = Int(text), parsed >= 1, parsed <= h else {
                throw CompresSAEError.format("'\(path)': metadata k = \"\(text)\" is not an integer in 1...\(h)")
            }
            chosenK = parsed
        } else {
            throw CompresSAEError.invalid("'\(path)' does not record k (e.g. a reference state dict): pass k explicitly")
        }
        do {
            try validateShape(inputDim: d, latentDim: h, k: chosenK)
        } catch let e as CompresSAEError {
            // A k given by the caller is the caller's mistake; anything else is the file's.
            throw CompresSAEError(k != nil && !(1...h).contains(chosenK) ? .invalidArgument : .format,
                                  "'\(path)': \(e.message)")
        }
        let encoderWeights = try file.readFloat32("encoder_w", shape: [d, h])
        let encoderBias = try file.readFloat32("encoder_b", shape: [h])
        let decoderWeights = try file.readFloat32("decoder_w", shape: [h, d])
        do {
            return try CompresSAEModel(inputDim: d, latentDim: h, k: chosenK, encoderWeights: encoderWeights,
                                       encoderBias: encoderBias, decoderWeights: decoderWeights)
        } catch let e as CompresSAEError {
            throw CompresSAEError.format("'\(path)': \(e.message)")
        }
    }
}
