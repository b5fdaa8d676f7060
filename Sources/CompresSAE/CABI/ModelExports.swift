import CCompresSAE

// The C ABI of the model's lifecycle: create, load, save, free, shape, k
// and weights.

/// A model handle the function only reads: `const csae_model *` in the header.
public typealias ConstModelHandle = OpaquePointer

/// Creates a model: zero bias, a kaiming-uniform decoder with unit rows (PyTorch's
/// default initialisation), and an encoder chosen by initialization.
/// Runs on the calling thread.
/// @param input_dim  dense dimension d >= 1
/// @param latent_dim sparse dimension h >= 1
/// @param k          nonzeros per code, 1 <= k <= h (training also needs 4k <= h)
/// @param seed       initialisation seed; equal seeds give equal models
/// @param initialization CSAE_INIT_REFERENCE (kaiming-uniform encoder, as the reference)
///                   or CSAE_INIT_TIED (encoder = decoder transposed)
/// @param out        receives the new handle; release it with csae_model_free
/// @return CSAE_OK, CSAE_ERR_INVALID_ARGUMENT, or CSAE_ERR_OUT_OF_MEMORY (the
///         weights, 2*d*h floats, cannot be allocated)
@c public func csae_model_create(
    _ input_dim: Int64, _ latent_dim: Int64, _ k: Int64, _ seed: UInt64, _ initialization: Int32,
    _ out: UnsafeMutablePointer<OpaquePointer?>?
) -> Int32 {
    withStatus {
        guard let out else { throw CompresSAEError.invalid("out is NULL") }
        out.pointee = nil
        guard let kind = EncoderInitialization(rawValue: initialization) else {
            throw CompresSAEError.invalid("initialization must be CSAE_INIT_REFERENCE (0) or CSAE_INIT_TIED (1), got \(initialization)")
        }
        let model = try CompresSAEModel(inputDim: try intArgument(input_dim, "input_dim"),
                                        latentDim: try intArgument(latent_dim, "latent_dim"),
                                        k: try intArgument(k, "k"), seed: seed, initialization: kind)
        out.pointee = modelHandles.insert(model)
    }
}

/// Creates a model from given weights, copied as they are (no renormalisation).
/// @param encoder_w  d*h floats, [d,h] row-major
/// @param encoder_b  h floats
/// @param decoder_w  h*d floats, [h,d] row-major
/// @param out        receives the new handle
/// @return CSAE_OK, CSAE_ERR_INVALID_ARGUMENT (bad size, NULL, non-finite weight,
///         an encoder column of norm beyond 1.9e19 or a bias beyond +-1e38),
///         or CSAE_ERR_OUT_OF_MEMORY
@c public func csae_model_create_from_weights(
    _ input_dim: Int64, _ latent_dim: Int64, _ k: Int64,
    _ encoder_w: UnsafePointer<Float>?, _ encoder_b: UnsafePointer<Float>?, _ decoder_w: UnsafePointer<Float>?,
    _ out: UnsafeMutablePointer<OpaquePointer?>?
) -> Int32 {
    withStatus {
        guard let out else { throw CompresSAEError.invalid("out is NULL") }
        out.pointee = nil
        let d = try intArgument(input_dim, "input_dim"), h = try intArgument(latent_dim, "latent_dim")
        try CompresSAEModel.validateShape(inputDim: d, latentDim: h, k: try intArgument(k, "k"))
        let model = try CompresSAEModel(
            inputDim: d, latentDim: h, k: Int(k),
            encoderWeights: try requireBuffer(encoder_w, "encoder_w", count: Int64(d * h), "d*h floats"),
            encoderBias: try requireBuffer(encoder_b, "encoder_b", count: Int64(h), "h floats"),
            decoderWeights: try requireBuffer(decoder_w, "decoder_w", count: Int64(h * d), "h*d floats"))
        out.pointee = modelHandles.insert(model)
    }
}

/// Releases a model. NULL is a no-op; a handle already freed is ignored.
/// Safe while other threads use the model: calls already running (and
/// indexes over it) keep it alive until they finish; later calls with the
/// handle return CSAE_ERR_INVALID_HANDLE.
@c public func csae_model_free(_ model: OpaquePointer?) {
    modelHandles.remove(model)
}

