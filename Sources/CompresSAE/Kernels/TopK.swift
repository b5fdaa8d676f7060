/// Selection of the `m` entries of largest magnitude in a row.
///
/// The order is total: larger `|value|` first, and among equal magnitudes the
/// lower index first. The selected set is therefore unique and the result
/// deterministic, whatever the scan order.
///
/// Magnitudes are compared as the integer bit patterns of `|value|` (the sign
/// bit cleared): for finite floats that order is the same as the numeric one,
/// and integer compares vectorise and predict better.
enum TopK {
    /// Scratch of at least `n` keys and `n` indices.
    typealias Scratch = (keys: UnsafeMutablePointer<UInt32>, indices: UnsafeMutablePointer<Int32>)

    @inline(__always)
    static func magnitudeKey(_ value: Float) -> UInt32 { value.bitPattern & 0x7FFF_FFFF }

    @inline(__always)
    static func ranksBefore(_ a: UInt32, _ ia: Int32, _ b: UInt32, _ ib: Int32) -> Bool {
        a > b || (a == b && ia < ib)
    }

    /// Selects the top `m` entries of `row[0..<n]` by `|value|`.
    ///
    /// On return `outIndices[0..<split]` holds the top `split` entries and
    /// `outIndices[split..<m]` the next `m - split`, each part in a fixed
    /// order that depends only on the row; with `sorted`, all `m` are ordered
    /// best first.
    ///
    /// A threshold is estimated first from every 8th entry (the magnitude
    /// that about 1.5 m / 8 of those samples reach); entries below it are
    /// skipped with one vector compare per 8. When fewer than `m` entries pass,
    /// the scan is redone with a bound that is always safe: split the row into
    /// `m` groups and take the smallest group maximum (each group holds an
    /// entry at least that large). Survivors enter a bounded heap.
    ///
    /// - Parameters:
    ///   - row: `n` finite values.
    ///   - m: how many to keep, `1...n`.
    ///   - split: the size of the leading part, `1...m`.
    ///   - scratch: at least `n` keys and indices.
    /// - Complexity: O(n) for the scans, plus O(c log m) for c survivors.
    static func select(
        row: UnsafePointer<Float>, n: Int, m: Int, split: Int? = nil, sorted: Bool = true,
        outIndices: UnsafeMutablePointer<Int32>, scratch: Scratch
    ) {
        let keys = scratch.keys, candidates = scratch.indices
        var count = 0
        if n >= 64 && m * 16 <= n {
            count = collect(row: row, n: n, atLeast: sampledBound(row: row, n: n, m: m, scratch: scratch),
                            keys: keys, indices: candidates)
        }
        if count < m {
            count = collect(row: row, n: n, atLeast: groupBound(row: row, n: n, m: m), keys: keys, indices: candidates)
        }
        selectFromCandidates(keys: keys, indices: candidates, count: count, m: m, split: split ?? m,
                             sorted: sorted, outIndices: outIndices)
    }

    /// A magnitude that about 1.5 m of the row's entries reach, estimated from
    /// every 8th entry (no guarantee: the caller checks the survivor count).
    private static func sampledBound(row: UnsafePointer<Float>, n: Int, m: Int, scratch: Scratch) -> UInt32 {
        let samples = n / 8
        let rank = min(samples, max(1, (3 * m) / 16))
        // Samples go to the back half of the scratch, the heap of `rank` to the front.
        let keys = scratch.keys, order = scratch.indices
        for s in 0..<rank {
            keys[s] = magnitudeKey(row[s * 8])
            order[s] = Int32(s)
        }
        var start = rank / 2 - 1
        while start >= 0 {
            siftDown(keys, order, count: rank, from: start)
            start -= 1
        }
        for s in rank..<samples {
            let key = magnitudeKey(row[s * 8])
            if key > keys[0] {
                keys[0] = key
                order[0] = Int32(truncatingIfNeeded: s)
                siftDown(keys, order, count: rank, from: 0)
            }
        }
        return keys[0]
    }

