import Testing
import CCompresSAE
@testable import CompresSAE

/// Codes of `rows` rows with `k` distinct random latents below `h` and
/// signed values, entries ordered by decreasing |value| as the encoder orders them.
func randomCodes(rows: Int, k: Int, h: Int, seed: UInt64) -> SparseCodes {
    var rng = SplitMix(seed)
    var indices: [Int32] = [], values: [Float] = []
    for _ in 0..<rows {
        var chosen = Set<Int32>()
        while chosen.count < k { chosen.insert(Int32(rng.next() % UInt64(h))) }
        let row = chosen.sorted().map { ($0, Float(Int64(rng.next() % 20001) - 10000) / 1000) }
            .sorted { abs($0.1) > abs($1.1) || (abs($0.1) == abs($1.1) && $0.0 < $1.0) }
        indices += row.map(\.0)
        values += row.map(\.1)
    }
    return SparseCodes(rows: rows, k: k, dim: h, indices: indices, values: values)
}

struct SplitMix {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Packed codes")
struct PackedCodesTests {
    @Test("row sizes follow the documented formula")
    func sizes() throws {
        // h = 4096, k = 32: fixed width 12 bits per index (384), Elias-Fano
        // L = 7: 32 * 7 + 32 + 32 = 288 bits.
        #expect(try PackedCodes.rowBytes(dim: 4096, k: 32, bits: 8, indexCoding: .fixedWidth) == 4 + (384 + 256) / 8)
        #expect(try PackedCodes.rowBytes(dim: 4096, k: 32, bits: 8, indexCoding: .eliasFano) == 4 + (288 + 256) / 8)
        #expect(try PackedCodes.rowBytes(dim: 4096, k: 32, bits: 4) == 4 + (288 + 128) / 8)
        // k = 16: L = 8, 128 + 16 + 16 = 160 bits; k = 64: L = 6, 384 + 64 + 64 = 512 bits.
        #expect(try PackedCodes.rowBytes(dim: 4096, k: 16, bits: 8) == 4 + (160 + 128) / 8)
        #expect(try PackedCodes.rowBytes(dim: 4096, k: 64, bits: 4) == 4 + (512 + 256) / 8)
        // Dense codes: fixed width wins (k + h bits of Elias-Fano exceed k log2 h).
        #expect(PackedLayout.preferredCoding(dim: 2, k: 2) == .fixedWidth)
        #expect(try PackedCodes.rowBytes(dim: 1, k: 1, bits: 4) == 4 + 1)
        for bad in [(0, 1, 8), (4, 5, 8), (4, 2, 6), (4, 0, 4)] {
            #expect(throws: CompresSAEError.self) { try PackedCodes.rowBytes(dim: bad.0, k: bad.1, bits: bad.2) }
        }
    }

    @Test("pack and unpack keep the latents and quantise the values", arguments: [8, 4])
    func roundTrip(bits: Int) throws {
        for (h, k) in [(4096, 32), (512, 16), (7, 7), (1, 1), (100_000, 3), (65, 64)] {
            let codes = randomCodes(rows: 50, k: k, h: h, seed: UInt64(h * 31 + k))
            for coding in [PackedIndexCoding.fixedWidth, .eliasFano] {
                let packed = try codes.packed(bits: bits, indexCoding: coding)
                #expect(packed.payload.count == 50 * packed.rowBytes)
                let unpacked = try packed.unpack()
                let top = Float(ValueQuantizer.maxLevel(bits: bits))
                for i in 0..<50 {
                    let original = Dictionary(uniqueKeysWithValues: (0..<k).map { (codes.indices[i * k + $0], codes.values[i * k + $0]) })
                    let largest = original.values.map(abs).max()!
                    var previous = Float.infinity
                    for t in 0..<k {
                        let j = unpacked.indices[i * k + t], v = unpacked.values[i * k + t]
                        let was = try #require(original[j], "row \(i) gained latent \(j)")
                        #expect(abs(v - was) <= largest / top / 2 * 1.0001, "h \(h) k \(k) row \(i)")
                        #expect(abs(v) <= previous)
                        previous = abs(v)
                    }
                }
                // Packing is idempotent: the unpacked codes pack to the same bytes.
                #expect(try unpacked.packed(bits: bits, indexCoding: coding) == packed)
                let serialized = try packed.serialized()
                #expect(serialized.count == PackedCodes.headerBytes + packed.payload.count)
                #expect(try PackedCodes(serialized: serialized) == packed)
            }
        }
    }