/// Loads a model file written by csae_model_save, or a PyTorch reference
/// state dict saved with safetensors (tensors encoder_w [d,h], encoder_b [h],
/// decoder_w [h,d], float32).
/// @param path  file path (NUL-terminated)
/// @param k     nonzeros per code; 0 takes k from the file's metadata (a
///              reference state dict has none: then k must be given)
/// @param out   receives the new handle
/// @return CSAE_OK, CSAE_ERR_IO (cannot open/read), CSAE_ERR_FORMAT (truncated,
///         bad header, wrong dtype or shape, non-finite weights),
///         CSAE_ERR_INVALID_ARGUMENT (bad k, NULL), CSAE_ERR_OUT_OF_MEMORY
@c public func csae_model_load(
    _ path: UnsafePointer<CChar>?, _ k: Int64, _ out: UnsafeMutablePointer<OpaquePointer?>?
) -> Int32 {
    withStatus {
        guard let out else { throw CompresSAEError.invalid("out is NULL") }
        out.pointee = nil
        guard k >= 0 else { throw CompresSAEError.invalid("k must be >= 1, or 0 to read it from the file; got \(k)") }
        let model = try CompresSAEModel.load(from: try requirePath(path), k: k == 0 ? nil : try intArgument(k, "k"))
        out.pointee = modelHandles.insert(model)
    }
}

/// Saves the model as safetensors (encoder_w, encoder_b, decoder_w, and k in
/// the metadata). Atomic: written to a temporary file in the same directory,
/// then renamed; on failure the destination is untouched.
/// @return CSAE_OK, CSAE_ERR_IO, CSAE_ERR_INVALID_HANDLE, CSAE_ERR_INVALID_ARGUMENT
@c public func csae_model_save(_ model: ConstModelHandle?, _ path: UnsafePointer<CChar>?) -> Int32 {
    withStatus {
        let m = try modelHandles.lookup(model)
        try m.save(to: try requirePath(path))
    }
}

/// Reads the model's shape. Each output pointer may be NULL.
/// @param input_dim   receives d
/// @param latent_dim  receives h
/// @param k           receives the current k
@c public func csae_model_get_shape(
    _ model: ConstModelHandle?, _ input_dim: UnsafeMutablePointer<Int64>?,
    _ latent_dim: UnsafeMutablePointer<Int64>?, _ k: UnsafeMutablePointer<Int64>?
) -> Int32 {
    withStatus {
        let m = try modelHandles.lookup(model)
        input_dim?.pointee = Int64(m.inputDim)
        latent_dim?.pointee = Int64(m.latentDim)
        k?.pointee = Int64(m.k)
    }
}

/// Sets the number of nonzeros per code used by encode (k = 0) and train
/// (1 <= k <= h). Calls already running keep the k they read at their start.
/// @return CSAE_OK, CSAE_ERR_INVALID_ARGUMENT, or CSAE_ERR_BUSY while
///         csae_model_train runs on the model (also from its progress
///         callback): a training run keeps one k from start to end
@c public func csae_model_set_k(_ model: OpaquePointer?, _ k: Int64) -> Int32 {
    withStatus {
        let m = try modelHandles.lookup(model)
        try m.setK(try intArgument(k, "k"))
    }
}

/// Copies the weights into caller-owned buffers. Pass NULL (and length 0) to
/// skip one.
/// @param encoder_w      receives encoder_w, [d,h] row-major
/// @param encoder_w_len  its capacity in floats, must equal d*h
/// @param encoder_b      receives encoder_b; encoder_b_len must equal h
/// @param decoder_w      receives decoder_w, [h,d]; decoder_w_len must equal h*d
@c public func csae_model_copy_weights(
    _ model: ConstModelHandle?,
    _ encoder_w: UnsafeMutablePointer<Float>?, _ encoder_w_len: Int64,
    _ encoder_b: UnsafeMutablePointer<Float>?, _ encoder_b_len: Int64,
    _ decoder_w: UnsafeMutablePointer<Float>?, _ decoder_w_len: Int64
) -> Int32 {
    withStatus {
        let m = try modelHandles.lookup(model)
        func optional(_ p: UnsafeMutablePointer<Float>?, _ n: Int64, _ name: String) throws -> UnsafeMutableBufferPointer<Float>? {
            guard let p else { return nil }
            return try requireMutableBuffer(p, name, count: n, "\(name)_len")
        }
        try m.copyWeights(encoderWeights: try optional(encoder_w, encoder_w_len, "encoder_w"),
                          encoderBias: try optional(encoder_b, encoder_b_len, "encoder_b"),
                          decoderWeights: try optional(decoder_w, decoder_w_len, "decoder_w"))
    }
}
