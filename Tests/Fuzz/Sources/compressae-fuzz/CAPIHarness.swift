import CompresSAE
import CCompresSAE
#if canImport(Glibc)
import Glibc
#endif

/// Harness "capi": the input is a small program over the C entry points.
/// Each instruction is an opcode byte followed by its arguments; it acts on
/// two model slots and two index slots (a freed handle stays in its slot, so
/// later calls use it after free). Sizes are drawn small (d <= 12, h <= 48,
/// at most 4 rows), so every buffer the harness hands over is the size its
/// arguments claim, and no call may write past it, trap or hang; a failing
/// call must return a known status with a message.
enum CAPIHarness {
    static let maxInstructions = 64

    struct Machine {
        var input: ByteReader
        var models: [OpaquePointer?] = [nil, nil]
        var indexes: [OpaquePointer?] = [nil, nil]
        var liveModels: Set<UInt> = []
        var liveIndexes: Set<UInt> = []

        mutating func model() -> OpaquePointer? { models[input.below(2)] }
        mutating func index() -> OpaquePointer? { indexes[input.below(2)] }

        /// A row count for a call: usually 1...3, sometimes 0 or negative.
        mutating func rows() -> Int64 {
            let b = input.byte()
            return b == 0xFF ? -1 : Int64(b % 4)
        }

        /// A dimension argument: usually `actual`, sometimes off by one or absurd.
        mutating func dimension(_ actual: Int64) -> Int64 {
            switch input.byte() % 8 {
            case 0: return actual + 1
            case 1: return max(actual - 1, 0)
            case 2: return Int64.max
            default: return actual
            }
        }

        mutating func floats(_ count: Int) -> [Float] { (0..<count).map { _ in input.float() } }
        mutating func latents(_ count: Int, _ h: Int64) -> [Int32] { (0..<count).map { _ in input.latent(h) } }

        /// `count` elements, but a buffer of at least one element so the
        /// pointer is never NULL because of a zero size.
        static func buffer<T>(_ count: Int64, _ fill: T) -> [T] {
            [T](repeating: fill, count: Int(max(1, min(count, 1 << 16))))
        }

        mutating func step() {
            switch input.byte() % 24 {
            case 0: createModel()
            case 1: createModelFromWeights()
            case 2:
                let slot = input.below(2)
                csae_model_free(models[slot])
            case 3:
                let m = model()
                let b = input.byte()
                let k: Int64 = b == 0xFF ? Int64(bitPattern: input.uint64()) : Int64(Int8(bitPattern: b))
                checkStatus(csae_model_set_k(m, k), "csae_model_set_k")
            case 4: encode()
            case 5: decode()
            case 6: refit()
            case 7: preactivations()
            case 8: lossAndGradients()
            case 9: train()
            case 10: histories()
            case 11: copyWeights()
            case 12:
                let m = model()
                let slot = input.below(2)
                var out: OpaquePointer? = nil
                if checkStatus(csae_index_create(m, Int32(input.below(3)), Int32(input.below(3)), &out), "csae_index_create") {
                    csae_index_free(indexes[slot])
                    indexes[slot] = out
                }
            case 13: csae_index_free(indexes[input.below(2)])
            case 14: addCodes()
            case 15: addDense()
            case 16: searchCodes()
            case 17: searchDense()
            case 18:
                if input.byte() & 1 == 0 {
                    checkStatus(csae_model_save(model(), Scratch.output), "csae_model_save")
                } else {
                    checkStatus(csae_index_save(index(), Scratch.output), "csae_index_save")
                }
            case 19: load()
            case 20:
                var d: Int64 = 0, c: Int64 = 0, mode: Int32 = 0
                checkStatus(csae_model_get_shape(model(), &d, nil, nil), "csae_model_get_shape")
                checkStatus(csae_index_get_info(index(), &c, nil, nil, &mode, nil), "csae_index_get_info")
            case 21:
                // A forged handle (any bit pattern): refused, never dereferenced.
                let forged = OpaquePointer(bitPattern: UInt(input.uint64() | 1 << 40))
                checkStatus(csae_model_set_k(forged, 1), "csae_model_set_k(forged)")
                checkStatus(csae_index_get_info(forged, nil, nil, nil, nil, nil), "csae_index_get_info(forged)")
            case 22:
                // An index handle where a model is expected and the reverse.
                checkStatus(csae_model_get_shape(index(), nil, nil, nil), "csae_model_get_shape(index handle)")
                checkStatus(csae_index_get_info(model(), nil, nil, nil, nil, nil), "csae_index_get_info(model handle)")
            default:
                checkStatus(csae_set_num_threads(Int32(input.below(3))), "csae_set_num_threads")
            }
        }

