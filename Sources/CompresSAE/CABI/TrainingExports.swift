import CCompresSAE

// The C ABI of training: the settings, the training call, and the loss and
// gradients of a batch.

/// Fills a caller's csae_train_params (its first struct_size bytes) with a
/// recipe. csae_train_default_params() and csae_train_reference_params()
/// call it with the caller's sizeof.
/// CSAE_RECIPE_DEFAULT, the recipe chosen by measurement (docs/quality.md):
/// batch_size 4096, up to 400 epochs (validation_steps 25), learning_rate 1e-2 after 50
/// warm-up steps, CSAE_LR_PLATEAU on a 5% validation split (patience 2,
/// tolerance 5e-3, two cuts by 0.2, then stop), sparse_similarity_weight 0.03;
/// Adam beta1 0.9, beta2 0.999, eps 1e-8; seed 0, shuffle 1, num_threads 0
/// (the default count), no progress callback, dead_latent_window 0 (one
/// epoch). CSAE_RECIPE_REFERENCE, the PyTorch reference's recipe: the
/// defaults with epochs 1, learning_rate 1e-3 constant (no warm-up,
/// CSAE_LR_CONSTANT), no validation split, no early stopping and no
/// similarity terms.
/// @param params       the struct to fill
/// @param struct_size  sizeof(csae_train_params) in the caller's header
/// @param recipe       CSAE_RECIPE_DEFAULT or CSAE_RECIPE_REFERENCE
/// @return CSAE_OK, or CSAE_ERR_INVALID_ARGUMENT (NULL, a struct_size this
///         library cannot fill, an unknown recipe)
@c public func csae_train_params_init(
    _ params: UnsafeMutablePointer<csae_train_params>?, _ struct_size: UInt32, _ recipe: Int32
) -> Int32 {
    withStatus {
        let options: TrainingOptions
        switch recipe {
        case Int32(CSAE_RECIPE_DEFAULT.rawValue): options = TrainingOptions()
        case Int32(CSAE_RECIPE_REFERENCE.rawValue): options = .reference
        default:
            throw CompresSAEError.invalid("recipe must be CSAE_RECIPE_DEFAULT or CSAE_RECIPE_REFERENCE, got \(recipe)")
        }
        try csae_train_params.write(csae_train_params(options), to: params, size: struct_size)
    }
}

/// Trains the model on x with Adam (from the current weights, fresh optimiser
/// state). Steps = epochs * ceil(n / batch_size); the loss of every step is
/// kept (csae_model_copy_history). Needs 4k <= h.
/// @param x       n*d floats, row-major; finite, no all-zero row
/// @param n       rows >= 1
/// @param d       must equal the model's input_dim
/// @param params  settings (num_threads among them), or NULL for
///                csae_train_default_params()
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
        let p = try csae_train_params.read(params)
        let options = try TrainingOptions(p)
        let callback = p.progress, userData = p.user_data
        try m.train(data, rows: Int(n), options: options, progress: callback.map { fn in
            { step, total, loss in fn(userData, Int64(step), Int64(total), loss) == 0 }
        })
    }
}

/// Loss values of a batch at the current weights and, optionally, the
/// gradients of the objective (cosine + cosine_4k / 8); nothing is updated.
/// Needs 4k <= h.
/// @param x               n*d floats (the batch)
/// @param num_threads     worker threads, 0 for csae_get_num_threads()
/// @param losses          receives the seven losses, or NULL
/// @param grad_encoder_w  receives d*h floats ([d,h]), or NULL
/// @param grad_encoder_b  receives h floats, or NULL
/// @param grad_decoder_w  receives h*d floats ([h,d]), or NULL
@c public func csae_model_loss_and_gradients(
    _ model: ConstModelHandle?, _ x: UnsafePointer<Float>?, _ n: Int64, _ d: Int64, _ num_threads: Int32,
    _ losses: UnsafeMutablePointer<csae_losses>?,
    _ grad_encoder_w: UnsafeMutablePointer<Float>?, _ grad_encoder_b: UnsafeMutablePointer<Float>?,
    _ grad_decoder_w: UnsafeMutablePointer<Float>?
) -> Int32 {
    withStatus {
        let m = try modelHandles.lookup(model)
        let data = try requireBuffer(x, "x", count: try checkedInput(m, n: n, d: d), "n*d floats")
        let threads = try threadsArgument(num_threads)
        let wantGradients = grad_encoder_w != nil || grad_encoder_b != nil || grad_decoder_w != nil
        let (report, gradients) = try m.lossAndGradients(data, rows: Int(n), withGradients: wantGradients,
                                                         numThreads: threads)
        losses?.pointee = csae_losses(l2: report.l2, l2_4k: report.l2_4k, l1: report.l1, l0: report.l0,
                                      cosine: report.cosine, cosine_4k: report.cosine4k, loss: report.loss)
        if let gradients {
            if let p = grad_encoder_w { p.update(from: gradients.encoderWeights, count: gradients.encoderWeights.count) }
            if let p = grad_encoder_b { p.update(from: gradients.encoderBias, count: gradients.encoderBias.count) }
            if let p = grad_decoder_w { p.update(from: gradients.decoderWeights, count: gradients.decoderWeights.count) }
        }
    }
}
