import Testing
@testable import CompresSAE

/// An index file's bytes with a tensor rewritten and the file's checksum
/// recomputed, as a careful forger (or a buggy writer) would leave it: only
/// the loader's checks of meaning stand between it and the index.
func rewritten(_ path: String, tensor name: String, _ change: (inout UnsafeMutableRawBufferPointer) -> Void) throws -> [UInt8] {
    let file = try Safetensors.File(path: path)
    var bytes = try readBytes(path)
    let info = try #require(file.tensors[name])
    bytes.withUnsafeMutableBytes { all in
        var part = UnsafeMutableRawBufferPointer(rebasing: all[(file.dataStart + info.begin)..<(file.dataStart + info.end)])
        change(&part)
    }
    return resigned(bytes)
}

/// `bytes` with its checksum recomputed (the XXH64 of the file with the
/// checksum's digits read as "0").
func resigned(_ original: [UInt8]) -> [UInt8] {
    var bytes = original
    let key = Safetensors.checksumPrefix
    guard let found = (0...(bytes.count - key.count)).first(where: { bytes[$0..<($0 + key.count)].elementsEqual(key) }) else {
        return bytes
    }
    let at = found + key.count
    bytes.replaceSubrange(at..<(at + 16), with: Array(repeating: UInt8(ascii: "0"), count: 16))
    let checksum = bytes.withUnsafeBytes { XXH64.hex(XXH64.hash($0)) }
    bytes.replaceSubrange(at..<(at + 16), with: Array(checksum.utf8))
    return bytes
}

@Suite("Index file checks")
struct IndexFileTests {
    static let rows = 300

    func build(_ mode: SparseIndex.Mode, _ storage: SparseIndex.Storage, in dir: TemporaryDirectory)
        throws -> (CompresSAEModel, String) {
        let (x, d) = try Fixtures.realEmbeddings(rows: Self.rows)
        let model = try CompresSAEModel(inputDim: d, latentDim: 256, k: 8, seed: 3)
        let index = try SparseIndex(model: model, mode: mode, storage: storage)
        try x.withUnsafeBufferPointer { try index.add(dense: $0, rows: Self.rows) }
        let path = dir.file("\(mode.name)-\(storage.name).safetensors")
        try index.save(to: path)
        _ = try SparseIndex.load(from: path, model: model)  // the untouched file loads
        return (model, path)
    }

