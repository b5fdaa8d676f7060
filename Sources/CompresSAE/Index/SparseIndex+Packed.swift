import CCompresSAE

// The packed storages (`packed8`, `packed4`): an item's values are kept as
// the signed levels of `ValueQuantizer` (the quantiser of `PackedCodes`),
// and its scale, `1 / |levels|` in sparse mode or `1 / |decoder^T levels|`
// in reconstructed mode, multiplies its sum once at the end:
// `score = scale_item * sum_t weight_t * level_t`. Since cosine ignores the
// packed row scale, the ranking is that of brute-force cosine over the
// dequantised codes.
//
// Levels are two's-complement bytes (8-bit) or nibbles (4-bit: entry `e` in
// byte `e / 2`, the low nibble first). Reconstructed rows start on a byte:
// `(k + 1) / 2` bytes per row at 4 bits.

extension SparseIndex {
    /// Bytes of one reconstructed row's levels.
    static func levelRowBytes(k: Int, bits: Int) -> Int { bits == 8 ? k : (k + 1) / 2 }

    /// Bytes of `entries` posting-list levels.
    static func levelBytes(_ entries: Int, bits: Int) -> Int { bits == 8 ? entries : (entries + 1) / 2 }

    /// Level `e` of a level array.
    @inline(__always)
    static func level(_ bytes: [UInt8], _ e: Int, bits: Int) -> Int8 {
        if bits == 8 { return Int8(bitPattern: bytes[e]) }
        let nibble = (bytes[e >> 1] >> UInt8((e & 1) << 2)) & 15
        return Int8(nibble ^ 8) - 8
    }

    /// Sets level `e` of a level array (a 4-bit entry's nibble must be zero before).
    @inline(__always)
    static func setLevel(_ bytes: inout [UInt8], _ e: Int, _ level: Int8, bits: Int) {
        if bits == 8 {
            bytes[e] = UInt8(bitPattern: level)
        } else {
            bytes[e >> 1] |= (UInt8(bitPattern: level) & 15) << UInt8((e & 1) << 2)
        }
    }

    /// Each row's values replaced by its quantised levels (as floats).
    ///
    /// - Complexity: O(rows k).
    static func quantizedLevels(_ values: UnsafeBufferPointer<Float>, rows: Int, k: Int,
                                bits: Int) throws -> FallibleBuffer<Float> {
        let out = try FallibleBuffer<Float>(count: try Size.product(rows, k, what: "the codes' levels"), "the codes' levels")
        let levels = try FallibleBuffer<Int8>(count: k, "a row's levels")
        for i in 0..<rows {
            _ = ValueQuantizer.quantize(values.baseAddress! + i * k, k: k, bits: bits, into: levels.base)
            for t in 0..<k { out.base[i * k + t] = Float(levels.base[t]) }
        }
        return out
    }

    /// Appends reconstructed rows of a packed storage: the latents in 16
    /// bits, the levels, and the item scales. Caller holds the write lock
    /// and has reserved the space.
    ///
    /// - Complexity: O(rows k).
    func appendPackedRows(indices: UnsafePointer<Int32>, levels: UnsafePointer<Float>, scales: [Float], rows: Int,
                          k: Int, bits: Int) {
        let rowBytes = Self.levelRowBytes(k: k, bits: bits)
        for i in 0..<rows {
            let first = state.rowLevels.count
            state.rowLevels.append(contentsOf: repeatElement(0, count: rowBytes))
            for t in 0..<k {
                state.rowIndices16.append(UInt16(indices[i * k + t]))
                if bits == 8 {
                    state.rowLevels[first + t] = UInt8(bitPattern: Int8(levels[i * k + t]))
                } else {
                    state.rowLevels[first + (t >> 1)] |= (UInt8(bitPattern: Int8(levels[i * k + t])) & 15) << UInt8((t & 1) << 2)
                }
            }
        }
        state.itemScales.append(contentsOf: scales)
    }
}

extension SparseIndex {
    /// Adds packed codes: their dequantised values, which a packed storage
    /// of the same bits quantises back to exactly their levels.
    ///
    /// - Complexity: as `add(_:)` plus the unpacking, O(rows k log k).
    public func add(_ packed: PackedCodes) throws {
        try add(try packed.unpack())
    }
}

extension SparseIndex {
    /// Offers the level sums of items `first..<first+count` of a packed
    /// storage, each multiplied by its scale (`scales[0..<count]`), to the
    /// selector: `offerTile` with the scale applied within the threshold scan
    /// instead of in a pass of its own. Leaves `sums[0..<count]` zeroed.
    ///
    /// - Complexity: O(count + offered items log n).
    @inline(__always)
    static func offerScaledTile<Collector: ScoreCollector>(_ sums: UnsafeMutablePointer<Float>, scales: UnsafePointer<Float>,
                                                           first: Int, count: Int, to selector: inout Collector) {
        let n = Int64(count)
        var i = csae_k_next_above_scaled(sums, scales, 0, n, selector.threshold)
        while i < n {
            selector.offer(sums[Int(i)] * scales[Int(i)], Int64(first) + i)
            sums[Int(i)] = 0
            i = csae_k_next_above_scaled(sums, scales, i + 1, n, selector.threshold)
        }
    }
}