    @Test("zero rows, negative values and bad input")
    func edges() throws {
        let codes = SparseCodes(rows: 2, k: 3, dim: 10, indices: [1, 2, 3, 9, 0, 4], values: [0, 0, 0, -2, 1, -0.5])
        let unpacked = try codes.packed(bits: 4).unpack()
        #expect(unpacked.values[0..<3].allSatisfy { $0 == 0 })
        #expect(unpacked.indices[0..<3].sorted() == [1, 2, 3])
        #expect(Array(unpacked.indices[3...]) == [9, 0, 4] && unpacked.values[3] == -2 && unpacked.values[4] == 2.0 / 7 * 4)
        for bad in [SparseCodes(rows: 1, k: 2, dim: 10, indices: [1, 1], values: [1, 2]),
                    SparseCodes(rows: 1, k: 2, dim: 10, indices: [1, 10], values: [1, 2]),
                    SparseCodes(rows: 1, k: 2, dim: 10, indices: [1, 2], values: [1, .nan])] {
            #expect(throws: CompresSAEError.self) { try bad.packed(bits: 8) }
        }
    }

    @Test("zero rows pack to the header alone, in Swift and through the C ABI")
    func zeroRows() throws {
        let empty = try SparseCodes(rows: 0, k: 3, dim: 10, indices: [], values: []).packed(bits: 8)
        let bytes = try empty.serialized()
        #expect(empty.rows == 0 && empty.payload.isEmpty && bytes.count == PackedCodes.headerBytes)
        let back = try PackedCodes(serialized: bytes)
        let unpacked = try back.unpack()
        #expect(back == empty && unpacked.rows == 0)
        var total: Int64 = 0, written: Int64 = -1
        #expect(csae_packed_size(10, 3, 8, 0, 0, nil, &total, nil) == 0 && total == Int64(PackedCodes.headerBytes))
        var out = [UInt8](repeating: 0xAB, count: Int(total))
        #expect(csae_codes_pack(nil, nil, 0, 3, 10, 8, 0, &out, total, &written) == 0)
        #expect(written == total && out == bytes)
        var n: Int64 = -1, idx: Int32 = 0, val: Float = 0
        #expect(csae_packed_info(out, total, &n, nil, nil, nil, nil) == 0 && n == 0)
        #expect(csae_codes_unpack(out, total, &idx, &val, 0) == 0)
        #expect(csae_codes_pack(nil, nil, -1, 3, 10, 8, 0, &out, total, nil) == CSAE_ERR_INVALID_ARGUMENT.rawValue)
    }

    @Test("crafted buffers are refused with an error, never trusted", arguments: [8, 4])
    func crafted(bits: Int) throws {
        for coding in [PackedIndexCoding.fixedWidth, .eliasFano] {
            let good = try randomCodes(rows: 3, k: 5, h: 300, seed: 9).packed(bits: bits, indexCoding: coding).serialized()
            func refused(_ bytes: [UInt8], _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
                let error = #expect(throws: CompresSAEError.self, sourceLocation: sourceLocation) {
                    try PackedCodes(serialized: bytes)
                }
                #expect(error?.kind == .format, sourceLocation: sourceLocation)
                #expect(error?.message.contains(fragment) == true, "\(error?.message ?? "")", sourceLocation: sourceLocation)
            }
            refused(Array(good.prefix(20)), "CSAEPACK")
            refused(Array(good.dropLast()), "payload bytes")
            refused(good + [0], "payload bytes")
            var b = good; b[9] = 6; refused(b, "bits")
            b = good; b[10] = 3; refused(b, "coding")
            b = good; b[12] = 0; refused(b, "k must be")
            b = good; b[23] = 1; refused(b, "payload bytes")  // 2^24 rows declared
            b = good; for i in 20..<28 { b[i] = 0xFF }; refused(b, "payload bytes")
            let row = PackedCodes.headerBytes
            b = good; b[row + 3] = 0xFF; refused(b, "scale")  // NaN
            b = good; b[row + 3] = 0x80 | good[row + 3]; refused(b, "scale")  // negative
            // Every single-bit flip of the payload either still decodes to valid
            // codes (a smaller level, another latent) or is refused.
            var refusedCount = 0
            for byte in row..<good.count {
                for bit in 0..<8 {
                    b = good
                    b[byte] ^= 1 << UInt8(bit)
                    do {
                        let decoded = try PackedCodes(serialized: b).unpack()
                        #expect(decoded.indices.allSatisfy { $0 >= 0 && $0 < 300 })
                    } catch let e as CompresSAEError {
                        #expect(e.kind == .format)
                        refusedCount += 1
                    }
                }
            }
            #expect(refusedCount > 0)
        }
    }