        mutating func createModel() {
            let slot = input.below(2)
            let d = 1 + Int64(input.below(12)), h = 1 + Int64(input.below(48))
            let k = Int64(input.below(Int(h) + 2))
            var out: OpaquePointer? = nil
            let seed = UInt64(input.byte()), initialization = Int32(input.below(3))
            if checkStatus(csae_model_create(d, h, k, seed, initialization, &out),
                           "csae_model_create(d \(d), h \(h), k \(k), seed \(seed), init \(initialization)) into slot \(slot)") {
                csae_model_free(models[slot])
                models[slot] = out
            }
        }

        mutating func createModelFromWeights() {
            let slot = input.below(2)
            let d = 1 + Int64(input.below(6)), h = 1 + Int64(input.below(12))
            let k = Int64(input.below(Int(h) + 2))
            let ew = floats(Int(d * h)), eb = floats(Int(h)), dw = floats(Int(h * d))
            var out: OpaquePointer? = nil
            if checkStatus(csae_model_create_from_weights(d, h, k, ew, eb, dw, &out),
                           "csae_model_create_from_weights(d \(d), h \(h), k \(k), largest |weight| \((ew + eb + dw).map { abs($0) }.max() ?? 0))") {
                csae_model_free(models[slot])
                models[slot] = out
            }
        }

        /// The shape of `m`, or a made-up one for a dead handle (the call must refuse it).
        mutating func shapeOrGuess(_ m: OpaquePointer?) -> (d: Int64, h: Int64, k: Int64) {
            var d: Int64 = 0, h: Int64 = 0, k: Int64 = 0
            if csae_model_get_shape(m, &d, &h, &k) == 0 { return (d, h, k) }
            return (4, 8, 2)
        }

        mutating func encode() {
            let m = model()
            let s = shapeOrGuess(m)
            let n = rows(), d = dimension(s.d)
            let k = Int64(input.below(Int(s.h) + 2))
            let kk = k == 0 ? s.k : k
            let x = Machine.buffer(n * min(d, 64), Float(0.5))
            var indices = Machine.buffer(n * kk, Int32(-7)), values = Machine.buffer(n * kk, Float.nan)
            var p = csae_encode_default_params()
            p.k = k
            var used: Int64 = -1
            if checkStatus(csae_model_encode(m, x, n, d, &p, &indices, &values, Int64(indices.count), &used),
                           "csae_model_encode(\(m.map { "\($0)" } ?? "nil"), n \(n), d \(d), k \(k))") {
                invariant(used == kk || k == 0, "encode with k \(k) reported k \(used)")
                let written = Int(n * used)
                invariant(indices[..<written].allSatisfy { $0 >= 0 && Int64($0) < s.h }, "encode wrote an index out of range")
                invariant(values[..<written].allSatisfy(\.isFinite), "encode wrote a non-finite value: \(values[..<written])")
            }
        }

        mutating func decode() {
            let m = model()
            let s = shapeOrGuess(m)
            let n = rows(), k = 1 + Int64(input.below(Int(s.h) + 1))
            let count = Int(max(0, n * k))
            let indices = latents(count, s.h), values = floats(count)
            var out = Machine.buffer(n * s.d, Float.nan)
            checkStatus(csae_model_decode(m, indices.isEmpty ? [0] : indices, values.isEmpty ? [0] : values, n, k, 0, &out),
                        "csae_model_decode")
        }

        mutating func refit() {
            let m = model()
            let s = shapeOrGuess(m)
            let n = rows(), d = dimension(s.d), k = 1 + Int64(input.below(Int(s.h) + 1))
            let count = Int(max(0, n * k))
            var indices = latents(count, s.h), values = floats(count)
            if indices.isEmpty { indices = [0]; values = [0] }
            let x = floats(Int(max(1, n * min(d, 64))))
            var p = csae_encode_default_params()
            p.k = k
            checkStatus(csae_model_refit(m, x, n, d, &p, &indices, &values, Int64(indices.count), nil), "csae_model_refit")
        }

        mutating func preactivations() {
            let m = model()
            let s = shapeOrGuess(m)
            let n = rows(), d = dimension(s.d)
            let x = floats(Int(max(1, n * min(d, 64))))
            var out = Machine.buffer(n * s.h, Float.nan)
            checkStatus(csae_model_preactivations(m, x, n, d, 0, &out), "csae_model_preactivations")
        }

