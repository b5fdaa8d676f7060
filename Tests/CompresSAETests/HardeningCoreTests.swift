import Testing
import Dispatch
import Synchronization
import CCompresSAE
@testable import CompresSAE

#if canImport(Glibc)
import Glibc
#endif

/// Rows of `d` floats that are finite and nonzero, from a seed.
private func rows(_ n: Int, _ d: Int, seed: UInt64 = 1) -> [Float] {
    var rng = SeededGenerator(seed: seed)
    return (0..<(n * d)).map { _ in 2 * rng.nextUnitFloat() - 1 + 1e-3 }
}

private func seconds(_ body: () throws -> Void) rethrows -> Double {
    var start = timespec(), end = timespec()
    clock_gettime(CLOCK_MONOTONIC, &start)
    try body()
    clock_gettime(CLOCK_MONOTONIC, &end)
    return Double(end.tv_sec - start.tv_sec) + Double(end.tv_nsec - start.tv_nsec) / 1e9
}

/// Values a call reads at its start (k, shapes) are the ones it uses
/// throughout, whatever the progress callback or other threads do.
@Suite("Hardening: values captured once per call")
struct CapturedValuesTests {
    /// The callback runs on the training thread between steps, so this is
    /// deterministic: before, the k it set was used by the validation pass
    /// with buffers sized for the old k (a heap overflow).
    @Test("setK from the progress callback is refused while training, and training keeps its k")
    func setKDuringFitIsBusy() throws {
        let d = 16, h = 64, n = 200
        let model = try CompresSAEModel(inputDim: d, latentDim: h, k: 4, seed: 2)
        var options = TrainingOptions.reference
        options.epochs = 3
        options.batchSize = 32
        options.validationFraction = 0.2
        options.numThreads = 2
        var refusals: [CompresSAEError.Kind] = []
        try model.train(rows(n, d), rows: n, options: options) { _, _, _ in
            do { try model.setK(16); refusals.append(.invalidArgument) } catch let e as CompresSAEError {
                refusals.append(e.kind)
            } catch {}
            return true
        }
        #expect(!refusals.isEmpty)
        #expect(refusals.allSatisfy { $0 == .busy })
        #expect(model.k == 4)
        #expect(model.validationHistory.count == 3)
        try model.setK(16)  // accepted once training is over
        #expect(model.k == 16)
    }

    @Test("C: csae_model_set_k from the progress callback returns CSAE_ERR_BUSY")
    func setKDuringFitIsBusyThroughC() throws {
        var handle: OpaquePointer?
        #expect(csae_model_create(16, 64, 4, 1, 0, &handle) == 0)
        defer { csae_model_free(handle) }
        let x = rows(100, 16)
        var params = csae_train_reference_params()
        params.batch_size = 16
        params.epochs = 2
        params.validation_fraction = 0.2
        final class Box { var handle: OpaquePointer?; var statuses: [Int32] = [] }
        let box = Box()
        box.handle = handle
        params.user_data = Unmanaged.passUnretained(box).toOpaque()
        params.progress = { user, _, _, _ in
            let box = Unmanaged<Box>.fromOpaque(user!).takeUnretainedValue()
            box.statuses.append(csae_model_set_k(box.handle, 16))
            return 0
        }
        #expect(csae_model_train(handle, x, 100, 16, &params) == 0)
        #expect(!box.statuses.isEmpty && box.statuses.allSatisfy { $0 == CSAE_ERR_BUSY.rawValue })
        var k: Int64 = 0
        #expect(csae_model_get_shape(handle, nil, nil, &k) == 0 && k == 4)
    }

