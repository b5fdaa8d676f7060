// examples/swift/main.swift -- the compressae Swift API end to end.
//
//   swift run -c release compressae-swift-example [path/to/embeddings_f16.npy]
//
// (run from the repository root; scripts/test runs it). Loads the embedded
// WordNet / MiniLM slice (float16 .npy), trains a small model, encodes and
// decodes held-out rows, saves and reloads, searches an index of codes, and
// shows how errors are thrown.
// Exits non-zero on any failure.
import CompresSAE

#if canImport(Glibc)
import Glibc
#endif

var failures = 0

@MainActor func expect(_ condition: Bool, _ what: String) {
    if !condition {
        print("FAIL: \(what)")
        failures += 1
    }
}

/// Reads a C-ordered little-endian float16 2-D .npy into float32.
func loadNpyFloat16(_ path: String) -> (data: [Float], rows: Int, cols: Int)? {
    guard let file = fopen(path, "rb") else {
        print("cannot open \(path)")
        return nil
    }
    defer { fclose(file) }
    var pre = [UInt8](repeating: 0, count: 10)
    guard fread(&pre, 1, 10, file) == 10, pre[0] == 0x93, Array(pre[1..<6]) == Array("NUMPY".utf8) else {
        print("\(path): not a .npy file")
        return nil
    }
    var headerLen = Int(pre[8]) | Int(pre[9]) << 8
    if pre[6] >= 2 {
        var extra = [UInt8](repeating: 0, count: 2)
        guard fread(&extra, 1, 2, file) == 2 else { return nil }
        headerLen |= Int(extra[0]) << 16 | Int(extra[1]) << 24
    }
    var headerBytes = [UInt8](repeating: 0, count: headerLen)
    guard fread(&headerBytes, 1, headerLen, file) == headerLen else { return nil }
    let header = String(decoding: headerBytes, as: UTF8.self)
    guard header.contains("'<f2'"), header.contains("'fortran_order': False"),
          let open = header.firstIndex(of: "("), let close = header.firstIndex(of: ")") else {
        print("\(path): expected a C-ordered '<f2' array, header \(header)")
        return nil
    }
    let dims = header[header.index(after: open)..<close].split(separator: ",").compactMap {
        Int($0.trimmingCharacters(in: " "))
    }
    guard dims.count == 2, dims[0] > 0, dims[1] > 0 else {
        print("\(path): expected a 2-D array, header \(header)")
        return nil
    }
    let count = dims[0] * dims[1]
    var raw = [UInt16](repeating: 0, count: count)
    guard fread(&raw, 2, count, file) == count else {
        print("\(path): short read")
        return nil
    }
    // .npy '<f2' is little-endian, as is every platform this example runs on.
    let data = raw.map { Float(Float16(bitPattern: UInt16(littleEndian: $0))) }
    return (data, dims[0], dims[1])
}

extension Substring {
    func trimmingCharacters(in set: Character) -> Substring {
        var s = self
        while s.first == set { s.removeFirst() }
        while s.last == set { s.removeLast() }
        return s
    }
}

func meanCosine(_ a: [Float], _ b: [Float], rows: Int, dim: Int) -> Double {
    var total = 0.0
    for r in 0..<rows {
        var dot = 0.0, na = 0.0, nb = 0.0
        for c in 0..<dim {
            let x = Double(a[r * dim + c]), y = Double(b[r * dim + c])
            dot += x * y
            na += x * x
            nb += y * y
        }
        total += dot / (na * nb).squareRoot()
    }
    return total / Double(rows)
}

let arguments = CommandLine.arguments
let dataPath = arguments.count > 1 ? arguments[1] : "python/compressae/data/wordnet10k_minilm384_f16.npy"
guard let (x, n, d) = loadNpyFloat16(dataPath) else { exit(1) }
print("data: \(dataPath), \(n) x \(d)")

let heldOut = 500
let nTrain = n - heldOut
let train = Array(x[0..<(nTrain * d)])
let test = Array(x[(nTrain * d)...])

