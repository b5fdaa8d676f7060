import CCompresSAE

// The C ABI of SparseIndex: checks and conversions only.

let indexHandles = HandleRegistry<SparseIndex>(kind: "index")

/// An index handle the function only reads: `const csae_index *` in the header.
public typealias ConstIndexHandle = OpaquePointer

/// Fills a caller's csae_search_params (its first struct_size bytes) with
/// the defaults: n = 100 results per query, query_k = 0 (min(h, 4k)),
/// num_threads = 0 (the default count). csae_search_default_params() calls
/// it with the caller's sizeof.
/// @param params       the struct to fill
/// @param struct_size  sizeof(csae_search_params) in the caller's header
/// @return CSAE_OK, or CSAE_ERR_INVALID_ARGUMENT (NULL, a struct_size this
///         library cannot fill)
@c public func csae_search_params_init(_ params: UnsafeMutablePointer<csae_search_params>?, _ struct_size: UInt32) -> Int32 {
    withStatus { try csae_search_params.write(.defaults, to: params, size: struct_size) }
}

/// Creates an empty index over the codes of a model. The index keeps the
/// model alive; freeing the model handle first is safe.
/// @param model    the model whose codes (and, in reconstructed mode, decoder) are used
/// @param mode     CSAE_INDEX_SPARSE (cosine between codes, inverted index) or
///                 CSAE_INDEX_RECONSTRUCTED (cosine between decoded vectors)
/// @param storage  CSAE_STORAGE_STANDARD (int32 + float32 per nonzero) or
///                 CSAE_STORAGE_COMPACT (half-precision values; uint16 indices in
///                 reconstructed mode), CSAE_STORAGE_PACKED8 / CSAE_STORAGE_PACKED4
///                 (8- or 4-bit value levels with a scale per item)
/// @param out      receives the new handle; release it with csae_index_free
@c public func csae_index_create(
    _ model: ConstModelHandle?, _ mode: Int32, _ storage: Int32, _ out: UnsafeMutablePointer<OpaquePointer?>?
) -> Int32 {
    withStatus {
        guard let out else { throw CompresSAEError.invalid("out is NULL") }
        out.pointee = nil
        let m = try modelHandles.lookup(model)
        guard let mode = SparseIndex.Mode(rawValue: mode) else {
            throw CompresSAEError.invalid("mode must be CSAE_INDEX_SPARSE (0) or CSAE_INDEX_RECONSTRUCTED (1), got \(mode)")
        }
        guard let storage = SparseIndex.Storage(rawValue: storage) else {
            throw CompresSAEError.invalid("storage must be CSAE_STORAGE_STANDARD (0), CSAE_STORAGE_COMPACT (1), CSAE_STORAGE_PACKED8 (2) or CSAE_STORAGE_PACKED4 (3), got \(storage)")
        }
        out.pointee = indexHandles.insert(try SparseIndex(model: m, mode: mode, storage: storage))
    }
}

/// Releases an index. NULL is a no-op; a handle already freed is ignored.
/// Safe while other threads use the index: calls already running finish on
/// it; later calls with the handle return CSAE_ERR_INVALID_HANDLE.
@c public func csae_index_free(_ index: OpaquePointer?) {
    indexHandles.remove(index)
}

/// Adds n codes of k nonzeros (as csae_model_encode writes them). Items get
/// the ids count, count+1, ... in order. The first add fixes k. Runs on the
/// calling thread (the codes are copied; sparse mode files them in its
/// posting lists at the next search).
/// @param indices  n*k latent indices in [0, h), no index twice in a row
/// @param values   n*k finite values
/// @return CSAE_OK, CSAE_ERR_INVALID_ARGUMENT (also when the model was
///         trained after items were added: build a new index),
///         CSAE_ERR_INVALID_HANDLE, or CSAE_ERR_OUT_OF_MEMORY
@c public func csae_index_add_codes(
    _ index: OpaquePointer?, _ indices: UnsafePointer<Int32>?, _ values: UnsafePointer<Float>?,
    _ n: Int64, _ k: Int64
) -> Int32 {
    withStatus {
        let i = try indexHandles.lookup(index)
        let count = try elementCount(rows: n, cols: k, colsName: "k")
        try i.add(indices: try requireBuffer(indices, "indices", count: count, "n*k"),
                  values: try requireBuffer(values, "values", count: count, "n*k"), rows: Int(n), k: Int(k))
    }
}

