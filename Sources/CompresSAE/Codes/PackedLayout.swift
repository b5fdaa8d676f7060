/// How a row's latent indices are coded in a packed code (docs/file-formats.md,
/// "Packed codes").
public enum PackedIndexCoding: Int32, Sendable {
    /// Each index in `ceil(log2 h)` bits (at least 1), ascending.
    case fixedWidth = 1
    /// The ascending indices in Elias-Fano form: `L = floor(log2(h / k))`
    /// low bits each, then the high parts `index >> L` in unary, a bit
    /// vector of `k + ((h - 1) >> L) + 1` bits with bit `(index_i >> L) + i` set.
    case eliasFano = 2

    var name: String { self == .fixedWidth ? "fixed-width" : "elias-fano" }
}

/// The size of one packed row, fixed by `h`, `k`, the value bits and the
/// index coding: a float32 scale, then one bit stream of the index section
/// and the value section, padded with zero bits to a whole byte.
struct PackedLayout: Equatable, Sendable {
    let dim: Int
    let k: Int
    let bits: Int
    let coding: PackedIndexCoding
    /// Bits of the index section.
    let indexBits: Int
    /// Bytes of a packed row: `4 + ceil((indexBits + k * bits) / 8)`.
    let rowBytes: Int

    /// Bits per index of the fixed-width coding: `ceil(log2 h)`, at least 1.
    static func fixedWidth(dim: Int) -> Int { max(1, Int.bitWidth - (dim - 1).leadingZeroBitCount) }

    /// Low bits per index of the Elias-Fano coding: `floor(log2(h / k))`.
    static func lowBits(dim: Int, k: Int) -> Int { Int.bitWidth - 1 - (dim / k).leadingZeroBitCount }

    /// Bits of a row's index section.
    static func indexBits(dim: Int, k: Int, coding: PackedIndexCoding) -> Int {
        switch coding {
        case .fixedWidth: return k * fixedWidth(dim: dim)
        case .eliasFano:
            let low = lowBits(dim: dim, k: k)
            return k * low + k + ((dim - 1) >> low) + 1
        }
    }

    /// The coding with the smaller index section (fixed width on a tie).
    static func preferredCoding(dim: Int, k: Int) -> PackedIndexCoding {
        indexBits(dim: dim, k: k, coding: .eliasFano) < indexBits(dim: dim, k: k, coding: .fixedWidth)
            ? .eliasFano : .fixedWidth
    }

    /// - Parameters:
    ///   - dim: the latent dimension `h`, `1...Int32.max`.
    ///   - k: nonzeros per row, `1...h`.
    ///   - bits: 8 or 4.
    ///   - coding: the index coding, `nil` for the smaller one.
    /// - Throws: `invalidArgument` for sizes outside those ranges.
    init(dim: Int, k: Int, bits: Int, coding: PackedIndexCoding?) throws(CompresSAEError) {
        guard dim >= 1, dim <= Int(Int32.max) else {
            throw .invalid("the latent dimension must be in 1...\(Int32.max), got \(dim)")
        }
        guard k >= 1, k <= dim else { throw .invalid("k must be in 1...\(dim) (the latent dimension), got \(k)") }
        guard ValueQuantizer.supportedBits.contains(bits) else { throw .invalid("bits must be 8 or 4, got \(bits)") }
        self.dim = dim
        self.k = k
        self.bits = bits
        self.coding = coding ?? Self.preferredCoding(dim: dim, k: k)
        // k <= h < 2^31: every product below stays under 2^37.
        indexBits = Self.indexBits(dim: dim, k: k, coding: self.coding)
        rowBytes = 4 + (indexBits + k * bits + 7) / 8
    }

    // MARK: - Rows

    /// Packs one row. `order` is scratch for `k` positions.
    ///
    /// - Precondition: indices in `0..<dim`, distinct; values finite.
    /// - Complexity: O(k log k + h / 2^L) (the unary section).
    func packRow(indices: UnsafePointer<Int32>, values: UnsafePointer<Float>, into row: UnsafeMutablePointer<UInt8>,
                 order: UnsafeMutablePointer<Int>, levels: UnsafeMutablePointer<Int8>) {
        let scale = ValueQuantizer.quantize(values, k: k, bits: bits, into: levels)
        storeScale(scale, at: row)
        for t in 0..<k { order[t] = t }
        var sorted = UnsafeMutableBufferPointer(start: order, count: k)
        sorted.sort { indices[$0] < indices[$1] }
        var writer = BitWriter(row + 4)
        switch coding {
        case .fixedWidth:
            let width = Self.fixedWidth(dim: dim)
            for t in 0..<k { writer.write(UInt64(indices[order[t]]), width: width) }
        case .eliasFano:
            let low = Self.lowBits(dim: dim, k: k)
            for t in 0..<k { writer.write(UInt64(indices[order[t]]), width: low) }
            var previousHigh = 0
            for t in 0..<k {
                let high = Int(indices[order[t]]) >> low
                writer.writeZeros(high - previousHigh)
                writer.write(1, width: 1)
                previousHigh = high
            }
            writer.writeZeros(((dim - 1) >> low) + 1 - previousHigh)
        }
        let mask: UInt64 = (1 << UInt64(bits)) - 1
        for t in 0..<k { writer.write(UInt64(bitPattern: Int64(levels[order[t]])) & mask, width: bits) }
        writer.finish()
    }