    /// The smallest of the maxima of `m` groups: at least `m` entries reach it.
    private static func groupBound(row: UnsafePointer<Float>, n: Int, m: Int) -> UInt32 {
        let groupSize = n / m
        guard groupSize >= 8 else { return 0 }
        let bits = UnsafeRawPointer(row)
        let mask = SIMD8<UInt32>(repeating: 0x7FFF_FFFF)
        var bound = UInt32.max
        for g in 0..<m {
            let first = g * groupSize, last = g == m - 1 ? n : first + groupSize
            var best = SIMD8<UInt32>(repeating: 0)
            var j = first
            while j + 8 <= last {
                let block = bits.loadUnaligned(fromByteOffset: j * 4, as: SIMD8<UInt32>.self) & mask
                best = best.replacing(with: block, where: block .> best)
                j += 8
            }
            var groupMax = best.max()
            while j < last {
                groupMax = max(groupMax, magnitudeKey(row[j]))
                j += 1
            }
            bound = min(bound, groupMax)
        }
        return bound
    }

    /// Writes every entry whose magnitude key reaches `bound`, in index order.
    private static func collect(
        row: UnsafePointer<Float>, n: Int, atLeast bound: UInt32,
        keys: UnsafeMutablePointer<UInt32>, indices: UnsafeMutablePointer<Int32>
    ) -> Int {
        let bits = UnsafeRawPointer(row)
        let mask = SIMD8<UInt32>(repeating: 0x7FFF_FFFF)
        let limit = SIMD8<UInt32>(repeating: bound)
        var count = 0
        var j = 0
        while j + 8 <= n {
            let block = bits.loadUnaligned(fromByteOffset: j * 4, as: SIMD8<UInt32>.self) & mask
            if any(block .>= limit) {
                for lane in 0..<8 where block[lane] >= bound {
                    keys[count] = block[lane]
                    indices[count] = Int32(truncatingIfNeeded: j + lane)
                    count += 1
                }
            }
            j += 8
        }
        while j < n {
            let key = magnitudeKey(row[j])
            if key >= bound {
                keys[count] = key
                indices[count] = Int32(truncatingIfNeeded: j)
                count += 1
            }
            j += 1
        }
        return count
    }

    /// Keeps the best `m` of `count` candidates (in ascending index order)
    /// with a bounded min-heap built in place at the front of the arrays. Then
    /// pops the worst until `split` remain (the popped ones fill the back,
    /// best first), and heap-sorts the front part when `sorted`.
    @inline(__always)
    static func selectFromCandidates(
        keys: UnsafeMutablePointer<UInt32>, indices: UnsafeMutablePointer<Int32>, count: Int, m: Int,
        split: Int, sorted: Bool, outIndices: UnsafeMutablePointer<Int32>
    ) {
        // The heap's root is the worst kept candidate.
        var start = m / 2 - 1
        while start >= 0 {
            siftDown(keys, indices, count: m, from: start)
            start -= 1
        }
        for c in m..<count {
            // Candidates come in index order: a later one loses every tie.
            if keys[c] > keys[0] {
                keys[0] = keys[c]
                indices[0] = indices[c]
                siftDown(keys, indices, count: m, from: 0)
            }
        }
        var remaining = m
        let stop = sorted ? 1 : split
        while remaining > stop {
            remaining -= 1
            (keys[0], keys[remaining]) = (keys[remaining], keys[0])
            (indices[0], indices[remaining]) = (indices[remaining], indices[0])
            siftDown(keys, indices, count: remaining, from: 0)
        }
        outIndices.update(from: indices, count: m)
    }

    /// Restores the min-heap property below `from`, with "worse" = smaller
    /// key, or equal key and higher index.
    @inline(__always)
    private static func siftDown(
        _ keys: UnsafeMutablePointer<UInt32>, _ idx: UnsafeMutablePointer<Int32>, count: Int, from: Int
    ) {
        var parent = from
        let key = keys[parent], index = idx[parent]
        while true {
            var child = 2 * parent + 1
            if child >= count { break }
            if child + 1 < count && ranksBefore(keys[child], idx[child], keys[child + 1], idx[child + 1]) {
                child += 1
            }
            // Stop when the moving element is at least as bad as the worse child.
            if !ranksBefore(key, index, keys[child], idx[child]) { break }
            keys[parent] = keys[child]
            idx[parent] = idx[child]
            parent = child
        }
        keys[parent] = key
        idx[parent] = index
    }
}