/// Encodes n dense rows with the index's model and adds their codes. In
/// reconstructed mode the values are refitted by least squares (as
/// csae_model_refit does), which ranks better by decoded cosine; sparse mode
/// keeps the encoder's values. The rows are encoded with one version of the
/// weights: if the model is trained (in another thread) before their codes
/// are added, the call fails with CSAE_ERR_INVALID_ARGUMENT and adds nothing.
/// @param x            n*d floats; finite, no all-zero row
/// @param num_threads  worker threads of the encoding, 0 for csae_get_num_threads()
/// @return CSAE_OK, CSAE_ERR_INVALID_ARGUMENT, CSAE_ERR_INVALID_HANDLE, or
///         CSAE_ERR_OUT_OF_MEMORY
@c public func csae_index_add_dense(
    _ index: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ d: Int64, _ num_threads: Int32
) -> Int32 {
    withStatus {
        let i = try indexHandles.lookup(index)
        let count = try checkedInput(i.model, n: n, d: d)
        let threads = try threadsArgument(num_threads)
        try i.add(dense: try requireBuffer(x, "x", count: count, "n*d floats"), rows: Int(n), numThreads: threads)
    }
}

/// Searches with nq dense queries. Sparse mode encodes them with the model,
/// with query_k nonzeros (more than the items' k keeps more of the query;
/// the default 4k is the code the training objective also reconstructs from);
/// reconstructed mode uses them as they are (asymmetric search).
/// Results are written as nq rows of params->n: row q holds its
/// *n_results = min(n, item count) best items, best first (equal scores:
/// lower id first), and the columns past *n_results hold score -INFINITY and
/// id -1. An empty index is an empty result: CSAE_OK with *n_results = 0.
/// Memory and work are bounded by the item count, whatever n.
/// @param queries     nq*d floats; finite, no all-zero row
/// @param params      n, query_k (0: min(h, 4k)), candidates (reconstructed
///                    mode; 0: every item) and num_threads, or NULL for
///                    csae_search_default_params()
/// @param scores      receives nq*n cosines
/// @param ids         receives nq*n item ids
/// @param capacity    size of scores and of ids, in elements (each), >= nq*n
/// @param n_results   receives the results per query (may be NULL)
/// @return CSAE_OK, CSAE_ERR_INVALID_ARGUMENT (also when the model was
///         trained after the index's items were added), CSAE_ERR_INVALID_HANDLE,
///         or CSAE_ERR_OUT_OF_MEMORY
@c public func csae_index_search_dense(
    _ index: ConstIndexHandle?, _ queries: UnsafePointer<Float>?, _ nq: Int64, _ d: Int64,
    _ params: UnsafePointer<csae_search_params>?,
    _ scores: UnsafeMutablePointer<Float>?, _ ids: UnsafeMutablePointer<Int64>?, _ capacity: Int64,
    _ n_results: UnsafeMutablePointer<Int64>?
) -> Int32 {
    withStatus {
        let i = try indexHandles.lookup(index)
        let p = try csae_search_params.read(params)
        let count = try checkedInput(i.model, n: nq, d: d)
        guard p.query_k >= 0 && p.query_k <= Int64(i.model.latentDim) else {
            throw CompresSAEError.invalid("query_k must be in 1...\(i.model.latentDim) (the latent dimension), or 0 for 4k; got \(p.query_k)")
        }
        let (n, threads, outScores, outIDs) = try searchOutputs(p, nq: nq, scores, ids, capacity)
        let found = try i.search(dense: try requireBuffer(queries, "queries", count: count, "nq*d"), rows: Int(nq),
                                 n: n, queryK: p.query_k == 0 ? nil : Int(p.query_k),
                                 candidates: try candidatesArgument(p),
                                 scores: outScores, ids: outIDs, numThreads: threads)
        n_results?.pointee = Int64(found)
    }
}

/// Searches with nq sparse queries of k nonzeros (k may differ from the
/// index's). Reconstructed mode decodes them first. Outputs, padding and
/// the empty index as csae_index_search_dense; params->query_k is not used.
/// @param indices    nq*k latent indices in [0, h), no index twice in a row
/// @param values     nq*k finite values
/// @param params     n, candidates and num_threads, or NULL for
///                   csae_search_default_params()
/// @param scores     receives nq*n cosines
/// @param ids        receives nq*n item ids
/// @param capacity   size of scores and of ids, in elements (each), >= nq*n
/// @param n_results  receives the results per query (may be NULL)
/// @return as csae_index_search_dense
@c public func csae_index_search_codes(
    _ index: ConstIndexHandle?, _ indices: UnsafePointer<Int32>?, _ values: UnsafePointer<Float>?,
    _ nq: Int64, _ k: Int64, _ params: UnsafePointer<csae_search_params>?,
    _ scores: UnsafeMutablePointer<Float>?, _ ids: UnsafeMutablePointer<Int64>?, _ capacity: Int64,
    _ n_results: UnsafeMutablePointer<Int64>?
) -> Int32 {
    withStatus {
        let i = try indexHandles.lookup(index)
        let p = try csae_search_params.read(params)
        let count = try elementCount(rows: nq, cols: k, rowsName: "nq", colsName: "k")
        let (n, threads, outScores, outIDs) = try searchOutputs(p, nq: nq, scores, ids, capacity)
        let found = try i.search(indices: try requireBuffer(indices, "indices", count: count, "nq*k"),
                                 values: try requireBuffer(values, "values", count: count, "nq*k"),
                                 rows: Int(nq), k: Int(k), n: n, candidates: try candidatesArgument(p),
                                 scores: outScores, ids: outIDs, numThreads: threads)
        n_results?.pointee = Int64(found)
    }
}

