/// IEEE half-precision conversion by integer arithmetic. Swift's `Float16`
/// conversions need the F16C instructions, which the portable x86-64 target
/// does not assume (it falls back to a slow library call); the compact index
/// stores its values in half precision and converts them in its inner loops.
enum HalfPrecision {
    /// Smallest normal half (6.1e-5): smaller magnitudes are stored as zero,
    /// so the decoder below needs no subnormal case.
    static let smallestNormal: Float = 6.103515625e-05

    /// Rounds a finite float to the nearest half, flushing magnitudes below
    /// the smallest normal half to zero and saturating above 65504.
    static func encode(_ value: Float) -> UInt16 {
        let magnitude = abs(value)
        let sign: UInt16 = value.sign == .minus ? 0x8000 : 0
        if magnitude < smallestNormal { return sign }
        if magnitude >= 65504 { return sign | 0x7BFF }
        return sign | Float16(magnitude).bitPattern
    }

    /// True for the halves `encode` produces: zero or normal (not
    /// subnormal, infinite or NaN), which every decoder of the library reads alike.
    static func isStorable(_ bits: UInt16) -> Bool {
        let exponent = bits & 0x7C00
        return exponent != 0x7C00 && (exponent != 0 || bits & 0x03FF == 0)
    }

    /// Decodes one half produced by `encode` (zero or normal).
    @inline(__always)
    static func decode(_ bits: UInt16) -> Float {
        let b = UInt32(bits)
        let magnitude = b & 0x7FFF
        if magnitude == 0 { return Float(bitPattern: (b & 0x8000) << 16) }
        // Re-bias the exponent (15 -> 127) and widen the mantissa (10 -> 23 bits).
        return Float(bitPattern: ((b & 0x8000) << 16) | ((magnitude << 13) &+ (112 << 23)))
    }
}
