/// Signed uniform quantisation of a code's values with one scale per row:
/// `level = round(value / scale)`, `scale = max |value| / maxLevel`, so the
/// largest magnitude of a row maps to `±maxLevel` exactly and a dequantised
/// value is `Float(level) * scale`.
///
/// The levels are symmetric (`-maxLevel...maxLevel`): the two's-complement
/// minimum (-128, -8) is never written, so a negated code quantises to the
/// negated levels. A row whose values are all zero, or whose scale would
/// underflow to zero, gets scale 0 and all-zero levels.
enum ValueQuantizer {
    /// Bit widths of a level.
    static let supportedBits: Set<Int> = [4, 8]

    /// The largest level magnitude at `bits`: 127 at 8 bits, 7 at 4 bits.
    @inline(__always)
    static func maxLevel(bits: Int) -> Int { (1 << (bits - 1)) - 1 }

    /// Quantises one row of `k` finite values into `levels`; returns the scale.
    ///
    /// - Complexity: O(k).
    static func quantize(_ values: UnsafePointer<Float>, k: Int, bits: Int, into levels: UnsafeMutablePointer<Int8>) -> Float {
        let top = Float(maxLevel(bits: bits))
        var largest: Float = 0
        for t in 0..<k { largest = max(largest, abs(values[t])) }
        let scale = largest / top
        guard largest > 0, scale > 0 else {
            levels.initialize(repeating: 0, count: k)
            return 0
        }
        for t in 0..<k {
            // Divided by the largest magnitude rather than by the scale: the
            // ratio lies in [-1, 1] for any finite row, even where the scale
            // is subnormal.
            let level = (values[t] / largest * top).rounded()
            levels[t] = Int8(min(top, max(-top, level)))
        }
        return scale
    }
}
