import Testing
@testable import CompresSAE

#if canImport(Glibc)
import Glibc
#endif

/// A fresh temporary directory, removed with its content by `cleanup`.
struct TemporaryDirectory {
    let path: String

    init() {
        var template = Array("/tmp/compressae-test-XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }

    func file(_ name: String) -> String { path + "/" + name }

    func entries() -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    func cleanup() {
        for name in entries() { unlink(file(name)) }
        rmdir(path)
    }
}

func writeBytes(_ bytes: [UInt8], to path: String) throws {
    try FileIO.writeAtomically(to: path) { emit in try bytes.withUnsafeBytes { try emit($0) } }
}

func readBytes(_ path: String) throws -> [UInt8] {
    let reader = try FileIO.Reader(path: path)
    var bytes = [UInt8](repeating: 0, count: reader.size)
    try bytes.withUnsafeMutableBytes { try reader.read(into: $0.baseAddress!, count: reader.size, at: 0) }
    return bytes
}

/// A safetensors file from a JSON header and a data section.
func safetensorsBytes(header: String, data: [UInt8]) -> [UInt8] {
    let h = Array(header.utf8)
    return withUnsafeBytes(of: UInt64(h.count).littleEndian) { Array($0) } + h + data
}

@Suite("Model files")
struct PersistenceTests {
    @Test("save, load and encode give identical codes and weights")
    func roundTrip() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let (x, d) = try Fixtures.realEmbeddings(rows: 300)
        let model = try CompresSAEModel(inputDim: d, latentDim: 512, k: 12, seed: 9)
        var options = TrainingOptions.reference
        options.batchSize = 100
        try model.train(x, rows: 300, options: options)
        try model.save(to: dir.file("m.safetensors"))
        #expect(dir.entries() == ["m.safetensors"])  // no temporary file left
        let loaded = try CompresSAEModel.load(from: dir.file("m.safetensors"))
        #expect(loaded.k == 12)
        #expect(loaded.encoderWeights == model.encoderWeights)
        #expect(loaded.encoderBiasWeights == model.encoderBiasWeights)
        #expect(loaded.decoderWeights == model.decoderWeights)
        let same = try loaded.encode(x, rows: 300) == model.encode(x, rows: 300)
        #expect(same)
        #expect(try CompresSAEModel.load(from: dir.file("m.safetensors"), k: 5).k == 5)
    }

    @Test("a reference state dict without metadata loads when k is given")
    func referenceStateDict() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let golden = try Fixtures.Golden("small")
        // The golden file holds the reference's tensors under the state-dict names.
        let path = Fixtures.path("golden/small.safetensors")
        let model = try CompresSAEModel.load(from: path, k: golden.k)
        #expect(model.encoderWeights == (try golden.tensor("encoder_w")))
        let error = #expect(throws: CompresSAEError.self) { try CompresSAEModel.load(from: path) }
        #expect(error?.message.contains("pass k") == true)
    }

    @Test("damaged and foreign files are refused with a message")
    func refused() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let model = try CompresSAEModel(inputDim: 4, latentDim: 8, k: 2)
        try model.save(to: dir.file("good.safetensors"))
        let good = try readBytes(dir.file("good.safetensors"))

        func expectRefused(_ bytes: [UInt8], _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            try writeBytes(bytes, to: dir.file("bad.safetensors"))
            let error = #expect(throws: CompresSAEError.self, sourceLocation: sourceLocation) {
                try CompresSAEModel.load(from: dir.file("bad.safetensors"))
            }
            #expect(error?.message.contains(fragment) == true, "\(error?.message ?? "")", sourceLocation: sourceLocation)
        }
        try expectRefused(Array(good.prefix(good.count - 10)), "outside the data section")
        try expectRefused(Array(good.prefix(5)), "shorter than")
        var oversized = good
        withUnsafeBytes(of: UInt64(1 << 40).littleEndian) { for i in 0..<8 { oversized[i] = $0[i] } }
        try expectRefused(oversized, "header length")
        var beyond = good
        withUnsafeBytes(of: UInt64(good.count).littleEndian) { for i in 0..<8 { beyond[i] = $0[i] } }
        try expectRefused(beyond, "exceed the file size")
        try expectRefused(safetensorsBytes(header: "{not json", data: []), "invalid JSON")
        let f64 = "{\"__metadata__\":{\"k\":\"2\"},\"encoder_w\":{\"dtype\":\"F64\",\"shape\":[4,8],\"data_offsets\":[0,256]},\"encoder_b\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[256,288]},\"decoder_w\":{\"dtype\":\"F32\",\"shape\":[8,4],\"data_offsets\":[288,416]}}"
        try expectRefused(safetensorsBytes(header: f64, data: .init(repeating: 0, count: 416)), "dtype F64")
        let wrongShape = "{\"__metadata__\":{\"k\":\"2\"},\"encoder_w\":{\"dtype\":\"F32\",\"shape\":[4,8],\"data_offsets\":[0,128]},\"encoder_b\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[128,160]},\"decoder_w\":{\"dtype\":\"F32\",\"shape\":[8,5],\"data_offsets\":[160,320]}}"
        try expectRefused(safetensorsBytes(header: wrongShape, data: .init(repeating: 0, count: 320)), "shape [8, 5]")
        var nan = good
        let nanBits = withUnsafeBytes(of: Float.nan.bitPattern.littleEndian) { Array($0) }
        for i in 0..<4 { nan[nan.count - 4 + i] = nanBits[i] }
        // A saved model carries a checksum: any changed byte is damage.
        try expectRefused(nan, "match its checksum")
        var flipped = good
        flipped[flipped.count - 100] ^= 0x01
        try expectRefused(flipped, "match its checksum")
        // The checksum covers the header: a changed k in the metadata is damage too.
        let kText = Array("\"k\":\"2\"".utf8)
        var otherK = good
        if let at = (0..<(good.count - kText.count)).first(where: { good[$0..<($0 + kText.count)].elementsEqual(kText) }) {
            otherK[at + kText.count - 2] = UInt8(ascii: "1")
        }
        #expect(otherK != good)
        try expectRefused(otherK, "match its checksum")
        // A file without one (as torch writes it) is still checked for finite weights.
        let plain = "{\"__metadata__\":{\"k\":\"2\"},\"encoder_w\":{\"dtype\":\"F32\",\"shape\":[4,8],\"data_offsets\":[0,128]},\"encoder_b\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[128,160]},\"decoder_w\":{\"dtype\":\"F32\",\"shape\":[8,4],\"data_offsets\":[160,288]}}"
        try expectRefused(safetensorsBytes(header: plain, data: .init(repeating: 0, count: 284) + nanBits), "non-finite")
        let missing = "{\"encoder_w\":{\"dtype\":\"F32\",\"shape\":[4,8],\"data_offsets\":[0,128]}}"
        try expectRefused(safetensorsBytes(header: missing, data: .init(repeating: 0, count: 128)), "encoder_b")
        let error = #expect(throws: CompresSAEError.self) { try CompresSAEModel.load(from: dir.file("absent")) }
        #expect(error?.kind == .io)
    }

    @Test("a failed save leaves nothing behind")
    func failedSave() throws {
        let model = try CompresSAEModel(inputDim: 4, latentDim: 8, k: 2)
        let error = #expect(throws: CompresSAEError.self) { try model.save(to: "/nonexistent-dir/m.safetensors") }
        #expect(error?.kind == .io)
    }
}

