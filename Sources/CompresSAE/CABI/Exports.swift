import CCompresSAE

/// A model handle the function only reads: `const csae_model *` in the header.
public typealias ConstModelHandle = OpaquePointer

// The C ABI of libCompresSAE. Every function here only checks and converts
// its arguments, then calls the Swift API; `scripts/generate-header` turns
// these declarations and their `///` comments into include/compressae.h.

/// Version of the C ABI implemented by this library; equals CSAE_ABI_VERSION
/// of the header it was built with. Check it once at load time.
@c public func csae_abi_version() -> Int32 {
    CSAE_ABI_VERSION
}

/// Version of the library as a static NUL-terminated string, e.g. "0.1.0".
@c public func csae_version() -> UnsafePointer<CChar> {
    csae_internal_version()
}

/// Message of the last failed call on the calling thread ("" after a
/// successful call). The pointer stays valid until the thread's next call.
@c public func csae_last_error() -> UnsafePointer<CChar> {
    csae_internal_get_error()
}

/// Name of the BLAS used for the encoder GEMM, e.g. "OpenBLAS Haswell
/// (libopenblas.so.0)", or "none (built-in kernel)". Static string.
@c public func csae_blas_name() -> UnsafePointer<CChar> {
    blasNameCString
}

/// Instruction set of the library's own vector kernels, chosen at load time
/// from the CPU: "avx2+fma" or "baseline" (x86-64 SSE2). Static string.
@c public func csae_vector_isa() -> UnsafePointer<CChar> {
    csae_internal_vector_isa()
}

/// Default training settings, the recipe chosen by measurement (docs/quality.md):
/// batch_size 4096, up to 400 epochs (validation_steps 25), learning_rate 1e-2 after 50
/// warm-up steps, CSAE_LR_PLATEAU on a 5% validation split (patience 2,
/// tolerance 5e-3, two cuts by 0.2, then stop), sparse_similarity_weight 0.03;
/// Adam beta1 0.9, beta2 0.999, eps 1e-8; seed 0, shuffle 1, num_threads 0
/// (the default count), no progress callback, dead_latent_window 0 (one epoch).
@c public func csae_train_default_params() -> csae_train_params {
    trainParams(TrainingOptions())
}

/// The PyTorch reference's recipe: the defaults with epochs 1, learning_rate
/// 1e-3 constant (no warm-up, CSAE_LR_CONSTANT), no validation split, no early
/// stopping, no similarity terms, and validation_steps 0.
@c public func csae_train_reference_params() -> csae_train_params {
    trainParams(TrainingOptions.reference)
}

func trainParams(_ o: TrainingOptions) -> csae_train_params {
    csae_train_params(
        batch_size: Int64(o.batchSize), epochs: Int64(o.epochs), learning_rate: o.learningRate,
        beta1: o.beta1, beta2: o.beta2, eps: o.eps, seed: o.seed, shuffle: o.shuffle ? 1 : 0,
        num_threads: Int32(o.threads), progress: nil, user_data: nil,
        dead_latent_window: Int64(o.deadLatentWindow), warmup_steps: Int64(o.warmupSteps),
        lr_decay: o.decay.rawValue, min_lr_ratio: o.minLearningRateRatio,
        validation_fraction: o.validationFraction, patience: Int64(o.patience), tolerance: o.tolerance,
        plateau_factor: o.plateauFactor, plateau_reductions: Int64(o.plateauReductions),
        sparse_similarity_weight: o.sparseSimilarityWeight,
        similarity_temperature: o.similarityTemperature,
        similarity_rows: Int64(o.similarityRows), validation_steps: Int64(o.validationSteps))
}

/// Creates a model: zero bias, a kaiming-uniform decoder with unit rows (PyTorch's
/// default initialisation), and an encoder chosen by initialization.
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
            throw CompresSAEError.invalid("init must be CSAE_INIT_REFERENCE (0) or CSAE_INIT_TIED (1), got \(initialization)")
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
/// @return CSAE_OK, CSAE_ERR_INVALID_ARGUMENT (bad size, NULL, non-finite weight),
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
///         CSAE_ERR_INVALID_ARGUMENT (bad k, NULL)
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

