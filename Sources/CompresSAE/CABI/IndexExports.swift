import CCompresSAE

// The C ABI of SparseIndex: checks and conversions only.

let indexHandles = HandleRegistry<SparseIndex>(kind: "index")

/// An index handle the function only reads: `const csae_index *` in the header.
public typealias ConstIndexHandle = OpaquePointer

/// Sets the number of worker threads used by calls that take no thread count
/// (encode, decode, search with num_threads = 0, train with num_threads = 0).
/// @param num_threads  >= 1, or 0 for the default: the environment's
///                     CSAE_NUM_THREADS, else OMP_NUM_THREADS (its first
///                     entry), else the CPUs this process may use (its
///                     affinity mask, capped by its cgroup's CPU quota),
///                     read once per process
@c public func csae_set_num_threads(_ num_threads: Int32) -> Int32 {
    withStatus { try Threads.setDefault(Int(num_threads)) }
}

/// Number of worker threads calls use by default (see csae_set_num_threads).
@c public func csae_get_num_threads() -> Int32 {
    Int32(Threads.defaultCount)
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
    _ model: OpaquePointer?, _ mode: Int32, _ storage: Int32, _ out: UnsafeMutablePointer<OpaquePointer?>?
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
/// the ids count, count+1, ... in order. The first add fixes k. Adds and
/// searches may run concurrently from several threads.
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
/// @param x  n*d floats; finite, no all-zero row
/// @return CSAE_OK, CSAE_ERR_INVALID_ARGUMENT, CSAE_ERR_INVALID_HANDLE, or
///         CSAE_ERR_OUT_OF_MEMORY
@c public func csae_index_add_dense(_ index: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ d: Int64) -> Int32 {
    withStatus {
        let i = try indexHandles.lookup(index)
        let count = try checkedInput(i.model, n: n, d: d)
        try i.add(dense: try requireBuffer(x, "x", count: count, "n*d floats"), rows: Int(n))
    }
}

/// Searches with nq dense queries. Sparse mode encodes them with the model,
/// with query_k nonzeros (more than the items' k keeps more of the query;
/// the default 4k is the code the training objective also reconstructs from);
/// reconstructed mode uses them as they are (asymmetric search).
/// @param queries      nq*d floats; finite, no all-zero row
/// @param n            results per query (>= 1)
/// @param query_k      nonzeros of the query codes in sparse mode (1 <= query_k <= h),
///                     or 0 for min(h, 4k); ignored in reconstructed mode
/// @param num_threads  worker threads, 0 for the default
/// @param scores       receives nq*n cosines, best first, -INFINITY as padding
/// @param ids          receives nq*n item ids, -1 as padding (n above the
///                     item count is only padding: the search's own memory
///                     and work are bounded by the item count)
/// @return CSAE_OK, CSAE_ERR_INVALID_ARGUMENT (also when the index is empty,
///         or its model was trained after its items were added),
///         CSAE_ERR_INVALID_HANDLE, or CSAE_ERR_OUT_OF_MEMORY
@c public func csae_index_search_dense(
    _ index: OpaquePointer?, _ queries: UnsafePointer<Float>?, _ nq: Int64, _ d: Int64, _ n: Int64,
    _ query_k: Int64, _ num_threads: Int32, _ scores: UnsafeMutablePointer<Float>?,
    _ ids: UnsafeMutablePointer<Int64>?
) -> Int32 {
    withStatus {
        let i = try indexHandles.lookup(index)
        let count = try checkedInput(i.model, n: nq, d: d)
        let results = try elementCount(rows: nq, cols: n, rowsName: "nq", colsName: "n")
        guard num_threads >= 0 else { throw CompresSAEError.invalid("num_threads must be >= 0, got \(num_threads)") }
        guard query_k >= 0 && query_k <= Int64(i.model.latentDim) else {
            throw CompresSAEError.invalid("query_k must be in 1...\(i.model.latentDim) (the latent dimension), or 0 for 4k; got \(query_k)")
        }
        try i.search(dense: try requireBuffer(queries, "queries", count: count, "nq*d"), rows: Int(nq), n: Int(n),
                     queryK: query_k == 0 ? nil : Int(query_k),
                     scores: try requireMutableBuffer(scores, "scores", count: results, "nq*n"),
                     ids: try requireMutableBuffer(ids, "ids", count: results, "nq*n"), threads: Int(num_threads))
    }
}

/// Searches with nq sparse queries of k nonzeros (k may differ from the
/// index's). Reconstructed mode decodes them first.
/// @param indices  nq*k latent indices in [0, h), no index twice in a row
/// @param values   nq*k finite values
/// @param scores   receives nq*n cosines, best first, -INFINITY as padding
/// @param ids      receives nq*n item ids, -1 as padding
/// @return as csae_index_search_dense
@c public func csae_index_search_codes(
    _ index: OpaquePointer?, _ indices: UnsafePointer<Int32>?, _ values: UnsafePointer<Float>?,
    _ nq: Int64, _ k: Int64, _ n: Int64, _ num_threads: Int32,
    _ scores: UnsafeMutablePointer<Float>?, _ ids: UnsafeMutablePointer<Int64>?
) -> Int32 {
    withStatus {
        let i = try indexHandles.lookup(index)
        let count = try elementCount(rows: nq, cols: k, rowsName: "nq", colsName: "k")
        let results = try elementCount(rows: nq, cols: n, rowsName: "nq", colsName: "n")
        guard num_threads >= 0 else { throw CompresSAEError.invalid("num_threads must be >= 0, got \(num_threads)") }
        try i.search(indices: try requireBuffer(indices, "indices", count: count, "nq*k"),
                     values: try requireBuffer(values, "values", count: count, "nq*k"),
                     rows: Int(nq), k: Int(k), n: Int(n),
                     scores: try requireMutableBuffer(scores, "scores", count: results, "nq*n"),
                     ids: try requireMutableBuffer(ids, "ids", count: results, "nq*n"), threads: Int(num_threads))
    }
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
/// fingerprint), atomically.
/// @return CSAE_OK, CSAE_ERR_IO, CSAE_ERR_INVALID_HANDLE, or
///         CSAE_ERR_INVALID_ARGUMENT (NULL path, or the model was trained
///         after the items were added: the codes no longer match its weights
///         and nothing is written)
@c public func csae_index_save(_ index: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> Int32 {
    withStatus {
        let i = try indexHandles.lookup(index)
        try i.save(to: try requirePath(path))
    }
}

/// Loads an index saved by csae_index_save. The model must be the one the
/// index was built with (same shape and weights), else CSAE_ERR_INVALID_ARGUMENT.
/// @param out  receives the new handle
@c public func csae_index_load(
    _ path: UnsafePointer<CChar>?, _ model: OpaquePointer?, _ out: UnsafeMutablePointer<OpaquePointer?>?
) -> Int32 {
    withStatus {
        guard let out else { throw CompresSAEError.invalid("out is NULL") }
        out.pointee = nil
        let m = try modelHandles.lookup(model)
        out.pointee = indexHandles.insert(try SparseIndex.load(from: try requirePath(path), model: m))
    }
}