    @Test("packed index ranks exactly like brute force over the dequantised codes",
          arguments: [SparseIndex.Storage.packed8, .packed4])
    func indexExact(storage: SparseIndex.Storage) throws {
        let (model, items, queries, d) = try SparseIndexTests.setup()
        let bits = storage.levelBits!
        let n = 30
        // Sparse mode: two adds (the second is pending until the search).
        let sparse = try SparseIndex(model: model, mode: .sparse, storage: storage)
        let itemCodes = try model.encode(items, rows: 1000)
        let first = SparseCodes(rows: 600, k: 16, dim: 512, indices: Array(itemCodes.indices[..<(600 * 16)]),
                                values: Array(itemCodes.values[..<(600 * 16)]))
        let second = SparseCodes(rows: 400, k: 16, dim: 512, indices: Array(itemCodes.indices[(600 * 16)...]),
                                 values: Array(itemCodes.values[(600 * 16)...]))
        try sparse.add(first)
        _ = try sparse.search(dense: Array(queries[..<(5 * d)]), rows: 5, n: 3)
        try sparse.add(second)
        let dequantised = try itemCodes.packed(bits: bits).unpack()
        func dense(_ c: SparseCodes, _ i: Int) -> [Double] {
            var v = [Double](repeating: 0, count: c.dim)
            for t in 0..<c.k { v[Int(c.indices[i * c.k + t])] = Double(c.values[i * c.k + t]) }
            return v
        }
        let itemVectors = (0..<1000).map { dense(dequantised, $0) }
        let queryCodes = try model.encode(queries, rows: 200, k: 64)
        var results = try sparse.search(dense: queries, rows: 200, n: n)
        var truth = bruteForceTopN(scores: (0..<200).map { q in
            let qv = dense(queryCodes, q)
            return itemVectors.map { cosine(qv, $0) }
        }, n: n)
        expectMatches(scores: results.scores, ids: results.ids, truth: truth, n: n, tolerance: 1e-5)

        // Reconstructed mode: dense rows are refitted, then quantised.
        let reconstructed = try SparseIndex(model: model, mode: .reconstructed, storage: storage)
        try reconstructed.add(dense: items, rows: 1000)
        let decoded = try model.decode(try model.encode(items, rows: 1000, refit: true).packed(bits: bits).unpack())
        let row = { (a: [Float], i: Int) in (0..<d).map { Double(a[i * d + $0]) } }
        let itemRows = (0..<1000).map { row(decoded, $0) }
        let decodedQueries = try model.decode(try model.encode(queries, rows: 200))
        results = try reconstructed.search(try model.encode(queries, rows: 200), n: n)
        truth = bruteForceTopN(scores: (0..<200).map { q in
            let qv = row(decodedQueries, q)
            return itemRows.map { cosine(qv, $0) }
        }, n: n)
        expectMatches(scores: results.scores, ids: results.ids, truth: truth, n: n, tolerance: 1e-5)
        // Asymmetric: dense queries.
        results = try reconstructed.search(dense: queries, rows: 200, n: n)
        truth = bruteForceTopN(scores: (0..<200).map { q in
            let qv = row(queries, q)
            return itemRows.map { cosine(qv, $0) }
        }, n: n)
        expectMatches(scores: results.scores, ids: results.ids, truth: truth, n: n, tolerance: 1e-5)
    }

    @Test("packed index files: levels and scales the writer never writes are refused")
    func indexFiles() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let files = IndexFileTests()
        for storage in [SparseIndex.Storage.packed8, .packed4] {
            for mode in [SparseIndex.Mode.sparse, .reconstructed] {
                let (model, path) = try files.build(mode, storage, in: dir)
                let levels = mode == .sparse ? "posting_levels" : "levels"
                // The two's-complement minimum is never written.
                try files.expectRefused(try rewritten(path, tensor: levels) { raw in
                    raw[0] = storage == .packed8 ? 0x80 : (raw[0] & 0xF0) | 0x08
                }, model, "outside", in: dir)
                try files.expectRefused(try rewritten(path, tensor: "item_scales") { raw in
                    raw.storeBytes(of: Float(-1), toByteOffset: 4, as: Float.self)
                }, model, "scale", in: dir)
                // A scale x1000: the item's cosine would exceed 1.
                try files.expectRefused(try rewritten(path, tensor: "item_scales") { raw in
                    let v = raw.bindMemory(to: Float.self)
                    v[2] *= 1000
                }, model, mode == .sparse ? "not 1" : "does not decode to a unit vector", in: dir)
                // Every scale zero: items with levels but no scale.
                try files.expectRefused(try rewritten(path, tensor: "item_scales") { raw in
                    let v = raw.bindMemory(to: Float.self)
                    for e in v.indices { v[e] = 0 }
                }, model, "scale", in: dir)
            }
        }
    }
}