/// Sets the number of nonzeros per code used by encode and train (1 <= k <= h).
/// Calls already running keep the k they read at their start.
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

/// Trains the model on x with Adam (from the current weights, fresh optimiser
/// state). Steps = epochs * ceil(n / batch_size); the loss of every step is
/// kept (csae_model_copy_history). Needs 4k <= h.
/// @param x       n*d floats, row-major; finite, no all-zero row
/// @param n       rows >= 1
/// @param d       must equal the model's input_dim
/// @param params  settings, or NULL for csae_train_default_params()
/// The model's k is read once at the start; every step and validation pass
/// uses it (csae_model_set_k returns CSAE_ERR_BUSY until this call returns).
/// Other calls on the model may run from any thread, the progress callback's
/// included: they wait for the step in progress only. The histories grow
/// with the steps that run, so a large epochs bounded by early stopping
/// reserves nothing for the steps that never run.
/// @return CSAE_OK, CSAE_ERR_INVALID_ARGUMENT, CSAE_ERR_CANCELLED (the
///         callback returned non-zero; steps done are kept), CSAE_ERR_BUSY
///         (another train call is running on this model),
///         CSAE_ERR_OUT_OF_MEMORY (the training buffers or Adam's moments,
///         4*d*h floats, cannot be allocated; the weights are unchanged)
@c public func csae_model_train(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ d: Int64,
    _ params: UnsafePointer<csae_train_params>?
) -> Int32 {
    withStatus {
        let m = try modelHandles.lookup(model)
        let data = try requireBuffer(x, "x", count: try checkedInput(m, n: n, d: d), "n*d floats")
        let p = params?.pointee ?? csae_train_default_params()
        let options = try trainingOptions(p)
        let callback = p.progress, userData = p.user_data
        try m.train(data, rows: Int(n), options: options, progress: callback.map { fn in
            { step, total, loss in fn(userData, Int64(step), Int64(total), loss) == 0 }
        })
    }
}

/// The settings of a csae_train_params, checked.
func trainingOptions(_ p: csae_train_params) throws -> TrainingOptions {
    var options = TrainingOptions()
    options.batchSize = try intArgument(p.batch_size, "batch_size")
    options.epochs = try intArgument(p.epochs, "epochs")
    options.learningRate = p.learning_rate
    options.beta1 = p.beta1
    options.beta2 = p.beta2
    options.eps = p.eps
    options.seed = p.seed
    options.shuffle = p.shuffle != 0
    options.threads = Int(p.num_threads)
    options.deadLatentWindow = try nonNegative(p.dead_latent_window, "dead_latent_window")
    options.warmupSteps = try nonNegative(p.warmup_steps, "warmup_steps")
    guard let decay = LearningRateDecay(rawValue: p.lr_decay) else {
        throw CompresSAEError.invalid("lr_decay must be CSAE_LR_CONSTANT, CSAE_LR_COSINE, CSAE_LR_LINEAR or CSAE_LR_PLATEAU, got \(p.lr_decay)")
    }
    options.decay = decay
    options.minLearningRateRatio = p.min_lr_ratio
    options.validationFraction = p.validation_fraction
    options.patience = try nonNegative(p.patience, "patience")
    options.tolerance = p.tolerance
    options.plateauFactor = p.plateau_factor
    options.plateauReductions = try nonNegative(p.plateau_reductions, "plateau_reductions")
    options.sparseSimilarityWeight = p.sparse_similarity_weight
    options.similarityTemperature = p.similarity_temperature
    options.similarityRows = try nonNegative(p.similarity_rows, "similarity_rows")
    options.validationSteps = try nonNegative(p.validation_steps, "validation_steps")
    return options
}

/// Number of losses recorded by the last csae_model_train call.
@c public func csae_model_history_length(_ model: ConstModelHandle?, _ length: UnsafeMutablePointer<Int64>?) -> Int32 {
    historyLength(model, length, .loss)
}

