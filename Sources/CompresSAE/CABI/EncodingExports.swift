import CCompresSAE

// The C ABI of encoding and decoding: codes from dense rows, refitted
// values, dense rows from codes, and the pre-activations.

/// Fills a caller's csae_encode_params (its first struct_size bytes) with
/// the defaults: k = 0 (the model's k), num_threads = 0 (the default
/// count). csae_encode_default_params() calls it with the caller's sizeof.
/// @param params       the struct to fill
/// @param struct_size  sizeof(csae_encode_params) in the caller's header
/// @return CSAE_OK, or CSAE_ERR_INVALID_ARGUMENT (NULL, a struct_size this
///         library cannot fill)
@c public func csae_encode_params_init(_ params: UnsafeMutablePointer<csae_encode_params>?, _ struct_size: UInt32) -> Int32 {
    withStatus { try csae_encode_params.write(.defaults, to: params, size: struct_size) }
}

/// Encodes n dense rows into k-sparse codes: per row, the k latents of
/// largest |pre-activation| with their signed values, ordered by decreasing
/// |value| (ties: lower index first). Codes are written as n rows of k.
/// @param x         n*d floats, row-major; finite, no all-zero row
/// @param params    k (0: the model's k) and num_threads, or NULL for
///                  csae_encode_default_params()
/// @param indices   receives n*k latent indices
/// @param values    receives n*k values
/// @param capacity  size of indices and of values, in elements (each)
/// @param k_used    receives the k of the codes (may be NULL)
/// k = 0 reads the model's k once, at the start of the call, and checks it
/// against capacity: a csae_model_set_k from another thread can make the
/// call fail with CSAE_ERR_INVALID_ARGUMENT, never write past the buffers.
/// @return CSAE_OK, CSAE_ERR_INVALID_ARGUMENT (also n*k > capacity),
///         CSAE_ERR_INVALID_HANDLE, or CSAE_ERR_OUT_OF_MEMORY (per-thread scratch)
@c public func csae_model_encode(
    _ model: ConstModelHandle?, _ x: UnsafePointer<Float>?, _ n: Int64, _ d: Int64,
    _ params: UnsafePointer<csae_encode_params>?,
    _ indices: UnsafeMutablePointer<Int32>?, _ values: UnsafeMutablePointer<Float>?, _ capacity: Int64,
    _ k_used: UnsafeMutablePointer<Int64>?
) -> Int32 {
    withStatus {
        let m = try modelHandles.lookup(model)
        let p = try csae_encode_params.read(params)
        let (k, threads) = try codeSettings(m, p)
        let (data, idx, val) = try rowsAndCodes(m, x, n, d, k, indices, values, capacity)
        try m.encode(data, rows: Int(n), k: k, indices: idx, values: val, numThreads: threads)
        k_used?.pointee = Int64(k)
    }
}

/// Refits codes' values by least squares: per row, the values that make the
/// decoded vector closest to the row x over the same k latents (with a small
/// ridge). Closes the gap between the encoder's one-pass values and the best
/// values on its support, which raises reconstructed-mode recall; sparse-mode
/// cosines rank better with the encoder's values. Each row is reordered by
/// decreasing |value| (ties: lower index first).
/// @param x         n*d floats, the rows that were encoded; finite, no all-zero row
/// @param params    k of the codes (0: the model's k, read once and checked
///                  against capacity as in csae_model_encode) and num_threads,
///                  or NULL for csae_encode_default_params()
/// @param indices   n*k latent indices in [0, h), none twice in a row; reordered in place
/// @param values    n*k values, replaced by the refitted ones
/// @param capacity  size of indices and of values, in elements (each)
/// @param k_used    receives the k of the codes (may be NULL)
/// @return as csae_model_encode
@c public func csae_model_refit(
    _ model: ConstModelHandle?, _ x: UnsafePointer<Float>?, _ n: Int64, _ d: Int64,
    _ params: UnsafePointer<csae_encode_params>?,
    _ indices: UnsafeMutablePointer<Int32>?, _ values: UnsafeMutablePointer<Float>?, _ capacity: Int64,
    _ k_used: UnsafeMutablePointer<Int64>?
) -> Int32 {
    withStatus {
        let m = try modelHandles.lookup(model)
        let p = try csae_encode_params.read(params)
        let (k, threads) = try codeSettings(m, p)
        let (data, idx, val) = try rowsAndCodes(m, x, n, d, k, indices, values, capacity)
        try m.refit(data, rows: Int(n), k: k, indices: idx, values: val, numThreads: threads)
        k_used?.pointee = Int64(k)
    }
}

