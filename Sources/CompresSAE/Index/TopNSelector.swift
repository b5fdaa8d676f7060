/// Keeps the best `n` (score, id) pairs seen, in the order "higher score
/// first, lower id first on equal scores": the order brute force produces.
///
/// A bounded 4-ary min-heap whose root is the worst kept pair; `threshold`
/// is that pair's score while the heap is full (candidates below it cannot
/// enter). Each pair is held as one 64-bit key that orders exactly like that
/// rule (the score's bits made monotone, above the complemented id), so
/// comparisons are integer ones the compiler can make branch-free; four
/// children per node halve the depth of a sift, and the slots past `count`
/// hold the largest key, so a node's four children are compared without
/// bounds checks.
/// Ids must lie in `0..<2^32`; scores must not be NaN.
struct TopNSelector {
    let capacity: Int
    private(set) var count = 0
    /// A score that every pair to be kept is known to exceed (because `n`
    /// pairs already seen exceed it); offers at or below it are refused.
    private(set) var floor: Float = -.infinity
    /// Owns the heap's keys; `keys` is its base.
    private let storage: FallibleBuffer<UInt64>
    private let keys: UnsafeMutablePointer<UInt64>

    /// Slots past the last pair that a sift may read.
    private static let padding = 3

    /// - Throws: `outOfMemory` when `capacity` keys cannot be allocated.
    init(capacity: Int) throws(CompresSAEError) {
        self.capacity = capacity
        storage = try FallibleBuffer(count: try Size.sum(capacity, Self.padding, what: "search results"),
                                     "the search's top-\(capacity) heap")
        keys = storage.base
        keys.initialize(repeating: .max, count: capacity + Self.padding)
    }

    mutating func reset() {
        keys.update(repeating: .max, count: count)
        count = 0
        floor = -.infinity
    }

    /// Raises `floor` to `value`: the caller guarantees that at least
    /// `capacity` candidates it offers (or has offered) score above `value`.
    mutating func raiseFloor(to value: Float) { floor = max(floor, value) }

    /// The key of (score, id): greater key = better pair.
    @inline(__always)
    static func key(_ score: Float, _ id: Int64) -> UInt64 {
        // -0.0 ranks with +0.0, as float comparison has it.
        let bits = (score == 0 ? 0 : score).bitPattern
        let monotone = bits & 0x8000_0000 != 0 ? ~bits : bits | 0x8000_0000
        return UInt64(monotone) << 32 | UInt64(UInt32.max - UInt32(truncatingIfNeeded: id))
    }

    @inline(__always)
    static func score(ofKey key: UInt64) -> Float {
        let monotone = UInt32(truncatingIfNeeded: key >> 32)
        return Float(bitPattern: monotone & 0x8000_0000 != 0 ? monotone & 0x7FFF_FFFF : ~monotone)
    }

    @inline(__always)
    static func id(ofKey key: UInt64) -> Int64 {
        Int64(UInt32.max - UInt32(truncatingIfNeeded: key))
    }

    /// The score a candidate must exceed (or equal, with a lower id) to enter:
    /// `floor` until the heap is full.
    var threshold: Float { count < capacity ? floor : Self.score(ofKey: keys[0]) }

    /// The kept pairs, in heap order.
    func pair(_ slot: Int) -> (score: Float, id: Int64) {
        (Self.score(ofKey: keys[slot]), Self.id(ofKey: keys[slot]))
    }

    /// Offers a candidate.
    @inline(__always)
    mutating func offer(_ score: Float, _ id: Int64) {
        guard score > floor else { return }
        let key = Self.key(score, id)
        if count < capacity {
            // Sift up from the end.
            var child = count
            count += 1
            while child > 0 {
                let parent = (child - 1) / 4
                guard keys[parent] > key else { break }
                keys[child] = keys[parent]
                child = parent
            }
            keys[child] = key
            return
        }
        guard capacity > 0, key > keys[0] else { return }
        siftDown(key)
    }

    @inline(__always)
    private mutating func siftDown(_ key: UInt64) {
        var parent = 0
        while true {
            let first = 4 * parent + 1
            if first >= count { break }
            // The smallest of the four children (padding slots hold .max).
            var child = first, childKey = keys[first]
            let k1 = keys[first + 1], k2 = keys[first + 2], k3 = keys[first + 3]
            if k1 < childKey { child = first + 1; childKey = k1 }
            if k2 < childKey { child = first + 2; childKey = k2 }
            if k3 < childKey { child = first + 3; childKey = k3 }
            guard key > childKey else { break }
            keys[parent] = childKey
            parent = child
        }
        keys[parent] = key
    }

    /// Empties the heap into `outScores`/`outIds`, best first; returns how many.
    mutating func drainSorted(scores outScores: UnsafeMutablePointer<Float>, ids outIds: UnsafeMutablePointer<Int64>) -> Int {
        let total = count
        while count > 0 {
            let worst = keys[0]
            count -= 1
            outScores[count] = Self.score(ofKey: worst)
            outIds[count] = Self.id(ofKey: worst)
            let last = keys[count]
            keys[count] = .max
            if count > 0 { siftDown(last) }
        }
        return total
    }
}