    @Test("set k from another thread while fit and encodes run: no crash, each call consistent", .timeLimit(.minutes(2)))
    func setKRacesFitAndEncode() throws {
        let d = 16, h = 64, n = 400
        let model = try CompresSAEModel(inputDim: d, latentDim: h, k: 4, seed: 3)
        let x = rows(n, d)
        let done = Atomic<Bool>(false)
        var options = TrainingOptions.reference
        options.epochs = 6
        options.batchSize = 16
        options.validationFraction = 0.1
        options.numThreads = 1
        let group = DispatchGroup()
        let trainer = UnsafeSendableBox(model), fixedOptions = options
        DispatchQueue.global().async(group: group) {
            for _ in 0..<3 { _ = try? trainer.value.train(x, rows: n, options: fixedOptions) }
            done.store(true, ordering: .releasing)
        }
        // Bounded: at most 20,000 iterations whatever the speed of training.
        var iterations = 0
        var indices = [Int32](repeating: 0, count: 8 * 4), values = [Float](repeating: 0, count: 8 * 4)
        while !done.load(ordering: .acquiring) && iterations < 20_000 {
            _ = try? model.setK(iterations % 2 == 0 ? 16 : 4)
            // Buffers sized for k = 4: a call that reads k = 16 must refuse, never write past them.
            try x.withUnsafeBufferPointer { xb in
                let head = UnsafeBufferPointer(rebasing: xb[0..<(8 * d)])
                try indices.withUnsafeMutableBufferPointer { ib in
                    try values.withUnsafeMutableBufferPointer { vb in
                        do { try model.encodeRefitted(head, rows: 8, indices: ib, values: vb, numThreads: 1) }
                        catch let e as CompresSAEError { #expect(e.kind == .invalidArgument) }
                    }
                }
            }
            let codes = try model.encode(Array(x[0..<(8 * d)]), rows: 8, refit: true, numThreads: 1)
            #expect(codes.indices.count == 8 * codes.k && codes.values.count == 8 * codes.k)
            iterations += 1
        }
        group.wait()
        #expect(iterations > 0)
    }
}

/// Input-sized allocations fail into errors; work is bounded by what exists.
@Suite("Hardening: allocation failures and bounded work")
struct BoundedResourcesTests {
    @Test("a model too large for memory is an out-of-memory error, not the end of the process")
    func hugeModel() {
        do {
            _ = try CompresSAEModel(inputDim: 131072, latentDim: 131072, k: 1)
            // 2 x 64 GiB of weights: only a machine that has them gets here.
        } catch let e as CompresSAEError {
            #expect(e.kind == .outOfMemory, "\(e)")
        } catch { Issue.record("unexpected \(error)") }
        var handle: OpaquePointer?
        let status = csae_model_create(131072, 131072, 1, 0, 0, &handle)
        #expect(status == CSAE_ERR_OUT_OF_MEMORY.rawValue || status == 0)
        csae_model_free(handle)
    }

    @Test("outputs sized by a caller's row count fail into errors")
    func hugeOutputs() throws {
        let model = try CompresSAEModel(inputDim: 8, latentDim: 32, k: 4)
        let codes = SparseCodes(rows: 1 << 40, k: 1, dim: 32, indices: [0], values: [1])
        #expect(throws: CompresSAEError.self) { _ = try model.decode(codes) }
        #expect(throws: CompresSAEError.self) { _ = try model.encode([Float](repeating: 1, count: 8), rows: 1 << 40) }
    }

    @Test("search with n far above the item count is quick and padded", arguments: [SparseIndex.Mode.sparse, .reconstructed])
    func searchHugeN(mode: SparseIndex.Mode) throws {
        let d = 16, h = 64
        let model = try CompresSAEModel(inputDim: d, latentDim: h, k: 4, seed: 5)
        let index = try SparseIndex(model: model, mode: mode)
        let x = rows(10, d)
        try x.withUnsafeBufferPointer { try index.add(dense: $0, rows: 10) }
        let n = 2_000_000
        var scores = [Float](repeating: 0, count: n), ids = [Int64](repeating: 0, count: n)
        let elapsed = try seconds {
            try x.withUnsafeBufferPointer { xb in
                try scores.withUnsafeMutableBufferPointer { sb in
                    try ids.withUnsafeMutableBufferPointer { ib in
                        _ = try index.search(dense: UnsafeBufferPointer(rebasing: xb[0..<d]), rows: 1, n: n,
                                         scores: sb, ids: ib, numThreads: 2)
                    }
                }
            }
        }
        // Writing the 2,000,000 padding slots is the only work sized by n.
        #expect(elapsed < 0.5, "search took \(elapsed) s")
        #expect(ids[0] == 0)
        #expect(Set(ids[0..<10]) == Set(0..<10))
        #expect(ids[10...].allSatisfy { $0 == -1 } && scores[10...].allSatisfy { $0 == -.infinity })
    }