/// Decodes n k-sparse codes: out[i] = sum_t values[i,t] * decoder_w[indices[i,t]].
/// @param indices      n*k latent indices in [0, h)
/// @param values       n*k finite values
/// @param num_threads  worker threads, 0 for csae_get_num_threads()
/// @param out          receives n*d floats
@c public func csae_model_decode(
    _ model: ConstModelHandle?, _ indices: UnsafePointer<Int32>?, _ values: UnsafePointer<Float>?,
    _ n: Int64, _ k: Int64, _ num_threads: Int32, _ out: UnsafeMutablePointer<Float>?
) -> Int32 {
    withStatus {
        let m = try modelHandles.lookup(model)
        let count = try elementCount(rows: n, cols: k, colsName: "k")
        let outCount = try elementCount(rows: n, cols: Int64(m.inputDim), colsName: "d")
        let threads = try threadsArgument(num_threads)
        try m.decode(indices: try requireBuffer(indices, "indices", count: count, "n*k"),
                     values: try requireBuffer(values, "values", count: count, "n*k"),
                     rows: Int(n), k: Int(k),
                     into: try requireMutableBuffer(out, "out", count: outCount, "n*d"), numThreads: threads)
    }
}

/// Writes the pre-activations normalize(x) @ encoder_w + encoder_b.
/// @param x            n*d floats
/// @param num_threads  worker threads, 0 for csae_get_num_threads()
/// @param out          receives n*h floats
@c public func csae_model_preactivations(
    _ model: ConstModelHandle?, _ x: UnsafePointer<Float>?, _ n: Int64, _ d: Int64, _ num_threads: Int32,
    _ out: UnsafeMutablePointer<Float>?
) -> Int32 {
    withStatus {
        let m = try modelHandles.lookup(model)
        let data = try requireBuffer(x, "x", count: try checkedInput(m, n: n, d: d), "n*d floats")
        let outCount = try elementCount(rows: n, cols: Int64(m.latentDim), colsName: "h")
        let threads = try threadsArgument(num_threads)
        try m.preactivations(data, rows: Int(n), into: try requireMutableBuffer(out, "out", count: outCount, "n*h"),
                             numThreads: threads)
    }
}

/// The k (the model's, read once, when the params say 0) and the thread
/// count of an encode or refit.
private func codeSettings(_ m: CompresSAEModel, _ p: csae_encode_params) throws -> (k: Int, threads: Int) {
    let h = m.latentDim
    guard p.k >= 0 && p.k <= Int64(h) else {
        throw CompresSAEError.invalid("k must be in 1...\(h) (the latent dimension), or 0 for the model's k; got \(p.k)")
    }
    return (p.k == 0 ? m.k : Int(p.k), try threadsArgument(p.num_threads))
}

/// The buffers of a call on `n` rows of `x` and their codes of `k` nonzeros
/// (`k` already checked against the model), each checked for NULL, and the
/// codes against the caller's capacity.
private func rowsAndCodes(
    _ m: CompresSAEModel, _ x: UnsafePointer<Float>?, _ n: Int64, _ d: Int64, _ k: Int,
    _ indices: UnsafeMutablePointer<Int32>?, _ values: UnsafeMutablePointer<Float>?, _ capacity: Int64
) throws -> (UnsafeBufferPointer<Float>, UnsafeMutableBufferPointer<Int32>, UnsafeMutableBufferPointer<Float>) {
    let data = try requireBuffer(x, "x", count: try checkedInput(m, n: n, d: d), "n*d floats")
    let count = try requireCapacity(capacity, rows: n, cols: Int64(k), "the codes (n x k)")
    return (data, try requireMutableBuffer(indices, "indices", count: count, "n*k"),
            try requireMutableBuffer(values, "values", count: count, "n*k"))
}