do {
    // 1. Create: d -> h = 1024 latents, k = 16 nonzeros per code.
    let model = try CompresSAEModel(inputDim: d, latentDim: 1024, k: 16, seed: 42)
    let before = meanCosine(test, try model.decode(try model.encode(test, rows: heldOut)), rows: heldOut, dim: d)

    // 2. Train with Adam; the closure sees every step and may stop training.
    var options = TrainingOptions()
    options.batchSize = 1024
    options.epochs = 2
    options.learningRate = 1e-3
    options.seed = 7
    let total = options.totalSteps(rows: nTrain)
    var calls = 0
    let history = try model.train(train, rows: nTrain, options: options) { step, total, loss in
        calls += 1
        if step % 5 == 0 || step == total { print("  step \(step) / \(total)  loss \(loss)") }
        return true
    }
    expect(history.count == total && calls == total, "one loss and one callback per step")
    expect(history.last! < history.first!, "training lowers the loss")
    expect(model.lossHistory == history, "lossHistory holds the last run")

    // 3. Encode: SparseCodes holds rows * k indices and values, by decreasing |value|.
    let codes = try model.encode(test, rows: heldOut)
    expect(codes.rows == heldOut && codes.k == 16 && codes.dim == 1024, "code shape")
    expect(codes.indices.allSatisfy { $0 >= 0 && $0 < 1024 }, "indices in [0, h)")
    print("row 0 code: " + (0..<4).map { "(\(codes.indices[$0]), \(codes.values[$0]))" }.joined(separator: " ") + " ...")

    // 4. Decode: each row is a sum of k decoder rows.
    let reconstructed = try model.decode(codes)
    let after = meanCosine(test, reconstructed, rows: heldOut, dim: d)
    print("mean reconstruction cosine on \(heldOut) held-out rows: \(before) at init -> \(after) after training")
    expect(after > before, "training improves the reconstruction")

    // 5. Save (atomic safetensors) and load: identical codes.
    let path = "/tmp/compressae_swift_example_\(getpid()).safetensors"
    try model.save(to: path)
    defer { unlink(path) }
    let loaded = try CompresSAEModel.load(from: path)
    expect(loaded.inputDim == d && loaded.latentDim == 1024 && loaded.k == 16, "loaded shape")
    expect(try loaded.encode(test, rows: heldOut) == codes, "loaded model gives identical codes")
    print("saved and reloaded \(path): identical codes")

    // 6. Retrieval: a sparse-mode index (cosine between codes, inverted index)
    //    over the held-out codes, searched with the first 5 of them.
    let index = try SparseIndex(model: model, mode: .sparse, storage: .standard)
    try codes.indices.withUnsafeBufferPointer { ib in
        try codes.values.withUnsafeBufferPointer { vb in
            try index.add(indices: ib, values: vb, rows: heldOut, k: codes.k)
        }
    }
    let queries = 5, top = 10
    var scores = [Float](repeating: 0, count: queries * top)
    var ids = [Int64](repeating: 0, count: queries * top)
    try Array(codes.indices[0..<(queries * 16)]).withUnsafeBufferPointer { ib in
        try Array(codes.values[0..<(queries * 16)]).withUnsafeBufferPointer { vb in
            try scores.withUnsafeMutableBufferPointer { sb in
                try ids.withUnsafeMutableBufferPointer { idb in
                    _ = try index.search(indices: ib, values: vb, rows: queries, k: 16, n: top, scores: sb, ids: idb)
                }
            }
        }
    }
    expect(index.count == heldOut, "the index holds every code")
    expect((0..<queries).allSatisfy { ids[$0 * top] == Int64($0) }, "each item's own code ranks it first")
    print("sparse index of \(index.count) codes (\(index.nbytes) bytes): query 0 -> ids \(ids[0..<3].map { $0 }), "
          + "cosines \(scores[0..<3].map { $0 })")

    // 7. Errors are thrown as CompresSAEError with a kind and a message.
    do {
        _ = try CompresSAEModel(inputDim: d, latentDim: 1024, k: 0)
        expect(false, "k = 0 must throw")
    } catch let error as CompresSAEError {
        print("k = 0 -> \(error.kind): \(error.message)")
        expect(error.kind == .invalidArgument, "k = 0 is an invalid argument")
    }
    do {
        _ = try CompresSAEModel.load(from: "/nonexistent/dir/model.safetensors")
        expect(false, "loading a missing file must throw")
    } catch let error as CompresSAEError {
        print("missing file -> \(error.kind): \(error.message)")
        expect(error.kind == .io, "a missing file is an I/O error")
    }
} catch {
    print("FAIL: unexpected error: \(error)")
    failures += 1
}

if failures > 0 {
    print("\(failures) check(s) failed")
    exit(1)
}
print("OK")
