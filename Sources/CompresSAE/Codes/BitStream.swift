/// Writes fields of up to 32 bits into a byte buffer, least significant bit
/// first: bit `i` of the stream is bit `i % 8` of byte `i / 8`.
struct BitWriter {
    private let base: UnsafeMutablePointer<UInt8>
    private var pending: UInt64 = 0
    private var pendingBits = 0
    private(set) var bytesWritten = 0

    init(_ base: UnsafeMutablePointer<UInt8>) { self.base = base }

    /// Appends the low `width` bits of `value` (`0...32`).
    @inline(__always)
    mutating func write(_ value: UInt64, width: Int) {
        let mask: UInt64 = width == 64 ? ~0 : (1 << UInt64(width)) &- 1
        pending |= (value & mask) << UInt64(pendingBits)
        pendingBits += width
        while pendingBits >= 8 {
            base[bytesWritten] = UInt8(truncatingIfNeeded: pending)
            bytesWritten += 1
            pending >>= 8
            pendingBits -= 8
        }
    }

    /// Appends `count` zero bits.
    mutating func writeZeros(_ count: Int) {
        var left = count
        while left > 0 {
            let width = min(left, 32)
            write(0, width: width)
            left -= width
        }
    }

    /// Writes the last partial byte, its unused high bits zero.
    mutating func finish() {
        if pendingBits > 0 {
            base[bytesWritten] = UInt8(truncatingIfNeeded: pending)
            bytesWritten += 1
            pending = 0
            pendingBits = 0
        }
    }
}

/// Reads what `BitWriter` wrote, from a buffer of `byteCount` bytes; a read
/// past its end yields zero bits (callers size their reads from the layout,
/// and the layout's size was checked against the buffer's).
struct BitReader {
    private let base: UnsafePointer<UInt8>
    private let byteCount: Int
    private var nextByte = 0
    private var pending: UInt64 = 0
    private var pendingBits = 0

    init(_ base: UnsafePointer<UInt8>, byteCount: Int) {
        self.base = base
        self.byteCount = byteCount
    }

    /// The next `width` bits (`0...32`) as an unsigned number.
    @inline(__always)
    mutating func read(width: Int) -> UInt64 {
        while pendingBits < width {
            let byte: UInt64 = nextByte < byteCount ? UInt64(base[nextByte]) : 0
            pending |= byte << UInt64(pendingBits)
            nextByte += 1
            pendingBits += 8
        }
        let mask: UInt64 = (1 << UInt64(width)) &- 1
        let value = pending & mask
        pending >>= UInt64(width)
        pendingBits -= width
        return value
    }

    /// The next bit.
    @inline(__always)
    mutating func readBit() -> Bool { read(width: 1) != 0 }
}
