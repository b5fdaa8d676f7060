import Testing
@testable import CompresSAE

#if canImport(Glibc)
import Glibc
#endif

@Suite("Checksum")
struct ChecksumTests {
    /// Reference values of XXH64 (seed 0) from the xxHash library.
    @Test("XXH64 matches the reference on every tail length and when fed in pieces")
    func vectors() {
        let cases: [([UInt8], String)] = [
            ([], "ef46db3751d8e999"),
            (Array("a".utf8), "d24ec4f1a98c6e5b"),
            (Array("abc".utf8), "44bc2cf5ad770999"),
            (Array(repeating: Array(0...255), count: 3).flatMap { $0 }, "8e03c838c596036f"),
            (Array(repeating: UInt8(ascii: "x"), count: 31), "60dd0d01083b99f0"),
            (Array(repeating: UInt8(ascii: "y"), count: 32), "64da1f1d3495ce66"),
            (Array(repeating: UInt8(ascii: "z"), count: 33), "c5241253c64e0268"),
            (Array(String(repeating: "0123456789", count: 7).utf8), "4916a0f3f0e1c781"),
        ]
        for (bytes, expected) in cases {
            #expect(bytes.withUnsafeBytes { XXH64.hex(XXH64.hash($0)) } == expected, "\(bytes.count) bytes")
            // The same bytes in uneven pieces.
            for piece in [1, 3, 7, 13, 40] {
                var hasher = XXH64()
                var start = 0
                while start < bytes.count {
                    let end = min(start + piece, bytes.count)
                    bytes[start..<end].withUnsafeBytes { hasher.update($0) }
                    start = end
                }
                #expect(XXH64.hex(hasher.finalize()) == expected, "\(bytes.count) bytes in pieces of \(piece)")
            }
        }
    }
}

@Suite("JSON")
struct JSONTests {
    @Test("many keys parse in linear time; a duplicate among them is found")
    func manyKeys() throws {
        // 100,000 keys: the former pairwise duplicate check made ~5e9 string comparisons.
        let n = 100_000
        var text = "{"
        for i in 0..<n { text += (i > 0 ? "," : "") + "\"key\(i)\":\(i)" }
        let clock = ContinuousClock()
        let start = clock.now
        let value = try JSONParser.parse(Array((text + "}").utf8))
        let elapsed = clock.now - start
        guard case .object(let members) = value else { Issue.record("not an object"); return }
        #expect(members.count == n)
        // Generous: the linear parse takes well under a second even unoptimised.
        #expect(elapsed < .seconds(20), "\(elapsed)")
        let duplicate = #expect(throws: CompresSAEError.self) {
            try JSONParser.parse(Array((text + ",\"key77\":1}").utf8))
        }
        #expect(duplicate?.message.contains("duplicate key \"key77\"") == true)
    }

    @Test("numbers follow the grammar and are bounded; nesting and value count are bounded")
    func limits() throws {
        for good in ["0", "-0", "12", "1.5", "-2e3", "1E+2", "0.25e-1"] {
            #expect(throws: Never.self) { try JSONParser.parse(Array(good.utf8)) }
        }
        for bad in ["01", "1.", ".5", "1e", "+1", "--1", "1e400", "0x10", "1.2.3", "-", String(repeating: "9", count: 65)] {
            #expect(throws: CompresSAEError.self, "\(bad)") { try JSONParser.parse(Array(bad.utf8)) }
        }
        #expect(throws: CompresSAEError.self) {
            try JSONParser.parse(Array((String(repeating: "[", count: 100) + String(repeating: "]", count: 100)).utf8))
        }
        let many = "[" + Array(repeating: "0", count: JSONParser.maxValues + 1).joined(separator: ",") + "]"
        let error = #expect(throws: CompresSAEError.self) { try JSONParser.parse(Array(many.utf8)) }
        #expect(error?.message.contains("values") == true)
    }
}