/// params->candidates as the Swift search takes it: `nil` for 0 (every item scored).
private func candidatesArgument(_ p: csae_search_params) throws -> Int? {
    guard p.candidates >= 0 else {
        throw CompresSAEError.invalid("candidates must be >= 0 (0 scores every item), got \(p.candidates)")
    }
    return p.candidates == 0 ? nil : Int(p.candidates)
}

/// The result count, thread count and output buffers of a search, checked
/// against the caller's capacity.
private func searchOutputs(
    _ p: csae_search_params, nq: Int64, _ scores: UnsafeMutablePointer<Float>?,
    _ ids: UnsafeMutablePointer<Int64>?, _ capacity: Int64
) throws -> (Int, Int, UnsafeMutableBufferPointer<Float>, UnsafeMutableBufferPointer<Int64>) {
    guard p.n >= 1 else { throw CompresSAEError.invalid("n must be >= 1, got \(p.n)") }
    let threads = try threadsArgument(p.num_threads)
    let results = try requireCapacity(capacity, rows: nq, cols: p.n, "the results (nq x n)")
    return (Int(p.n), threads, try requireMutableBuffer(scores, "scores", count: results, "nq*n"),
            try requireMutableBuffer(ids, "ids", count: results, "nq*n"))
}

/// Reads the index's state. Each output pointer may be NULL.
/// @param count    receives the number of items
/// @param k        receives the nonzeros per stored code (0 while empty)
/// @param nbytes   receives the bytes held by the codes and the index structure
/// @param mode     receives the mode (CSAE_INDEX_SPARSE / CSAE_INDEX_RECONSTRUCTED)
/// @param storage  receives the storage (CSAE_STORAGE_STANDARD / CSAE_STORAGE_COMPACT)
@c public func csae_index_get_info(
    _ index: ConstIndexHandle?, _ count: UnsafeMutablePointer<Int64>?, _ k: UnsafeMutablePointer<Int64>?,
    _ nbytes: UnsafeMutablePointer<Int64>?, _ mode: UnsafeMutablePointer<Int32>?,
    _ storage: UnsafeMutablePointer<Int32>?
) -> Int32 {
    withStatus {
        let i = try indexHandles.lookup(index)
        count?.pointee = Int64(i.count)
        k?.pointee = Int64(i.k ?? 0)
        nbytes?.pointee = Int64(i.nbytes)
        mode?.pointee = i.mode.rawValue
        storage?.pointee = i.storage.rawValue
    }
}

/// Saves the index as safetensors (codes, mode, storage, and the model's
/// fingerprint), atomically. Runs on the calling thread.
/// @return CSAE_OK, CSAE_ERR_IO, CSAE_ERR_INVALID_HANDLE, or
///         CSAE_ERR_INVALID_ARGUMENT (NULL path, or the model was trained
///         after the items were added: the codes no longer match its weights
///         and nothing is written)
@c public func csae_index_save(_ index: ConstIndexHandle?, _ path: UnsafePointer<CChar>?) -> Int32 {
    withStatus {
        let i = try indexHandles.lookup(index)
        try i.save(to: try requirePath(path))
    }
}

/// Loads an index saved by csae_index_save. The model must be the one the
/// index was built with (same shape and weights), else CSAE_ERR_INVALID_ARGUMENT.
/// @param model  the model the index was built with; the index keeps it alive
/// @param out    receives the new handle
@c public func csae_index_load(
    _ path: UnsafePointer<CChar>?, _ model: ConstModelHandle?, _ out: UnsafeMutablePointer<OpaquePointer?>?
) -> Int32 {
    withStatus {
        guard let out else { throw CompresSAEError.invalid("out is NULL") }
        out.pointee = nil
        let m = try modelHandles.lookup(model)
        out.pointee = indexHandles.insert(try SparseIndex.load(from: try requirePath(path), model: m))
    }
}
