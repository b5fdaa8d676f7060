import CompresSAE

/// Harness "index": the input is an index file, loaded against the fixed
/// model the seed indexes were built with (`IndexLoaderHarness.model`).
/// Loading must fail with a status and a message or give an index that
/// searches to sane results, takes new codes and saves to a file that
/// loads back.
enum IndexLoaderHarness {
    /// Shape of the harness's model; the seeds are indexes of its codes.
    static let (inputDim, latentDim, k): (Int64, Int64, Int64) = (8, 32, 4)
    static let seed: UInt64 = 11

    nonisolated(unsafe) static let model: OpaquePointer? = {
        var m: OpaquePointer? = nil
        guard csae_model_create(inputDim, latentDim, k, seed, 1, &m) == 0 else {
            fatalError("cannot create the index harness's model: \(String(cString: csae_last_error()))")
        }
        return m
    }()

    static func run(_ data: UnsafeBufferPointer<UInt8>) {
        Scratch.write(data, to: Scratch.input)
        var index: OpaquePointer? = nil
        guard checkStatus(csae_index_load(Scratch.input, model, &index), "csae_index_load") else {
            invariant(index == nil, "csae_index_load failed but set a handle")
            return
        }
        defer { csae_index_free(index) }
        exercise(index, salt: data.count)
    }

    static func info(_ index: OpaquePointer?) -> (count: Int64, k: Int64, mode: Int32, storage: Int32) {
        var count: Int64 = -1, k: Int64 = -1, bytes: Int64 = -1, mode: Int32 = -1, storage: Int32 = -1
        guard checkStatus(csae_index_get_info(index, &count, &k, &bytes, &mode, &storage), "csae_index_get_info") else {
            fatalError("get_info failed on a live index")
        }
        invariant(count >= 0 && bytes >= 0 && (0...1).contains(mode) && (0...1).contains(storage),
                  "index info count \(count) bytes \(bytes) mode \(mode) storage \(storage)")
        invariant(k >= 0 && k <= latentDim && (count == 0) == (k == 0), "index info count \(count) k \(k)")
        return (count, k, mode, storage)
    }

    /// Checks one query's results: best first, ids of stored items, padding at the end.
    static func checkResults(_ scores: ArraySlice<Float>, _ ids: ArraySlice<Int64>, count: Int64) {
        var previous = Float.infinity
        var seen = Set<Int64>()
        for (score, id) in zip(scores, ids) {
            if id == -1 {
                invariant(score == -.infinity, "padding id -1 with score \(score)")
                continue
            }
            invariant(id >= 0 && id < count, "result id \(id) of an index of \(count) items")
            invariant(seen.insert(id).inserted, "result id \(id) twice in one query")
            invariant(score.isFinite && abs(score) <= 1.01, "result score \(score) is not a cosine")
            invariant(score <= previous, "results not best first")
            previous = score
        }
    }

    static func exercise(_ index: OpaquePointer?, salt: Int) {
        let before = info(index)
        let n: Int64 = 5, nq: Int64 = 2
        var scores = [Float](repeating: .nan, count: Int(nq * n))
        var ids = [Int64](repeating: -2, count: Int(nq * n))
        let queries = denseRows(Int(nq), Int(inputDim), salt: salt)
        var p = csae_search_default_params()
        p.n = n
        p.num_threads = 1
        var found: Int64 = -1
        if checkStatus(csae_index_search_dense(index, queries, nq, inputDim, &p, &scores, &ids, nq * n, &found),
                       "csae_index_search_dense") {
            invariant(found == min(n, before.count), "search found \(found) of \(before.count) items")
            for q in 0..<Int(nq) { checkResults(scores[(q * 5)..<(q * 5 + 5)], ids[(q * 5)..<(q * 5 + 5)], count: before.count) }
        }
        var qi = [Int32](repeating: 0, count: Int(nq * k)), qv = [Float](repeating: 0, count: Int(nq * k))
        for t in 0..<Int(nq * k) { qi[t] = Int32((t * 5 + salt) % Int(latentDim)); qv[t] = Float(t % 3) - 0.7 }
        qi[1] = (qi[0] + 1) % Int32(latentDim)
        if checkStatus(csae_index_search_codes(index, qi, qv, nq, k, &p, &scores, &ids, nq * n, &found),
                       "csae_index_search_codes") {
            for q in 0..<Int(nq) { checkResults(scores[(q * 5)..<(q * 5 + 5)], ids[(q * 5)..<(q * 5 + 5)], count: before.count) }
        }
        // One more item through the model, then a save and a reload of both.
        let added = checkStatus(csae_index_add_dense(index, denseRows(1, Int(inputDim), salt: salt + 1), 1, inputDim, 0),
                                "csae_index_add_dense")
        let after = info(index)
        invariant(after.count == before.count + (added ? 1 : 0), "count \(before.count) -> \(after.count) after add")
        guard checkStatus(csae_index_save(index, Scratch.output), "csae_index_save") else {
            fatalError("a loaded index cannot be saved: \(String(cString: csae_last_error()))")
        }
        var again: OpaquePointer? = nil
        guard checkStatus(csae_index_load(Scratch.output, model, &again), "csae_index_load(saved copy)") else {
            fatalError("the saved copy of a loaded index does not load: \(String(cString: csae_last_error()))")
        }
        let reloaded = info(again)
        csae_index_free(again)
        invariant(reloaded.count == after.count && reloaded.k == after.k && reloaded.mode == after.mode
                  && reloaded.storage == after.storage, "reloaded index info \(reloaded) differs from \(after)")
    }
}