/// An 8-byte length, a header and data: a safetensors file to try the loaders with.
func hostileFile(_ header: String, data: [UInt8] = []) -> [UInt8] {
    safetensorsBytes(header: header, data: data)
}

@Suite("Hostile files")
struct HostileFileTests {
    /// Both loaders refuse `bytes` with an error of `kind` whose message
    /// holds `fragment` (`indexFragment` for the index loader, if given).
    func expectRefused(_ bytes: [UInt8], _ fragment: String, indexFragment: String? = nil,
                       kind: CompresSAEError.Kind = .format,
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        try writeBytes(bytes, to: dir.file("f.safetensors"))
        let model = try CompresSAEModel(inputDim: 4, latentDim: 8, k: 2)
        let loaders: [(() throws -> Void, String)] = [
            ({ _ = try CompresSAEModel.load(from: dir.file("f.safetensors"), k: 2) }, fragment),
            ({ _ = try SparseIndex.load(from: dir.file("f.safetensors"), model: model) }, indexFragment ?? fragment),
        ]
        for (load, fragment) in loaders {
            let error = #expect(throws: CompresSAEError.self, sourceLocation: sourceLocation) { try load() }
            #expect(error?.kind == kind, "\(error?.kind as Any): \(error?.message ?? "")", sourceLocation: sourceLocation)
            #expect(error?.message.contains(fragment) == true, "\(error?.message ?? "")", sourceLocation: sourceLocation)
        }
    }

    @Test("a shape whose byte size overflows is a format error (issue 12, case 4)")
    func overflowingShape() throws {
        let header = "{\"encoder_w\":{\"dtype\":\"F32\",\"shape\":[1099511627776,2097152],\"data_offsets\":[0,16]}}"
        try expectRefused(hostileFile(header, data: .init(repeating: 0, count: 16)), "too large")
        let huge = "{\"encoder_w\":{\"dtype\":\"F32\",\"shape\":[4,8],\"data_offsets\":[0,100000000000000000000]}}"
        try expectRefused(hostileFile(huge), "data_offsets")
    }

    @Test("overlapping, gapped or trailing tensor bytes are refused (issue 12, case 11)")
    func tiling() throws {
        let overlap = "{\"encoder_w\":{\"dtype\":\"F32\",\"shape\":[4,8],\"data_offsets\":[0,128]},\"encoder_b\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[0,32]},\"decoder_w\":{\"dtype\":\"F32\",\"shape\":[8,4],\"data_offsets\":[0,128]}}"
        try expectRefused(hostileFile(overlap, data: .init(repeating: 0, count: 128)), "overlaps")
        let gap = "{\"encoder_w\":{\"dtype\":\"F32\",\"shape\":[4,8],\"data_offsets\":[0,128]},\"encoder_b\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[136,168]},\"decoder_w\":{\"dtype\":\"F32\",\"shape\":[8,4],\"data_offsets\":[168,296]}}"
        try expectRefused(hostileFile(gap, data: .init(repeating: 0, count: 296)), "belong to no tensor")
        let trailing = "{\"encoder_w\":{\"dtype\":\"F32\",\"shape\":[4,8],\"data_offsets\":[0,128]},\"encoder_b\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[128,160]},\"decoder_w\":{\"dtype\":\"F32\",\"shape\":[8,4],\"data_offsets\":[160,288]}}"
        try expectRefused(hostileFile(trailing, data: .init(repeating: 0, count: 4096)), "after its last tensor")
    }

    @Test("a model of latent dimension 0 with an explicit k is a format error (issue 12, case 3)")
    func degenerateShapes() throws {
        for (d, h) in [(4, 0), (0, 8), (0, 0)] {
            let header = "{\"encoder_w\":{\"dtype\":\"F32\",\"shape\":[\(d),\(h)],\"data_offsets\":[0,0]},\"encoder_b\":{\"dtype\":\"F32\",\"shape\":[\(h)],\"data_offsets\":[0,0]},\"decoder_w\":{\"dtype\":\"F32\",\"shape\":[\(h),\(d)],\"data_offsets\":[0,0]}}"
            let dir = TemporaryDirectory()
            defer { dir.cleanup() }
            try writeBytes(hostileFile(header), to: dir.file("m.safetensors"))
            for k in [1, 5] {
                let error = #expect(throws: CompresSAEError.self) { try CompresSAEModel.load(from: dir.file("m.safetensors"), k: k) }
                #expect(error?.kind == .format, "\(d)x\(h): \(error?.message ?? "")")
            }
        }
    }