        mutating func lossAndGradients() {
            let m = model()
            let s = shapeOrGuess(m)
            let n = rows(), d = dimension(s.d)
            let x = floats(Int(max(1, n * min(d, 64))))
            var losses = csae_losses()
            var gw = Machine.buffer(s.d * s.h, Float.nan), gb = Machine.buffer(s.h, Float.nan)
            var gd = Machine.buffer(s.h * s.d, Float.nan)
            let withGradients = input.byte() & 1 == 1
            _ = gw.withUnsafeMutableBufferPointer { gw in
                gb.withUnsafeMutableBufferPointer { gb in
                    gd.withUnsafeMutableBufferPointer { gd in
                        checkStatus(csae_model_loss_and_gradients(
                            m, x, n, d, 0, &losses, withGradients ? gw.baseAddress : nil,
                            withGradients ? gb.baseAddress : nil, withGradients ? gd.baseAddress : nil),
                                    "csae_model_loss_and_gradients")
                    }
                }
            }
        }

        mutating func train() {
            let m = model()
            let s = shapeOrGuess(m)
            let n = 1 + Int64(input.below(24)), d = dimension(s.d)
            let x = floats(Int(n * min(d, 64)))
            var p = csae_train_reference_params()
            p.epochs = 1 + Int64(input.below(2))
            p.batch_size = 1 + Int64(input.below(16))
            p.validation_fraction = [0, 0.05, 0.5, 1][input.below(4)]
            p.learning_rate_decay = Int32(input.below(5))
            p.patience = Int64(input.below(3))
            p.warmup_steps = Int64(input.below(4))
            p.sparse_similarity_weight = input.byte() & 1 == 0 ? 0 : 0.03
            p.similarity_rows = 2 + Int64(input.below(8))
            p.num_threads = 1
            p.shuffle = Int32(input.below(2))
            p.dead_latent_window = Int64(input.below(8))
            // The progress callback changes k (from inside the call) or cancels.
            let callback = input.byte()
            TrainCallback.model = m
            TrainCallback.newK = Int64(input.below(Int(s.h) + 1))
            TrainCallback.cancelAt = Int64(callback >> 4)
            if callback & 3 != 0 {
                p.progress = { _, step, _, _ in
                    if step == 1 { _ = csae_model_set_k(TrainCallback.model, TrainCallback.newK) }
                    return TrainCallback.cancelAt != 0 && step >= TrainCallback.cancelAt ? 1 : 0
                }
            }
            let describe = { "csae_model_train(\(m.map { "\($0)" } ?? "nil"), n \(n), d \(d), epochs \(p.epochs), batch \(p.batch_size), validation \(p.validation_fraction), decay \(p.learning_rate_decay), similarity \(p.sparse_similarity_weight), callback \(callback & 3 != 0 ? "set_k(\(TrainCallback.newK)) at step 1, cancel at \(TrainCallback.cancelAt)" : "none"), x \(x.prefix(8)))" }
            if tracing { fputs("calling \(describe())\n", stderr) }
            checkStatus(csae_model_train(m, x, n, d, &p), describe())
            TrainCallback.model = nil
        }

        mutating func histories() {
            let m = model()
            let capacity = Int64(input.below(8))
            var out = Machine.buffer(capacity, Float.nan)
            var length: Int64 = 0
            for which in Int32(0)...3 {
                checkStatus(csae_model_copy_history(m, which, nil, 0, &length), "csae_model_copy_history(\(which), NULL)")
                checkStatus(csae_model_copy_history(m, which, &out, capacity, &length), "csae_model_copy_history(\(which))")
            }
        }

        mutating func copyWeights() {
            let m = model()
            let s = shapeOrGuess(m)
            let sizes = [s.d * s.h, s.h, s.h * s.d].map { $0 + Int64(input.below(3)) - 1 }
            var a = Machine.buffer(sizes[0], Float.nan), b = Machine.buffer(sizes[1], Float.nan)
            var c = Machine.buffer(sizes[2], Float.nan)
            checkStatus(csae_model_copy_weights(m, &a, max(sizes[0], 0), &b, max(sizes[1], 0), &c, max(sizes[2], 0)),
                        "csae_model_copy_weights")
        }

        /// The model shape behind an index, or a guess.
        mutating func indexShape(_ ix: OpaquePointer?) -> (h: Int64, d: Int64, k: Int64) {
            var k: Int64 = 0
            _ = csae_index_get_info(ix, nil, &k, nil, nil, nil)
            // The index's model is one of the slots' models, or a freed one:
            // its d and h are unknown here, so draw them within the slots' range.
            let d = 1 + Int64(input.below(12)), h = 1 + Int64(input.below(48))
            return (max(h, k), d, k)
        }