/// Copies the per-step losses of the last csae_model_train call.
/// @param out       receives min(capacity, history length) floats
/// @param capacity  size of out in floats (>= 0)
@c public func csae_model_copy_history(
    _ model: ConstModelHandle?, _ out: UnsafeMutablePointer<Float>?, _ capacity: Int64
) -> Int32 {
    copyHistory(model, out, capacity, .loss)
}

/// Copies, for each step of the last csae_model_train call, the fraction of
/// latents that were in no row's k-code during the last dead_latent_window
/// training rows (0 until a full window has been seen).
/// @param out       receives min(capacity, history length) floats
/// @param capacity  size of out in floats (>= 0)
@c public func csae_model_copy_dead_latent_history(
    _ model: ConstModelHandle?, _ out: UnsafeMutablePointer<Float>?, _ capacity: Int64
) -> Int32 {
    copyHistory(model, out, capacity, .deadLatents)
}

/// Number of validation losses recorded by the last csae_model_train call
/// (one per validation, see validation_steps, when validation_fraction > 0, else 0).
@c public func csae_model_validation_history_length(
    _ model: ConstModelHandle?, _ length: UnsafeMutablePointer<Int64>?
) -> Int32 {
    historyLength(model, length, .validation)
}

/// Copies the per-epoch validation losses of the last csae_model_train call.
/// @param out       receives min(capacity, validation history length) floats
/// @param capacity  size of out in floats (>= 0)
@c public func csae_model_copy_validation_history(
    _ model: ConstModelHandle?, _ out: UnsafeMutablePointer<Float>?, _ capacity: Int64
) -> Int32 {
    copyHistory(model, out, capacity, .validation)
}

/// Encodes n dense rows into k-sparse codes: per row, the k latents of
/// largest |pre-activation| with their signed values, ordered by decreasing
/// |value| (ties: lower index first).
/// @param x        n*d floats, row-major; finite, no all-zero row
/// @param k        nonzeros per code (1 <= k <= h), or 0 for the model's k,
///                 read once at the start of the call; when another thread
///                 may call csae_model_set_k, pass k explicitly (buffers sized
///                 from a k read earlier may be too small for the current one)
/// @param indices  receives n*k latent indices
/// @param values   receives n*k values
/// @return CSAE_OK, CSAE_ERR_INVALID_ARGUMENT, CSAE_ERR_INVALID_HANDLE, or
///         CSAE_ERR_OUT_OF_MEMORY (per-thread scratch)
@c public func csae_model_encode(
    _ model: ConstModelHandle?, _ x: UnsafePointer<Float>?, _ n: Int64, _ d: Int64, _ k: Int64,
    _ indices: UnsafeMutablePointer<Int32>?, _ values: UnsafeMutablePointer<Float>?
) -> Int32 {
    withStatus {
        let m = try modelHandles.lookup(model)
        guard k >= 0 && k <= Int64(m.latentDim) else {
            throw CompresSAEError.invalid("k must be in 1...\(m.latentDim) (the latent dimension), or 0 for the model's k; got \(k)")
        }
        let kk = k == 0 ? m.k : Int(k)
        let (data, idx, val) = try rowsAndCodes(m, x, n, d, kk, indices, values)
        try m.encode(data, rows: Int(n), k: kk, indices: idx, values: val)
    }
}