    func expectRefused(_ bytes: [UInt8], _ model: CompresSAEModel, _ fragment: String, in dir: TemporaryDirectory,
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        try writeBytes(bytes, to: dir.file("bad.safetensors"))
        let error = #expect(throws: CompresSAEError.self, sourceLocation: sourceLocation) {
            try SparseIndex.load(from: dir.file("bad.safetensors"), model: model)
        }
        #expect(error?.kind == .format, sourceLocation: sourceLocation)
        #expect(error?.message.contains(fragment) == true, "\(error?.message ?? "")", sourceLocation: sourceLocation)
    }

    @Test("posting lists that break what the writer guarantees are refused (issue 12, case 10)")
    func postings() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        for storage in [SparseIndex.Storage.standard, .compact] {
            let (model, path) = try build(.sparse, storage, in: dir)
            // Every entry pointing at item 0.
            try expectRefused(try rewritten(path, tensor: "posting_ids") { raw in
                for e in 0..<(raw.count / 4) { raw.storeBytes(of: Int32(0), toByteOffset: e * 4, as: Int32.self) }
            }, model, "not strictly ascending", in: dir)
            // One entry moved from its item to the next one (still ascending in its list).
            try expectRefused(try rewritten(path, tensor: "posting_ids") { raw in
                let ids = raw.bindMemory(to: Int32.self)
                // The last entry of the list holding the largest id: moving it
                // to another item keeps the list ascending but breaks the counts.
                if let e = ids.firstIndex(where: { Int($0) < Self.rows - 1 && !ids.contains($0 + 1) }) { ids[e] += 1 }
                else { ids[0] = ids[0] == 0 ? 1 : 0 }
            }, model, "posting lists", in: dir)
            // Values x1000: a "cosine" far above 1.
            try expectRefused(try rewritten(path, tensor: "posting_values") { raw in
                if storage == .standard {
                    let v = raw.bindMemory(to: Float.self)
                    for e in v.indices { v[e] *= 1000 }
                } else {
                    let v = raw.bindMemory(to: UInt16.self)
                    for e in v.indices { v[e] = HalfPrecision.encode(HalfPrecision.decode(v[e]) * 1000) }
                }
            }, model, "not 1", in: dir)
        }
    }

    @Test("row codes with a repeated latent or the wrong scale are refused, in both storages (issue 12, case 10)")
    func rows() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        for storage in [SparseIndex.Storage.standard, .compact] {
            let (model, path) = try build(.reconstructed, storage, in: dir)
            try expectRefused(try rewritten(path, tensor: "indices") { raw in
                if storage == .standard {
                    let ids = raw.bindMemory(to: Int32.self)
                    ids[9] = ids[8]  // row 1 repeats a latent
                } else {
                    let ids = raw.bindMemory(to: UInt16.self)
                    ids[9] = ids[8]
                }
            }, model, "appears twice", in: dir)
            try expectRefused(try rewritten(path, tensor: "values") { raw in
                if storage == .standard {
                    let v = raw.bindMemory(to: Float.self)
                    for e in 16..<24 { v[e] *= 1000 }  // row 2
                } else {
                    let v = raw.bindMemory(to: UInt16.self)
                    for e in 16..<24 { v[e] = HalfPrecision.encode(HalfPrecision.decode(v[e]) * 1000) }
                }
            }, model, "row 2 does not decode to a unit vector", in: dir)
        }
    }

    @Test("a damaged payload fails its checksum; a version 1 file is refused with a reason")
    func checksum() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let (model, path) = try build(.sparse, .standard, in: dir)
        var bytes = try readBytes(path)
        bytes[bytes.count - 5] ^= 0x10
        try expectRefused(bytes, model, "match its checksum", in: dir)
        let text = Array("\"format_version\":\"\(indexFormatVersion)\"".utf8)
        bytes = try readBytes(path)
        let at = try #require((0..<(bytes.count - text.count)).first { bytes[$0..<($0 + text.count)].elementsEqual(text) })
        bytes[at + text.count - 2] = UInt8(ascii: "1")
        // Refused for its version before its checksum is read, signed or not.
        try expectRefused(bytes, model, "version 1", in: dir)
        try expectRefused(resigned(bytes), model, "version 1", in: dir)
    }

    @Test("an index whose model trained after its items were added cannot be saved (issue 12, case 9)")
    func staleSave() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let (x, d) = try Fixtures.realEmbeddings(rows: 200)
        let model = try CompresSAEModel(inputDim: d, latentDim: 256, k: 8, seed: 4)
        let index = try SparseIndex(model: model, mode: .sparse)
        try x.withUnsafeBufferPointer { try index.add(dense: $0, rows: 200) }
        var options = TrainingOptions.reference
        options.batchSize = 200
        options.epochs = 1
        try model.train(x, rows: 200, options: options)
        let error = #expect(throws: CompresSAEError.self) { try index.save(to: dir.file("i.safetensors")) }
        #expect(error?.kind == .invalidArgument)
        #expect(error?.message.contains("trained after items were added") == true, "\(error?.message ?? "")")
        #expect(dir.entries().isEmpty)
        // An index built on the trained model saves and loads; it is refused by the untrained weights.
        let fresh = try SparseIndex(model: model, mode: .sparse)
        try x.withUnsafeBufferPointer { try fresh.add(dense: $0, rows: 200) }
        try fresh.save(to: dir.file("i.safetensors"))
        #expect(try SparseIndex.load(from: dir.file("i.safetensors"), model: model).count == 200)
        let untrained = try CompresSAEModel(inputDim: d, latentDim: 256, k: 8, seed: 4)
        #expect(throws: CompresSAEError.self) { try SparseIndex.load(from: dir.file("i.safetensors"), model: untrained) }
    }

    @Test("an empty index saves and loads")
    func empty() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let model = try CompresSAEModel(inputDim: 4, latentDim: 8, k: 2)
        for mode in [SparseIndex.Mode.sparse, .reconstructed] {
            for storage in [SparseIndex.Storage.standard, .compact] {
                try SparseIndex(model: model, mode: mode, storage: storage).save(to: dir.file("e.safetensors"))
                let loaded = try SparseIndex.load(from: dir.file("e.safetensors"), model: model)
                #expect(loaded.count == 0 && loaded.k == nil)
            }
        }
    }
}