    @Test("fit(epochs: 10^9) with early stopping runs the steps it runs, nothing reserved for the rest")
    func hugeEpochs() throws {
        let d = 16, h = 64, n = 200
        let model = try CompresSAEModel(inputDim: d, latentDim: h, k: 4, seed: 6)
        var options = TrainingOptions.reference
        options.epochs = 1_000_000_000
        options.batchSize = 8
        options.validationFraction = 0.1
        options.patience = 1
        options.tolerance = 0.99  // every epoch after the first counts as no improvement
        let history = try model.train(rows(n, d), rows: n, options: options)
        #expect(history.count == 2 * 23)  // two epochs of ceil(180 / 8) steps
        #expect(model.validationHistory.count == 2)
    }
}

/// An index never serves codes of other weights than its model's.
@Suite("Hardening: index staleness")
struct IndexStalenessTests {
    @Test("an index whose model was trained after its items were added refuses to save and search", arguments: [SparseIndex.Mode.sparse, .reconstructed])
    func staleIndexRefusesSave(mode: SparseIndex.Mode) throws {
        let d = 16, h = 64
        let model = try CompresSAEModel(inputDim: d, latentDim: h, k: 4, seed: 7)
        let index = try SparseIndex(model: model, mode: mode)
        let x = rows(40, d)
        try x.withUnsafeBufferPointer { try index.add(dense: $0, rows: 40) }
        var options = TrainingOptions.reference
        options.batchSize = 20
        try model.train(x, rows: 40, options: options)
        let path = "/tmp/compressae-stale-\(getpid())-\(mode.name).index"
        defer { unlink(path) }
        do {
            try index.save(to: path)
            Issue.record("a stale index was saved")
        } catch let e as CompresSAEError {
            #expect(e.message.contains("trained after items were added"))
        }
        #expect(access(path, F_OK) != 0)
        var scores = [Float](repeating: 0, count: 3), ids = [Int64](repeating: 0, count: 3)
        #expect(throws: CompresSAEError.self) {
            try x.withUnsafeBufferPointer { xb in
                try scores.withUnsafeMutableBufferPointer { sb in
                    try ids.withUnsafeMutableBufferPointer { ib in
                        try index.search(dense: UnsafeBufferPointer(rebasing: xb[0..<d]), rows: 1, n: 3, scores: sb, ids: ib)
                    }
                }
            }
        }
        // Adding to it is refused too, whatever the codes.
        #expect(throws: CompresSAEError.self) {
            try x.withUnsafeBufferPointer { try index.add(dense: UnsafeBufferPointer(rebasing: $0[0..<d]), rows: 1) }
        }
    }

    @Test("codes encoded before a training step are refused by an add after it (the first add's window)")
    func codesOfAnOlderVersionAreRefused() throws {
        let d = 16, h = 64
        let model = try CompresSAEModel(inputDim: d, latentDim: h, k: 4, seed: 8)
        let x = rows(40, d)
        for mode in [SparseIndex.Mode.sparse, .reconstructed] {
            let index = try SparseIndex(model: model, mode: mode)
            let before = model.weightsVersion
            var indices = [Int32](repeating: 0, count: 40 * 4), values = [Float](repeating: 0, count: 40 * 4)
            let version = try x.withUnsafeBufferPointer { xb in
                try indices.withUnsafeMutableBufferPointer { ib in
                    try values.withUnsafeMutableBufferPointer { vb in
                        try model.encodeReportingVersion(xb, rows: 40, k: 4, refit: mode == .reconstructed,
                                                         indices: ib, values: vb, threads: 1)
                    }
                }
            }
            #expect(version == before)
            // A step lands between the encode and the add, as training in another thread can.
            var options = TrainingOptions.reference
            options.batchSize = 40
            try model.train(x, rows: 40, options: options)
            #expect(model.weightsVersion == before + 1)
            do {
                try indices.withUnsafeBufferPointer { ib in
                    try values.withUnsafeBufferPointer { vb in
                        try index.add(indices: ib, values: vb, rows: 40, k: 4, encodedAt: version)
                    }
                }
                Issue.record("codes of older weights were added")
            } catch let e as CompresSAEError {
                #expect(e.message.contains("trained while these rows were being encoded"))
            }
            #expect(index.count == 0)
        }
    }

    @Test("adds and searches while the model trains in another thread: refused or consistent, never a crash", .timeLimit(.minutes(2)))
    func indexRacesTraining() throws {
        let d = 16, h = 64, n = 300
        let model = try CompresSAEModel(inputDim: d, latentDim: h, k: 4, seed: 9)
        let x = rows(n, d)
        let done = Atomic<Bool>(false)
        var options = TrainingOptions.reference
        options.epochs = 200
        options.batchSize = 10
        options.numThreads = 1
        let group = DispatchGroup()
        let trainer = UnsafeSendableBox(model), fixedOptions = options
        DispatchQueue.global().async(group: group) {
            _ = try? trainer.value.train(x, rows: n, options: fixedOptions)
            done.store(true, ordering: .releasing)
        }
        var iterations = 0
        var scores = [Float](repeating: 0, count: 5), ids = [Int64](repeating: 0, count: 5)
        while !done.load(ordering: .acquiring) && iterations < 2_000 {
            let index = try SparseIndex(model: model, mode: iterations % 2 == 0 ? .sparse : .reconstructed)
            try x.withUnsafeBufferPointer { xb in
                let head = UnsafeBufferPointer(rebasing: xb[0..<(20 * d)])
                do { try index.add(dense: head, rows: 20, numThreads: 1) } catch let e as CompresSAEError {
                    #expect(e.message.contains("trained"))
                    return
                }
                try scores.withUnsafeMutableBufferPointer { sb in
                    try ids.withUnsafeMutableBufferPointer { ib in
                        do {
                            try index.search(dense: UnsafeBufferPointer(rebasing: xb[0..<d]), rows: 1, n: 5,
                                             scores: sb, ids: ib, numThreads: 1)
                        } catch let e as CompresSAEError { #expect(e.message.contains("trained")) }
                    }
                }
            }
            iterations += 1
        }
        group.wait()
        #expect(iterations > 0)
    }
}