/// Refits codes' values by least squares: per row, the values that make the
/// decoded vector closest to the row x over the same k latents (with a small
/// ridge). Closes the gap between the encoder's one-pass values and the best
/// values on its support, which raises reconstructed-mode recall; sparse-mode
/// cosines rank better with the encoder's values. Each row is reordered by
/// decreasing |value| (ties: lower index first).
/// @param x        n*d floats, the rows that were encoded; finite, no all-zero row
/// @param k        nonzeros per code (1 <= k <= h)
/// @param indices  n*k latent indices in [0, h), none twice in a row; reordered in place
/// @param values   n*k values, replaced by the refitted ones
@c public func csae_model_refit(
    _ model: ConstModelHandle?, _ x: UnsafePointer<Float>?, _ n: Int64, _ d: Int64, _ k: Int64,
    _ indices: UnsafeMutablePointer<Int32>?, _ values: UnsafeMutablePointer<Float>?
) -> Int32 {
    withStatus {
        let m = try modelHandles.lookup(model)
        guard k >= 1 && k <= Int64(m.latentDim) else {
            throw CompresSAEError.invalid("k must be in 1...\(m.latentDim) (the latent dimension), got \(k)")
        }
        let (data, idx, val) = try rowsAndCodes(m, x, n, d, Int(k), indices, values)
        try m.refit(data, rows: Int(n), k: Int(k), indices: idx, values: val)
    }
}

/// The buffers of a call on `n` rows of `x` and their codes of `k` nonzeros
/// (`k` already checked against the model), each checked for NULL and size.
private func rowsAndCodes(
    _ m: CompresSAEModel, _ x: UnsafePointer<Float>?, _ n: Int64, _ d: Int64, _ k: Int,
    _ indices: UnsafeMutablePointer<Int32>?, _ values: UnsafeMutablePointer<Float>?
) throws -> (UnsafeBufferPointer<Float>, UnsafeMutableBufferPointer<Int32>, UnsafeMutableBufferPointer<Float>) {
    let data = try requireBuffer(x, "x", count: try checkedInput(m, n: n, d: d), "n*d floats")
    let count = try elementCount(rows: n, cols: Int64(k), colsName: "k")
    return (data, try requireMutableBuffer(indices, "indices", count: count, "n*k"),
            try requireMutableBuffer(values, "values", count: count, "n*k"))
}

/// Decodes n k-sparse codes: out[i] = sum_t values[i,t] * decoder_w[indices[i,t]].
/// @param indices  n*k latent indices in [0, h)
/// @param values   n*k finite values
/// @param out      receives n*d floats
@c public func csae_model_decode(
    _ model: ConstModelHandle?, _ indices: UnsafePointer<Int32>?, _ values: UnsafePointer<Float>?,
    _ n: Int64, _ k: Int64, _ out: UnsafeMutablePointer<Float>?
) -> Int32 {
    withStatus {
        let m = try modelHandles.lookup(model)
        let count = try elementCount(rows: n, cols: k, colsName: "k")
        let outCount = try elementCount(rows: n, cols: Int64(m.inputDim), colsName: "d")
        try m.decode(indices: try requireBuffer(indices, "indices", count: count, "n*k"),
                     values: try requireBuffer(values, "values", count: count, "n*k"),
                     rows: Int(n), k: Int(k),
                     into: try requireMutableBuffer(out, "out", count: outCount, "n*d"))
    }
}

/// Writes the pre-activations normalize(x) @ encoder_w + encoder_b.
/// @param x    n*d floats
/// @param out  receives n*h floats
@c public func csae_model_preactivations(
    _ model: ConstModelHandle?, _ x: UnsafePointer<Float>?, _ n: Int64, _ d: Int64, _ out: UnsafeMutablePointer<Float>?
) -> Int32 {
    withStatus {
        let m = try modelHandles.lookup(model)
        let data = try requireBuffer(x, "x", count: try checkedInput(m, n: n, d: d), "n*d floats")
        let outCount = try elementCount(rows: n, cols: Int64(m.latentDim), colsName: "h")
        try m.preactivations(data, rows: Int(n), into: try requireMutableBuffer(out, "out", count: outCount, "n*h"))
    }
}

