/// What a search kernel offers its (score, id) pairs to: a `TopNSelector`
/// for results, a `CandidatePool` for a candidate stage.
protocol ScoreCollector {
    /// An empty collector of `capacity` pairs.
    ///
    /// - Throws: `outOfMemory` when its storage cannot be allocated.
    init(capacity: Int) throws(CompresSAEError)
    /// Pairs kept at most.
    var capacity: Int { get }
    /// The score an offer must exceed to be kept, as far as is known.
    var threshold: Float { get }
    mutating func reset()
    /// Raises the threshold to `value`: the caller guarantees that at least
    /// `capacity` pairs it offers (or has offered) score above `value`.
    mutating func raiseFloor(to value: Float)
    mutating func offer(_ score: Float, _ id: Int64)
}

extension TopNSelector: ScoreCollector {}

/// The best `capacity` of a stream of (score, id) pairs offered in
/// ascending id order, unordered: the candidates of a rescored search.
///
/// Pairs above the threshold are appended to a buffer of `2 capacity`; a
/// full buffer is cut back to its best `capacity` by a selection (`cut()`),
/// which raises the threshold, and `finish()` selects the best `capacity`. An offer costs O(1) amortised, where a heap of a
/// thousand pairs costs a sift of several levels for each of the thousands
/// of offers a search makes. Pairs are ordered as `TopNSelector` orders
/// them (its 64-bit keys); scores must not be NaN and ids fit 32 bits.
struct CandidatePool: ScoreCollector {
    let capacity: Int
    private(set) var count = 0
    private(set) var threshold: Float = -.infinity
    /// Owns the keys; `keys` is its base.
    private let storage: FallibleBuffer<UInt64>
    private let keys: UnsafeMutablePointer<UInt64>
    /// Keys the buffer holds between cuts, `2 capacity`.
    private let bufferSize: Int

    /// - Throws: `invalidArgument` when the size overflows, `outOfMemory`
    ///   when the keys cannot be allocated.
    init(capacity: Int) throws(CompresSAEError) {
        self.capacity = max(1, capacity)
        bufferSize = try Size.product(self.capacity, 2, what: "the candidate pool")
        storage = try FallibleBuffer(count: bufferSize,
                                     "the candidate pool")
        keys = storage.base
    }

    mutating func reset() {
        count = 0
        threshold = -.infinity
    }

    mutating func raiseFloor(to value: Float) { threshold = max(threshold, value) }

    /// Offers a pair; `id` must exceed every id offered since `reset`.
    ///
    /// - Complexity: O(1) amortised.
    @inline(__always)
    mutating func offer(_ score: Float, _ id: Int64) {
        guard score > threshold else { return }
        if count == bufferSize { cut() }
        keys[count] = TopNSelector.key(score, id)
        count += 1
    }

    /// Keeps the best `capacity` pairs and raises the threshold to the worst
    /// kept score. A later pair with that score has a higher id, so it ranks
    /// below every pair kept, and refusing it is exact.
    ///
    /// - Complexity: O(count) expected.
    private mutating func cut() {
        PartialSelection.moveLargestToFront(capacity, of: keys, count: count)
        count = capacity
        var worst = UInt64.max
        for e in 0..<capacity where keys[e] < worst { worst = keys[e] }
        threshold = max(threshold, TopNSelector.score(ofKey: worst))
    }

    /// Ends the stream: the best `min(count, capacity)` pairs are then
    /// `pair(0..<count)`, in no particular order.
    ///
    /// - Complexity: O(count) expected.
    mutating func finish() {
        if count > capacity {
            PartialSelection.moveLargestToFront(capacity, of: keys, count: count)
            count = capacity
        }
    }

    /// Kept pair `slot`, `0..<count`.
    @inline(__always)
    func pair(_ slot: Int) -> (score: Float, id: Int64) {
        (TopNSelector.score(ofKey: keys[slot]), TopNSelector.id(ofKey: keys[slot]))
    }
}

/// Selection of the largest entries of an array without sorting it.
enum PartialSelection {
    /// Moves the `m` largest of `keys[0..<count]` (`1...count`) to the front,
    /// in no particular order: a quickselect with a median-of-three pivot,
    /// which sorts the rest of the range instead after `2 log2(count)`
    /// rounds, so a crafted order costs O(count log count), not O(count^2).
    ///
    /// - Complexity: O(count) expected, O(count log count) at most.
    static func moveLargestToFront<T: Comparable>(_ m: Int, of keys: UnsafeMutablePointer<T>, count: Int) {
        var lo = 0, hi = count - 1, rounds = 0
        let maxRounds = 2 * (Int.bitWidth - count.leadingZeroBitCount)
        while lo < hi {
            if rounds == maxRounds {
                var rest = UnsafeMutableBufferPointer(start: keys + lo, count: hi - lo + 1)
                rest.sort(by: >)
                return
            }
            rounds += 1
            let mid = lo + (hi - lo) / 2
            let a = keys[lo], b = keys[mid], c = keys[hi]
            let pivot = max(min(a, b), min(max(a, b), c))
            // Partition descending: [lo, i) > pivot, then pivot, then < pivot.
            var i = lo, j = hi
            while i <= j {
                while keys[i] > pivot { i += 1 }
                while keys[j] < pivot { j -= 1 }
                if i <= j {
                    let t = keys[i]; keys[i] = keys[j]; keys[j] = t
                    i += 1
                    j -= 1
                }
            }
            // Now [lo, j] >= pivot and [i, hi] <= pivot (j < i).
            if m - 1 <= j { hi = j } else if m - 1 >= i { lo = i } else { return }
        }
    }
}
