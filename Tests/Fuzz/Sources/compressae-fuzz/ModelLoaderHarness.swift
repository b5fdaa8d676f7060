import CompresSAE

/// Harness "model": the input is a model file. Loading it must either fail
/// with a status and a message or give a model that works: it encodes,
/// decodes, and saves to a file that loads back to the same weights.
enum ModelLoaderHarness {
    /// Largest model the harness exercises after loading (d x h floats); the
    /// input size already bounds an honest loader.
    static let maxElements: Int64 = 1 << 20

    static func run(_ data: UnsafeBufferPointer<UInt8>) {
        Scratch.write(data, to: Scratch.input)
        // k = 0 takes k from the file; explicit k values reach the checks a
        // caller's k goes through (including a k the file's shape cannot hold).
        let lastByte = data.isEmpty ? 0 : Int64(data[data.count - 1])
        for k in [Int64(0), 1, lastByte % 5 + 2] {
            var model: OpaquePointer? = nil
            let status = csae_model_load(Scratch.input, k, &model)
            if checkStatus(status, "csae_model_load(k: \(k))") {
                invariant(model != nil, "csae_model_load succeeded without a handle")
                exercise(model, requestedK: k)
                csae_model_free(model)
            } else {
                invariant(model == nil, "csae_model_load failed but set a handle")
            }
        }
    }

    static func exercise(_ model: OpaquePointer?, requestedK: Int64) {
        guard let (d, h, k) = shape(model) else { fatalError("a loaded model has no shape") }
        invariant(d >= 1 && h >= 1 && k >= 1 && k <= h, "loaded model has shape d \(d) h \(h) k \(k)")
        if requestedK != 0 { invariant(k == requestedK, "loaded with k \(requestedK) but has k \(k)") }
        guard d * h <= maxElements else { return }
        let n = 2
        let x = denseRows(n, Int(d), salt: Int(h))
        var indices = [Int32](repeating: -1, count: n * Int(k))
        var values = [Float](repeating: .nan, count: n * Int(k))
        if checkStatus(csae_model_encode(model, x, Int64(n), d, nil, &indices, &values, Int64(indices.count), nil),
                       "csae_model_encode") {
            invariant(indices.allSatisfy { $0 >= 0 && Int64($0) < h }, "encode wrote a latent index out of range")
            invariant(values.allSatisfy { $0.isFinite }, "encode wrote a non-finite value")
            var out = [Float](repeating: 0, count: n * Int(d))
            checkStatus(csae_model_decode(model, indices, values, Int64(n), k, 0, &out), "csae_model_decode")
            var p = csae_encode_default_params()
            p.k = k
            checkStatus(csae_model_refit(model, x, Int64(n), d, &p, &indices, &values, Int64(indices.count), nil),
                        "csae_model_refit")
        }
        // What loads must save, and the saved file must load to the same model.
        guard checkStatus(csae_model_save(model, Scratch.output), "csae_model_save") else {
            fatalError("a loaded model cannot be saved: \(String(cString: csae_last_error()))")
        }
        var again: OpaquePointer? = nil
        guard checkStatus(csae_model_load(Scratch.output, 0, &again), "csae_model_load(saved copy)") else {
            fatalError("the saved copy of a loaded model does not load: \(String(cString: csae_last_error()))")
        }
        defer { csae_model_free(again) }
        guard let (d2, h2, k2) = shape(again) else { fatalError("reloaded model has no shape") }
        invariant(d2 == d && h2 == h && k2 == k, "reloaded shape (\(d2), \(h2), \(k2)) differs from (\(d), \(h), \(k))")
        invariant(weights(model, d, h) == weights(again, d, h), "reloaded weights differ")
    }

    static func weights(_ model: OpaquePointer?, _ d: Int64, _ h: Int64) -> [UInt32] {
        var ew = [Float](repeating: 0, count: Int(d * h)), eb = [Float](repeating: 0, count: Int(h))
        var dw = [Float](repeating: 0, count: Int(h * d))
        guard checkStatus(csae_model_copy_weights(model, &ew, d * h, &eb, h, &dw, h * d), "csae_model_copy_weights") else {
            fatalError("copy_weights failed on a live model")
        }
        return (ew + eb + dw).map(\.bitPattern)
    }
}