/// Loss values of a batch at the current weights and, optionally, the
/// gradients of the objective (cosine + cosine_4k / 8); nothing is updated.
/// Needs 4k <= h.
/// @param x               n*d floats (the batch)
/// @param losses          receives the seven losses, or NULL
/// @param grad_encoder_w  receives d*h floats ([d,h]), or NULL
/// @param grad_encoder_b  receives h floats, or NULL
/// @param grad_decoder_w  receives h*d floats ([h,d]), or NULL
@c public func csae_model_loss_and_gradients(
    _ model: ConstModelHandle?, _ x: UnsafePointer<Float>?, _ n: Int64, _ d: Int64,
    _ losses: UnsafeMutablePointer<csae_losses>?,
    _ grad_encoder_w: UnsafeMutablePointer<Float>?, _ grad_encoder_b: UnsafeMutablePointer<Float>?,
    _ grad_decoder_w: UnsafeMutablePointer<Float>?
) -> Int32 {
    withStatus {
        let m = try modelHandles.lookup(model)
        let data = try requireBuffer(x, "x", count: try checkedInput(m, n: n, d: d), "n*d floats")
        let wantGradients = grad_encoder_w != nil || grad_encoder_b != nil || grad_decoder_w != nil
        let (report, gradients) = try m.lossAndGradients(data, rows: Int(n), withGradients: wantGradients)
        losses?.pointee = csae_losses(l2: report.l2, l2_4k: report.l2_4k, l1: report.l1, l0: report.l0,
                                      cosine: report.cosine, cosine_4k: report.cosine4k, loss: report.loss)
        if let gradients {
            if let p = grad_encoder_w { p.update(from: gradients.encoderWeights, count: gradients.encoderWeights.count) }
            if let p = grad_encoder_b { p.update(from: gradients.encoderBias, count: gradients.encoderBias.count) }
            if let p = grad_decoder_w { p.update(from: gradients.decoderWeights, count: gradients.decoderWeights.count) }
        }
    }
}

// MARK: - Argument conversion

/// Copies one of the model's per-step histories into a caller's buffer.
/// Writes the length of one of the model's histories to `length`.
func historyLength(
    _ model: ConstModelHandle?, _ length: UnsafeMutablePointer<Int64>?, _ kind: CompresSAEModel.HistoryKind
) -> Int32 {
    withStatus {
        let m = try modelHandles.lookup(model)
        guard let length else { throw CompresSAEError.invalid("length is NULL") }
        length.pointee = Int64(m.withHistory(kind) { $0.count })
    }
}

/// Copies one of the model's histories into `out` (at most `capacity` values).
func copyHistory(
    _ model: ConstModelHandle?, _ out: UnsafeMutablePointer<Float>?, _ capacity: Int64,
    _ kind: CompresSAEModel.HistoryKind
) -> Int32 {
    withStatus {
        let m = try modelHandles.lookup(model)
        let buffer = try requireMutableBuffer(out, "out", count: capacity, "capacity")
        // Copied under the model's lock: training appends to the history meanwhile.
        m.withHistory(kind) { values in
            for i in 0..<min(buffer.count, values.count) { buffer[i] = values[i] }
        }
    }
}

nonisolated(unsafe) let blasNameCString: UnsafePointer<CChar> = {
    let name = GEMM.backendName
    let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: name.utf8.count + 1)
    name.withCString { buffer.update(from: $0, count: name.utf8.count + 1) }
    return UnsafePointer(buffer)
}()

/// An Int64 size argument as Int, refusing values outside 1...Int32.max-ish ranges.
func intArgument(_ value: Int64, _ name: String) throws -> Int {
    guard value >= 1 else { throw CompresSAEError.invalid("\(name) must be >= 1, got \(value)") }
    guard value <= Int64(Int32.max) else { throw CompresSAEError.invalid("\(name) = \(value) is too large") }
    return Int(value)
}

func nonNegative(_ value: Int64, _ name: String) throws -> Int {
    guard value >= 0 && value <= Int64(Int32.max) else { throw CompresSAEError.invalid("\(name) must be in 0...\(Int32.max), got \(value)") }
    return Int(value)
}

/// Checks n and d of a dense input against the model; returns n*d.
func checkedInput(_ m: CompresSAEModel, n: Int64, d: Int64) throws -> Int64 {
    guard d == Int64(m.inputDim) else {
        throw CompresSAEError.invalid("x has \(d) columns, the model's input_dim is \(m.inputDim)")
    }
    return try elementCount(rows: n, cols: d, colsName: "d")
}