/// Freeing a handle while other threads use it.
@Suite("Hardening: handles freed in use")
struct HandleLifetimeTests {
    @Test("csae_model_free and csae_index_free while other threads encode and search", .timeLimit(.minutes(1)))
    func freeWhileInUse() throws {
        let d: Int64 = 16
        let x = rows(32, Int(d))
        for round in 0..<20 {
            var model: OpaquePointer?, index: OpaquePointer?
            #expect(csae_model_create(d, 64, 4, UInt64(round), 0, &model) == 0)
            #expect(csae_index_create(model, Int32(round % 2), 0, &index) == 0)
            #expect(csae_index_add_dense(index, x, 32, d, 0) == 0)
            let handles = UnsafeSendableBox((model, index))
            let statuses = LockedBox<[Int32]>([])
            DispatchQueue.concurrentPerform(iterations: 3) { worker in
                let (model, index) = handles.value
                if worker == 0 {
                    csae_model_free(model)
                    csae_index_free(index)
                    return
                }
                var indices = [Int32](repeating: 0, count: 32 * 4), values = [Float](repeating: 0, count: 32 * 4)
                var scores = [Float](repeating: 0, count: 5), ids = [Int64](repeating: 0, count: 5)
                var search = csae_search_default_params()
                search.n = 5
                search.num_threads = 1
                for _ in 0..<50 {
                    let a = csae_model_encode(model, x, 32, d, nil, &indices, &values, 32 * 4, nil)
                    let b = csae_index_search_dense(index, x, 1, d, &search, &scores, &ids, 5, nil)
                    statuses.withLock { $0 += [a, b] }
                }
            }
            let seen = statuses.withLock { $0 }
            #expect(seen.allSatisfy { $0 == 0 || $0 == CSAE_ERR_INVALID_HANDLE.rawValue })
            #expect(csae_model_encode(model, x, 32, d, nil, nil, nil, 0, nil) == CSAE_ERR_INVALID_HANDLE.rawValue)
        }
    }
}
