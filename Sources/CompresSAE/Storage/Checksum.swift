/// XXH64 (the 64-bit xxHash of Yann Collet, seed 0), computed incrementally:
/// the checksum of file payloads and the fingerprint of model weights. Fast
/// (several GB/s), so verifying a file costs little beside reading it; not a
/// cryptographic hash: it detects damage, not a forger.
struct XXH64 {
    private static let p1: UInt64 = 0x9E37_79B1_85EB_CA87
    private static let p2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    private static let p3: UInt64 = 0x1656_67B1_9E37_79F9
    private static let p4: UInt64 = 0x85EB_CA77_C2B2_AE63
    private static let p5: UInt64 = 0x27D4_EB2F_1656_67C5

    private var v1: UInt64 = 0 &+ p1 &+ p2
    private var v2: UInt64 = p2
    private var v3: UInt64 = 0
    private var v4: UInt64 = 0 &- p1
    /// Bytes not yet consumed as a 32-byte stripe.
    private var pending: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    private var pendingCount = 0
    private var totalLength: UInt64 = 0

    init() {}

    @inline(__always)
    private static func round(_ acc: UInt64, _ input: UInt64) -> UInt64 {
        rotl(acc &+ input &* p2, 31) &* p1
    }

    @inline(__always)
    private static func rotl(_ x: UInt64, _ r: UInt64) -> UInt64 { (x << r) | (x >> (64 - r)) }

    @inline(__always)
    private static func merge(_ acc: UInt64, _ v: UInt64) -> UInt64 {
        (acc ^ round(0, v)) &* p1 &+ p4
    }

    @inline(__always)
    private static func lane(_ p: UnsafeRawPointer, _ offset: Int) -> UInt64 {
        UInt64(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// Appends `bytes` to the hashed stream.
    ///
    /// - Complexity: O(`bytes.count`).
    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard var p = bytes.baseAddress, bytes.count > 0 else { return }
        var remaining = bytes.count
        totalLength &+= UInt64(remaining)
        if pendingCount > 0 {
            let take = min(32 - pendingCount, remaining)
            withUnsafeMutableBytes(of: &pending) { buffer in
                (buffer.baseAddress! + pendingCount).copyMemory(from: p, byteCount: take)
            }
            pendingCount += take
            p += take
            remaining -= take
            guard pendingCount == 32 else { return }
            withUnsafeBytes(of: pending) { stripe($0.baseAddress!) }
            pendingCount = 0
        }
        while remaining >= 32 {
            stripe(p)
            p += 32
            remaining -= 32
        }
        if remaining > 0 {
            withUnsafeMutableBytes(of: &pending) { $0.baseAddress!.copyMemory(from: p, byteCount: remaining) }
            pendingCount = remaining
        }
    }

    @inline(__always)
    private mutating func stripe(_ p: UnsafeRawPointer) {
        v1 = Self.round(v1, Self.lane(p, 0))
        v2 = Self.round(v2, Self.lane(p, 8))
        v3 = Self.round(v3, Self.lane(p, 16))
        v4 = Self.round(v4, Self.lane(p, 24))
    }

    /// The hash of everything appended so far (the state is unchanged).
    ///
    /// - Complexity: O(1).
    func finalize() -> UInt64 {
        var h: UInt64
        if totalLength >= 32 {
            h = Self.rotl(v1, 1) &+ Self.rotl(v2, 7) &+ Self.rotl(v3, 12) &+ Self.rotl(v4, 18)
            h = Self.merge(h, v1)
            h = Self.merge(h, v2)
            h = Self.merge(h, v3)
            h = Self.merge(h, v4)
        } else {
            h = Self.p5
        }
        h &+= totalLength
        withUnsafeBytes(of: pending) { tail in
            let p = tail.baseAddress!
            var i = 0
            while i + 8 <= pendingCount {
                h = Self.rotl(h ^ Self.round(0, Self.lane(p, i)), 27) &* Self.p1 &+ Self.p4
                i += 8
            }
            if i + 4 <= pendingCount {
                let word = UInt64(UInt32(littleEndian: p.loadUnaligned(fromByteOffset: i, as: UInt32.self)))
                h = Self.rotl(h ^ (word &* Self.p1), 23) &* Self.p2 &+ Self.p3
                i += 4
            }
            while i < pendingCount {
                h = Self.rotl(h ^ (UInt64(tail[i]) &* Self.p5), 11) &* Self.p1
                i += 1
            }
        }
        h ^= h >> 33
        h &*= Self.p2
        h ^= h >> 29
        h &*= Self.p3
        h ^= h >> 32
        return h
    }

    /// The hash of one buffer.
    static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var hasher = XXH64()
        hasher.update(bytes)
        return hasher.finalize()
    }

    /// `value` as the 16 lowercase hex digits files record.
    static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