    /// Unpacks one row into `k` indices and values, ordered by decreasing
    /// `|value|` (ties by ascending index, as the encoder orders a code's
    /// entries), after checking everything `packRow` guarantees: a finite,
    /// non-negative scale; indices strictly ascending below `dim` (Elias-Fano:
    /// exactly `k` set bits in the unary section); levels in
    /// `-maxLevel...maxLevel`, all zero when the scale is 0 and reaching
    /// `±maxLevel` otherwise; zero padding bits.
    ///
    /// - Parameter row: `rowBytes` bytes.
    /// - Throws: `format`, naming `rowNumber`.
    /// - Complexity: O(k log k + h / 2^L).
    func unpackRow(_ row: UnsafePointer<UInt8>, rowNumber: Int, indices: UnsafeMutablePointer<Int32>,
                   values: UnsafeMutablePointer<Float>, order: UnsafeMutablePointer<Int>,
                   levels: UnsafeMutablePointer<Int8>) throws(CompresSAEError) {
        func bad(_ why: String) -> CompresSAEError { .format("packed row \(rowNumber): \(why)") }
        let scale = loadScale(at: row)
        guard scale.isFinite, scale >= 0, scale.sign == .plus else { throw bad("its scale \(scale) is not a finite number >= 0") }
        var reader = BitReader(row + 4, byteCount: rowBytes - 4)
        switch coding {
        case .fixedWidth:
            let width = Self.fixedWidth(dim: dim)
            for t in 0..<k { indices[t] = Int32(truncatingIfNeeded: reader.read(width: width)) }
        case .eliasFano:
            let low = Self.lowBits(dim: dim, k: k)
            for t in 0..<k { indices[t] = Int32(truncatingIfNeeded: reader.read(width: low)) }
            let highBits = ((dim - 1) >> low) + 1 + k
            var found = 0
            for position in 0..<highBits where reader.readBit() {
                guard found < k else { throw bad("its Elias-Fano high bits hold more than k = \(k) ones") }
                let high = position - found
                // high <= position < 2^32 and low < 31: checked against dim below.
                let index = (high << low) | Int(indices[found])
                guard index < dim else { throw bad("latent index \(index) is not below \(dim)") }
                indices[found] = Int32(index)
                found += 1
            }
            guard found == k else { throw bad("its Elias-Fano high bits hold \(found) ones, not k = \(k)") }
        }
        for t in 0..<k {
            guard Int(indices[t]) < dim else { throw bad("latent index \(indices[t]) is not below \(dim)") }
            guard t == 0 || indices[t] > indices[t - 1] else { throw bad("its latent indices are not strictly ascending") }
        }
        let top = ValueQuantizer.maxLevel(bits: bits)
        var largest = 0
        for t in 0..<k {
            let raw = Int(reader.read(width: bits))
            let level = raw >= 1 << (bits - 1) ? raw - (1 << bits) : raw
            guard abs(level) <= top else { throw bad("value level \(level) is outside -\(top)...\(top)") }
            levels[t] = Int8(level)
            largest = max(largest, abs(level))
        }
        guard (scale == 0 && largest == 0) || (scale > 0 && largest == top) else {
            throw bad(scale == 0 ? "its scale is 0 but a level is not" : "its largest level is \(largest), not \(top)")
        }
        let used = 4 * 8 + indexBits + k * bits
        if used % 8 != 0 {
            guard row[used / 8] >> UInt8(used % 8) == 0 else { throw bad("its padding bits are not zero") }
        }
        // Decreasing |value|, ties by ascending index (the stable order of the ascending row).
        for t in 0..<k { order[t] = t }
        var sorted = UnsafeMutableBufferPointer(start: order, count: k)
        sorted.sort {
            let a = abs(Int(levels[$0])), b = abs(Int(levels[$1]))
            return a > b || (a == b && $0 < $1)
        }
        // Permuted through scratch: `values` holds the ascending row's levels
        // and `order` each entry's index beside its position.
        for t in 0..<k { values[t] = Float(levels[t]) }
        for t in 0..<k { order[t] = (Int(indices[order[t]]) << 32) | order[t] }
        for t in 0..<k {
            indices[t] = Int32(truncatingIfNeeded: order[t] >> 32)
            levels[t] = Int8(values[order[t] & 0xFFFF_FFFF])
        }
        for t in 0..<k { values[t] = Float(levels[t]) * scale }
    }

    @inline(__always)
    func storeScale(_ scale: Float, at row: UnsafeMutablePointer<UInt8>) {
        let bits = scale.bitPattern
        for b in 0..<4 { row[b] = UInt8(truncatingIfNeeded: bits >> UInt32(8 * b)) }
    }

    @inline(__always)
    func loadScale(at row: UnsafePointer<UInt8>) -> Float {
        var bits: UInt32 = 0
        for b in 0..<4 { bits |= UInt32(row[b]) << UInt32(8 * b) }
        return Float(bitPattern: bits)
    }
}