        mutating func addCodes() {
            let ix = index()
            let s = indexShape(ix)
            let n = rows(), k = input.byte() & 1 == 0 && s.k > 0 ? s.k : 1 + Int64(input.below(Int(s.h) + 1))
            let count = Int(max(0, n * k))
            var indices = latents(count, s.h), values = floats(count)
            if indices.isEmpty { indices = [0]; values = [0] }
            checkStatus(csae_index_add_codes(ix, indices, values, n, k), "csae_index_add_codes")
        }

        mutating func addDense() {
            let ix = index()
            let s = indexShape(ix)
            let n = rows()
            let x = floats(Int(max(1, n * s.d)))
            checkStatus(csae_index_add_dense(ix, x, n, s.d, 0), "csae_index_add_dense")
        }

        mutating func searchCodes() {
            let ix = index()
            let s = indexShape(ix)
            let nq = rows(), k = 1 + Int64(input.below(Int(s.h) + 1)), n = Int64(input.below(10))
            let count = Int(max(0, nq * k))
            var indices = latents(count, s.h), values = floats(count)
            if indices.isEmpty { indices = [0]; values = [0] }
            var scores = Machine.buffer(nq * n, Float.nan), ids = Machine.buffer(nq * n, Int64(-2))
            var p = csae_search_default_params()
            p.n = n
            p.num_threads = Int32(input.below(3))
            var found: Int64 = -1
            if checkStatus(csae_index_search_codes(ix, indices, values, nq, k, &p, &scores, &ids, Int64(ids.count), &found),
                           "csae_index_search_codes") {
                checkIDs(ix, ids, Int(nq * n), found: found, n: n)
            }
        }

        mutating func searchDense() {
            let ix = index()
            let s = indexShape(ix)
            let nq = rows(), n = Int64(input.below(10)), queryK = Int64(input.below(Int(s.h) + 2))
            let x = floats(Int(max(1, nq * s.d)))
            var scores = Machine.buffer(nq * n, Float.nan), ids = Machine.buffer(nq * n, Int64(-2))
            var p = csae_search_default_params()
            p.n = n
            p.query_k = queryK
            p.num_threads = Int32(input.below(3))
            var found: Int64 = -1
            if checkStatus(csae_index_search_dense(ix, x, nq, s.d, &p, &scores, &ids, Int64(ids.count), &found),
                           "csae_index_search_dense") {
                checkIDs(ix, ids, Int(nq * n), found: found, n: n)
            }
        }

        func checkIDs(_ ix: OpaquePointer?, _ ids: [Int64], _ written: Int, found: Int64, n: Int64) {
            var count: Int64 = 0
            guard csae_index_get_info(ix, &count, nil, nil, nil, nil) == 0 else { return }
            invariant(found >= 0 && found <= min(n, count), "search reported \(found) results of n \(n), \(count) items")
            invariant(ids[..<written].enumerated().allSatisfy { slot, id in
                Int64(slot) % n < found ? id >= 0 && id < count : id == -1
            }, "search returned an id outside 0..<\(count), or no padding past \(found) results")
        }

        mutating func load() {
            if input.byte() & 1 == 0 {
                let slot = input.below(2)
                var out: OpaquePointer? = nil
                if checkStatus(csae_model_load(Scratch.output, Int64(input.below(4)), &out), "csae_model_load") {
                    csae_model_free(models[slot])
                    models[slot] = out
                }
            } else {
                let m = model()
                let slot = input.below(2)
                var out: OpaquePointer? = nil
                if checkStatus(csae_index_load(Scratch.output, m, &out), "csae_index_load") {
                    csae_index_free(indexes[slot])
                    indexes[slot] = out
                }
            }
        }

        mutating func finish() {
            for m in models { csae_model_free(m) }
            for ix in indexes { csae_index_free(ix) }
        }
    }

    static func run(_ data: UnsafePointer<UInt8>?, _ size: Int) {
        var machine = Machine(input: ByteReader(data, size))
        _ = csae_set_num_threads(1)
        var executed = 0
        while !machine.input.isAtEnd && executed < maxInstructions {
            machine.step()
            executed += 1
        }
        machine.finish()
        _ = unlink(Scratch.output)
    }
}

/// State of the training progress callback (a C function pointer cannot capture).
enum TrainCallback {
    nonisolated(unsafe) static var model: OpaquePointer? = nil
    nonisolated(unsafe) static var newK: Int64 = 0
    nonisolated(unsafe) static var cancelAt: Int64 = 0
}
