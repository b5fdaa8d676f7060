import CompresSAE
#if canImport(Glibc)
import Glibc
#endif

/// Seed corpora: files written by the library itself (models of several
/// shapes, indexes in every mode and storage) and short C-API programs.
enum Seeds {
    static func write(_ target: Target, into dir: String) {
        mkdir(dir, 0o755)
        switch target {
        case .model: writeModels(dir)
        case .index: writeIndexes(dir)
        case .capi: writePrograms(dir)
        }
    }

    static func check(_ status: Int32, _ what: String) {
        guard status == 0 else { fatalError("seed \(what): \(String(cString: csae_last_error()))") }
    }

    static func writeModels(_ dir: String) {
        let shapes: [(Int64, Int64, Int64, Int32)] = [(1, 1, 1, 0), (3, 8, 2, 1), (8, 16, 4, 0), (5, 20, 5, 1), (2, 4, 4, 0)]
        for (i, (d, h, k, initialization)) in shapes.enumerated() {
            var m: OpaquePointer? = nil
            check(csae_model_create(d, h, k, UInt64(i), initialization, &m), "create model")
            check(csae_model_save(m, "\(dir)/model-\(d)x\(h)-k\(k).safetensors"), "save model")
            csae_model_free(m)
        }
    }

    static func writeIndexes(_ dir: String) {
        let model = IndexLoaderHarness.model
        let d = IndexLoaderHarness.inputDim
        for mode in Int32(0)...1 {
            for storage in Int32(0)...1 {
                for count in [0, 1, 6] {
                    var ix: OpaquePointer? = nil
                    check(csae_index_create(model, mode, storage, &ix), "create index")
                    if count > 0 {
                        check(csae_index_add_dense(ix, denseRows(count, Int(d), salt: count), Int64(count), d, 0), "add")
                    }
                    check(csae_index_save(ix, "\(dir)/index-m\(mode)-s\(storage)-n\(count).safetensors"), "save index")
                    csae_index_free(ix)
                }
            }
        }
    }

    /// Programs in the harness's instruction set (see CAPIHarness.Machine.step).
    static func writePrograms(_ dir: String) {
        let programs: [String: [UInt8]] = [
            // create model 0 (d 8, h 32, k 4, seed 1, tied); encode; decode; refit
            "encode": [0, 0, 7, 31, 4, 1, 1, 4, 0, 1, 3, 4, 5, 0, 2, 4, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
                       6, 0, 1, 3, 3, 1, 2, 3],
            // create model; index 0 in both modes; add dense rows; search; save; load
            "index": [0, 0, 7, 31, 4, 1, 1, 12, 0, 0, 0, 0, 15, 0, 3, 7, 31, 3, 15, 0, 3, 7, 31, 2,
                      17, 0, 7, 31, 2, 5, 0, 1, 16, 0, 7, 31, 1, 4, 5, 1, 2, 3, 4, 5,
                      18, 1, 0, 19, 1, 0, 1, 17, 1, 7, 31, 1, 3, 0, 0,
                      12, 0, 1, 1, 0, 15, 1, 3, 7, 31, 17, 1, 7, 31, 2, 4, 0, 1],
            // create model; train a little with a progress callback that sets k
            "train": [0, 0, 7, 31, 2, 1, 1, 9, 0, 0, 20, 0, 1, 8, 1, 0, 1, 1, 4, 1, 3, 1, 3, 10, 0, 5],
            // model save/load round trip, set_k, free, use after free
            "lifecycle": [0, 1, 3, 15, 3, 0, 0, 18, 0, 1, 19, 0, 0, 0, 3, 0, 5, 2, 1, 20, 1, 1, 4, 1, 0, 0, 21, 9, 9, 9],
        ]
        for (name, bytes) in programs {
            bytes.withUnsafeBufferPointer { Scratch.write($0, to: "\(dir)/program-\(name)") }
        }
    }
}