    @Test("a header of 60,000 keys is refused or read in linear time (issue 12, case 5)")
    func manyKeysHeader() throws {
        var header = "{\"__metadata__\":{"
        for i in 0..<60_000 { header += (i > 0 ? "," : "") + "\"k\(i)\":\"v\"" }
        header += "}}"
        let clock = ContinuousClock()
        let start = clock.now
        try expectRefused(hostileFile(header), "no 2-D tensor \"encoder_w\"", indexFragment: "not a compressae index")
        #expect(clock.now - start < .seconds(20))
    }

    @Test("FIFOs, directories and devices are refused without blocking (issue 12, case 14)")
    func notRegular() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        #expect(mkfifo(dir.file("fifo"), 0o600) == 0)
        let model = try CompresSAEModel(inputDim: 4, latentDim: 8, k: 2)
        for path in [dir.file("fifo"), dir.path, "/dev/zero", "/dev/null"] {
            let a = #expect(throws: CompresSAEError.self) { try CompresSAEModel.load(from: path) }
            #expect(a?.kind == .io && a?.message.contains("not a regular file") == true, "\(path): \(a?.message ?? "")")
            let b = #expect(throws: CompresSAEError.self) { try SparseIndex.load(from: path, model: model) }
            #expect(b?.kind == .io, "\(path)")
        }
    }

    @Test("a huge sparse file is refused from its header, without reading it")
    func hugeSparseFile() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let model = try CompresSAEModel(inputDim: 4, latentDim: 8, k: 2)
        try model.save(to: dir.file("m.safetensors"))
        // 1 TB of holes after a valid model.
        #expect(truncate(dir.file("m.safetensors"), 1 << 40) == 0)
        let clock = ContinuousClock()
        let start = clock.now
        let error = #expect(throws: CompresSAEError.self) { try CompresSAEModel.load(from: dir.file("m.safetensors")) }
        #expect(error?.message.contains("after its last tensor") == true, "\(error?.message ?? "")")
        #expect(clock.now - start < .seconds(5))
    }

    @Test("header length beyond the file or the limit is refused before any allocation")
    func headerLength() throws {
        var bytes = hostileFile("{}")
        withUnsafeBytes(of: UInt64(Safetensors.maxHeaderBytes + 1).littleEndian) { for i in 0..<8 { bytes[i] = $0[i] } }
        try expectRefused(bytes, "header length")
        withUnsafeBytes(of: UInt64.max.littleEndian) { for i in 0..<8 { bytes[i] = $0[i] } }
        try expectRefused(bytes, "header length")
    }

    /// Crash and wrong-answer inputs found by the fuzz harnesses (whose index
    /// harness loads against the 8 -> 32, k 4, seed 11, tied model).
    @Test("fuzz inputs in Tests/Fixtures/hostile are refused")
    func fixtures() throws {
        let model = try CompresSAEModel(inputDim: 8, latentDim: 32, k: 4, seed: 11, initialization: .tied)
        guard let dir = opendir(Fixtures.path("hostile")) else { return }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            guard !name.hasPrefix(".") else { continue }
            let path = Fixtures.path("hostile/" + name)
            #expect(throws: CompresSAEError.self, "\(name)") { _ = try CompresSAEModel.load(from: path, k: 2) }
            #expect(throws: CompresSAEError.self, "\(name)") { _ = try CompresSAEModel.load(from: path) }
            #expect(throws: CompresSAEError.self, "\(name)") { _ = try SparseIndex.load(from: path, model: model) }
        }
    }
}
