import Testing
import Dispatch
import CCompresSAE
@testable import CompresSAE

/// Deterministic rows with no zero row.
private func sampleRows(_ n: Int, _ d: Int) -> [Float] {
    (0..<(n * d)).map { Float((($0 &* 2654435761) >> 7) % 97) / 97 - 0.45 + ($0 % d == 0 ? 1 : 0) }
}

private let trainingLoss = Int32(CSAE_HISTORY_TRAINING_LOSS.rawValue)
private let invalidArgument = CSAE_ERR_INVALID_ARGUMENT.rawValue

/// The params structs, the search results and the history getter of the
/// C ABI (version 6), called as a C program would.
@Suite("C ABI: params structs, results, history")
struct CABIParamsTests {
    func lastError() -> String { String(cString: csae_last_error()) }

    @Test("params structs carry their size, are packed, and the default ones map to TrainingOptions()")
    func structLayout() throws {
        #expect(Int(csae_train_default_params().struct_size) == MemoryLayout<csae_train_params>.size)
        #expect(Int(csae_encode_default_params().struct_size) == MemoryLayout<csae_encode_params>.size)
        #expect(Int(csae_search_default_params().struct_size) == MemoryLayout<csae_search_params>.size)
        #expect(MemoryLayout<csae_train_params>.size % paramsStructGranule == 0)
        #expect(csae_search_default_params().n == 100)
        // Both directions of the one mapping agree, field by field.
        for options in [TrainingOptions(), TrainingOptions.reference] {
            let back = try TrainingOptions(csae_train_params(options))
            #expect(csae_train_params(back).bytes == csae_train_params(options).bytes)
        }
        let reference = csae_train_reference_params()
        #expect(reference.epochs == 1 && reference.learning_rate == 1e-3
                && reference.learning_rate_decay == Int32(CSAE_LR_CONSTANT.rawValue))
    }

    @Test("every TrainingOptions option has a csae_train_params field and a line in TrainParamField.all")
    func oneMappingCoversEveryOption() throws {
        // The C fields that are no option: struct_size, and the callback's progress and user_data.
        let cFields = Mirror(reflecting: csae_train_params()).children.compactMap(\.label)
        let options = Mirror(reflecting: TrainingOptions()).children.compactMap(\.label)
        #expect(cFields.count == options.count + 3, "C fields \(cFields), options \(options)")
        #expect(TrainParamField.all.count == options.count)
        // Names: each option is the lowerCamelCase of its C field.
        func camel(_ name: String) -> String {
            let parts = name.split(separator: "_")
            return parts.enumerated().map { $0 == 0 ? String($1) : $1.prefix(1).uppercased() + $1.dropFirst() }.joined()
        }
        let mapped = Set(cFields.filter { !["struct_size", "progress", "user_data"].contains($0) }.map(camel))
        #expect(mapped == Set(options), "\(mapped.symmetricDifference(Set(options)))")
    }

    @Test("struct_size: too small, not a multiple of 8 or larger than this library's struct is refused")
    func structSize() throws {
        var model: OpaquePointer?
        #expect(csae_model_create(16, 64, 4, 1, 0, &model) == 0)
        defer { csae_model_free(model) }
        let x = sampleRows(3, 16)
        var indices = [Int32](repeating: 0, count: 12), values = [Float](repeating: 0, count: 12)
        var params = csae_encode_default_params()
        for size: UInt32 in [0, 8, 12, 24, 4096] {
            params.struct_size = size
            #expect(csae_model_encode(model, x, 3, 16, &params, &indices, &values, 12, nil) == invalidArgument)
            #expect(lastError().contains("csae_encode_params.struct_size is \(size)"))
        }
        params.struct_size = UInt32(MemoryLayout<csae_encode_params>.size)
        #expect(csae_model_encode(model, x, 3, 16, &params, &indices, &values, 12, nil) == 0)
        var train = csae_train_default_params()
        train.struct_size = 16
        #expect(csae_model_train(model, x, 3, 16, &train) == invalidArgument)
        var search = csae_search_default_params()
        search.struct_size = UInt32(MemoryLayout<csae_search_params>.size + 8)
        var index: OpaquePointer?
        #expect(csae_index_create(model, Int32(CSAE_INDEX_SPARSE.rawValue), 0, &index) == 0)
        defer { csae_index_free(index) }
        var scores = [Float](repeating: 0, count: 300), ids = [Int64](repeating: 0, count: 300)
        #expect(csae_index_search_dense(index, x, 3, 16, &search, &scores, &ids, 300, nil) == invalidArgument)
        #expect(lastError().contains("newer header"))
    }

    @Test("*_init fill the caller's struct_size bytes and no more; bad sizes and recipes are refused")
    func initSizes() throws {
        var pair = (csae_search_params(), csae_search_params())
        withUnsafeMutableBytes(of: &pair) { _ = $0.initializeMemory(as: UInt8.self, repeating: 0xAB) }
        let size = MemoryLayout<csae_search_params>.size
        #expect(csae_search_params_init(&pair.0, UInt32(size)) == 0)
        #expect(pair.0.n == 100 && pair.0.struct_size == UInt32(size) && pair.0.query_k == 0)
        withUnsafeBytes(of: &pair.1) { #expect($0.allSatisfy { $0 == 0xAB }) }
        for bad: UInt32 in [0, 4, UInt32(size) + 4, UInt32(size) + 8] {
            #expect(csae_search_params_init(&pair.0, bad) == invalidArgument)
        }
        #expect(csae_search_params_init(nil, UInt32(size)) == invalidArgument)
        var train = csae_train_params()
        #expect(csae_train_params_init(&train, UInt32(MemoryLayout<csae_train_params>.size), 2) == invalidArgument)
        #expect(lastError().contains("recipe must be"))
        var encode = csae_encode_params()
        #expect(csae_encode_params_init(&encode, 8) == invalidArgument)
        // The row source follows the same rule (csae_row_source_defaults() in the header).
        var sources = (csae_row_source(), csae_row_source())
        withUnsafeMutableBytes(of: &sources) { _ = $0.initializeMemory(as: UInt8.self, repeating: 0xAB) }
        let sourceSize = UInt32(MemoryLayout<csae_row_source>.size)
        #expect(csae_row_source_init(&sources.0, sourceSize) == 0)
        #expect(sources.0.struct_size == sourceSize && sources.0.kind == Int32(CSAE_SOURCE_ROWS.rawValue)
                && sources.0.block_rows == 1 && sources.0.max_validation_rows == 16384
                && sources.0.read_rows == nil && sources.0.user_data == nil)
        withUnsafeBytes(of: &sources.1) { #expect($0.allSatisfy { $0 == 0xAB }) }
        for bad: UInt32 in [0, 8, sourceSize - 8, sourceSize + 8] {
            #expect(csae_row_source_init(&sources.0, bad) == invalidArgument)
            #expect(lastError().contains("csae_row_source_defaults()"))
        }
        #expect(csae_row_source_init(nil, sourceSize) == invalidArgument)
    }

    @Test("a params struct of the first version's size reads its fields; the rest are defaults")
    func shortStruct() throws {
        // Bytes past struct_size must not be read: fill them with garbage.
        var params = csae_search_params()
        withUnsafeMutableBytes(of: &params) { _ = $0.initializeMemory(as: UInt8.self, repeating: 0xAB) }
        params.struct_size = UInt32(csae_search_params.firstVersionSize)
        params.num_threads = 1
        params.n = 3
        params.query_k = 0
        let read = try csae_search_params.read(&params)
        #expect(read.n == 3 && read.num_threads == 1 && read.query_k == 0 && read.candidates == 0)
        #expect(Int(read.struct_size) == csae_search_params.firstVersionSize)
    }

    @Test("a train struct of the ABI 6 size leaves the dead-latent term off, the reference recipe included")
    func shortTrainStruct() throws {
        var reference = csae_train_reference_params()
        reference.struct_size = UInt32(csae_train_params.firstVersionSize)
        let read = try csae_train_params.read(&reference)
        #expect(read.dead_latent_aux_weight == 0)
        var full = csae_train_default_params()
        #expect(try csae_train_params.read(&full).dead_latent_aux_weight == TrainingOptions().deadLatentAuxWeight)
        #expect(try csae_train_params.read(nil).dead_latent_aux_weight == TrainingOptions().deadLatentAuxWeight)
    }

    @Test("search: n_results = min(n, count); columns past it are -1 / -inf; an empty index is an empty result",
          arguments: [CSAE_INDEX_SPARSE, CSAE_INDEX_RECONSTRUCTED])
    func searchResults(mode: csae_index_mode) throws {
        var model: OpaquePointer?, index: OpaquePointer?
        #expect(csae_model_create(16, 64, 4, 3, 0, &model) == 0)
        defer { csae_model_free(model) }
        #expect(csae_index_create(model, Int32(mode.rawValue), 0, &index) == 0)
        defer { csae_index_free(index) }
        let x = sampleRows(6, 16)
        var params = csae_search_default_params()
        params.n = 4
        var scores = [Float](repeating: 7, count: 2 * 4), ids = [Int64](repeating: 7, count: 2 * 4)
        var found: Int64 = -5
        #expect(csae_index_search_dense(index, x, 2, 16, &params, &scores, &ids, 8, &found) == 0)
        #expect(found == 0)
        #expect(ids.allSatisfy { $0 == -1 } && scores.allSatisfy { $0 == -.infinity })
        var codes = [Int32](repeating: 0, count: 8), values = [Float](repeating: 0, count: 8)
        #expect(csae_model_encode(model, x, 2, 16, nil, &codes, &values, 8, nil) == 0)
        found = -5
        #expect(csae_index_search_codes(index, codes, values, 2, 4, &params, &scores, &ids, 8, &found) == 0)
        #expect(found == 0)
        #expect(csae_index_add_dense(index, x, 3, 16, 1) == 0)
        #expect(csae_index_search_dense(index, x, 2, 16, &params, &scores, &ids, 8, &found) == 0)
        #expect(found == 3)
        for q in 0..<2 {
            #expect(Set(ids[(q * 4)..<(q * 4 + 3)]) == Set([0, 1, 2]))
            #expect(ids[q * 4 + 3] == -1 && scores[q * 4 + 3] == -.infinity)
        }
        #expect(ids[0] == 0)  // the first query is the first item
        // capacity below nq * n is refused before anything is written.
        #expect(csae_index_search_dense(index, x, 2, 16, &params, &scores, &ids, 7, &found) == invalidArgument)
        #expect(lastError().contains("capacity 7 is too small"))
        params.n = 0
        #expect(csae_index_search_dense(index, x, 2, 16, &params, &scores, &ids, 8, &found) == invalidArgument)
    }

    @Test("copy_history: the length alone with NULL / 0, the values up to capacity, unknown which refused")
    func history() throws {
        var model: OpaquePointer?
        #expect(csae_model_create(8, 32, 2, 1, 0, &model) == 0)
        defer { csae_model_free(model) }
        let x = sampleRows(40, 8)
        var params = csae_train_reference_params()
        params.batch_size = 10
        params.epochs = 2
        #expect(csae_model_train(model, x, 40, 8, &params) == 0)
        var length: Int64 = -1
        #expect(csae_model_copy_history(model, trainingLoss, nil, 0, &length) == 0 && length == 8)
        var out = [Float](repeating: -1, count: 3)
        #expect(csae_model_copy_history(model, trainingLoss, &out, 3, &length) == 0 && length == 8)
        #expect(out.allSatisfy { $0 > 0 })
        #expect(csae_model_copy_history(model, Int32(CSAE_HISTORY_DEAD_LATENTS.rawValue), nil, 0, &length) == 0
                && length == 8)
        #expect(csae_model_copy_history(model, Int32(CSAE_HISTORY_VALIDATION_LOSS.rawValue), nil, 0, &length) == 0
                && length == 0)
        #expect(csae_model_copy_history(model, 3, nil, 0, &length) == invalidArgument)
        #expect(csae_model_copy_history(model, trainingLoss, nil, 2, &length) == invalidArgument)
        #expect(csae_model_copy_history(model, trainingLoss, &out, -1, &length) == invalidArgument)
    }

    @Test("encode with k = 0 while another thread raises k: refused or written within capacity, never past it",
          .timeLimit(.minutes(1)))
    func encodeRacesSetK() throws {
        let n = 8, d = 16, small: Int64 = 2, capacity = n * 2
        var model: OpaquePointer?
        #expect(csae_model_create(Int64(d), 64, small, 1, 0, &model) == 0)
        defer { csae_model_free(model) }
        let x = sampleRows(n, d)
        let handle = UnsafeSendableBox(model)
        let outcomes = LockedBox<(ok: Int, refused: Int, bad: Int)>((0, 0, 0))
        DispatchQueue.concurrentPerform(iterations: 2) { worker in
            if worker == 0 {
                for round in 0..<2000 { _ = csae_model_set_k(handle.value, round % 2 == 0 ? 16 : small) }
                return
            }
            // Guard entries past the capacity must stay untouched.
            let guardCount = 64
            var indices = [Int32](repeating: -7, count: capacity + guardCount)
            var values = [Float](repeating: -7, count: capacity + guardCount)
            for _ in 0..<400 {
                var kUsed: Int64 = -1
                let status = csae_model_encode(handle.value, x, Int64(n), Int64(d), nil, &indices, &values,
                                               Int64(capacity), &kUsed)
                let intact = indices[capacity...].allSatisfy { $0 == -7 } && values[capacity...].allSatisfy { $0 == -7 }
                outcomes.withLock {
                    if status == 0 && kUsed == small && intact { $0.ok += 1 }
                    else if status == invalidArgument && intact { $0.refused += 1 }
                    else { $0.bad += 1 }
                }
            }
        }
        let seen = outcomes.withLock { $0 }
        #expect(seen.bad == 0)
        #expect(seen.ok + seen.refused == 400)
    }
}

extension csae_train_params {
    /// The struct's bytes, progress and user_data included (both NULL here).
    var bytes: [UInt8] { withUnsafeBytes(of: self) { Array($0) } }
}