@Suite("Bad input")
struct BadInputTests {
    @Test("shapes, k and values are checked before any kernel runs")
    func refused() throws {
        #expect(throws: CompresSAEError.self) { try CompresSAEModel(inputDim: 0, latentDim: 8, k: 2) }
        #expect(throws: CompresSAEError.self) { try CompresSAEModel(inputDim: 4, latentDim: 8, k: 9) }
        #expect(throws: CompresSAEError.self) { try CompresSAEModel(inputDim: 4, latentDim: -1, k: 1) }
        let model = try CompresSAEModel(inputDim: 4, latentDim: 8, k: 2)
        let zeroRow = #expect(throws: CompresSAEError.self) {
            try model.encode([1, 2, 3, 4, 0, 0, 0, 0], rows: 2)
        }
        #expect(zeroRow?.message.contains("row 1") == true)
        let nan = #expect(throws: CompresSAEError.self) {
            try model.encode([1, 2, 3, 4, 1, .nan, 0, 0], rows: 2)
        }
        #expect(nan?.message.contains("row 1, column 1") == true)
        #expect(throws: CompresSAEError.self) { try model.encode([1, 2, .infinity, 4], rows: 1) }
        #expect(throws: CompresSAEError.self) { try model.encode([1, 2, 3], rows: 1) }
        #expect(throws: CompresSAEError.self) { try model.encode([1, 2, 3, 4], rows: 1, k: 9) }
        #expect(throws: CompresSAEError.self) { try model.encode([], rows: 0) }
        // Training needs the 4k code: 4 * 3 > 8.
        let tooBig = try CompresSAEModel(inputDim: 4, latentDim: 8, k: 3)
        let fourK = #expect(throws: CompresSAEError.self) { try tooBig.train([1, 2, 3, 4], rows: 1) }
        #expect(fourK?.message.contains("4k") == true)
        var codes = try model.encode([1, 2, 3, 4], rows: 1)
        codes.indices[0] = 8
        #expect(throws: CompresSAEError.self) { try model.decode(codes) }
    }
}

@Suite("Extreme scales")
struct ExtremeScaleTests {
    @Test("rows of tiny or huge scale encode like the same rows at unit scale")
    func scaleInvariance() throws {
        let (x, d) = try Fixtures.realEmbeddings(rows: 4)
        let model = try CompresSAEModel(inputDim: d, latentDim: 256, k: 8, seed: 2)
        let reference = try model.encode(x, rows: 4)
        for scale: Float in [1e-30, 1e-20, 1e20, 1e30] {
            let codes = try model.encode(x.map { $0 * scale }, rows: 4)
            #expect(codes.indices == reference.indices, "scale \(scale)")
            #expect(relativeError(codes.values, reference.values) < 1e-5, "scale \(scale)")
        }
    }
}

@Suite("Reference checkpoints")
struct ReferenceCheckpointTests {
    @Test("a state dict saved by safetensors.torch.save_file loads and encodes like the reference")
    func savedByTorch() throws {
        // Written by scripts/make-reference-fixture from benchmarks/reference_torch.py.
        let model = try CompresSAEModel.load(from: Fixtures.path("reference/state_dict.safetensors"), k: 4)
        #expect(model.inputDim == 16 && model.latentDim == 64 && model.k == 4)
        let outputs = try Safetensors.File(path: Fixtures.path("reference/reference_outputs.safetensors"))
        let x = try outputs.readFloat32("x", shape: [8, 16])
        let codes = try model.encode(x, rows: 8)
        #expect(relativeError(densify(codes), try outputs.readFloat32("codes", shape: [8, 64])) < 1e-5)
        #expect(relativeError(try model.decode(codes), try outputs.readFloat32("recon", shape: [8, 16])) < 1e-5)
    }
}
