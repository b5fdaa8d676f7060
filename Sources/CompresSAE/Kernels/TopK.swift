/// Selection of the `m` entries of largest magnitude in a row.
///
/// The order is total: larger `|value|` first, and among equal magnitudes the
/// lower index first. The selected set is therefore unique and the result
/// deterministic, whatever the scan order.
enum TopK {
    /// True when entry (`a`, index `ia`) ranks before (`b`, index `ib`).
    @inline(__always)
    static func ranksBefore(_ a: Float, _ ia: Int32, _ b: Float, _ ib: Int32) -> Bool {
        a > b || (a == b && ia < ib)
    }

    /// Selects the top `m` entries of `row[0..<n]` by `|value|`.
    ///
    /// Writes their indices to `outIndices[0..<m]`, best first. Uses a bounded
    /// min-heap of `m` candidates: one comparison per entry for most of the row
    /// and a heap update only when a candidate enters.
    ///
    /// - Parameters:
    ///   - row: `n` values (finite).
    ///   - m: how many to keep, `1...n`.
    ///   - heapKeys, heapIndices: scratch of at least `m` elements.
    /// - Complexity: O(n + r log m) for r heap replacements (r is about
    ///   m log(n/m) on random data), plus O(m log m) for the final sort.
    static func select(
        row: UnsafePointer<Float>, n: Int, m: Int,
        outIndices: UnsafeMutablePointer<Int32>,
        heapKeys: UnsafeMutablePointer<Float>, heapIndices: UnsafeMutablePointer<Int32>
    ) {
        // Fill the heap with the first m entries, then heapify. The heap's root is
        // the worst kept candidate (smallest |value|, highest index on ties).
        for j in 0..<m {
            heapKeys[j] = abs(row[j])
            heapIndices[j] = Int32(j)
        }
        var start = m / 2 - 1
        while start >= 0 {
            siftDown(heapKeys, heapIndices, count: m, from: start)
            start -= 1
        }
        var worst = heapKeys[0]
        // Most entries lose to the current worst candidate: test 8 at a time and
        // fall back to scalar code only for a block where some lane wins.
        var j = m
        let raw = UnsafeRawPointer(row)
        while j + 8 <= n {
            let block = raw.loadUnaligned(fromByteOffset: j * 4, as: SIMD8<Float>.self)
            let magnitudes = pointwiseMax(block, -block)
            if any(magnitudes .> SIMD8<Float>(repeating: worst)) {
                for lane in 0..<8 where magnitudes[lane] > worst {
                    heapKeys[0] = magnitudes[lane]
                    heapIndices[0] = Int32(j + lane)
                    siftDown(heapKeys, heapIndices, count: m, from: 0)
                    worst = heapKeys[0]
                }
            }
            j += 8
        }
        while j < n {
            let key = abs(row[j])
            // A later index loses every tie, so only a strictly larger key enters.
            if key > worst {
                heapKeys[0] = key
                heapIndices[0] = Int32(j)
                siftDown(heapKeys, heapIndices, count: m, from: 0)
                worst = heapKeys[0]
            }
            j += 1
        }
        // Heap-sort in place: repeatedly move the worst to the end.
        var count = m
        while count > 1 {
            count -= 1
            (heapKeys[0], heapKeys[count]) = (heapKeys[count], heapKeys[0])
            (heapIndices[0], heapIndices[count]) = (heapIndices[count], heapIndices[0])
            siftDown(heapKeys, heapIndices, count: count, from: 0)
        }
        for i in 0..<m { outIndices[i] = heapIndices[i] }
    }

    /// Restores the min-heap property below `from`, with "worse" = smaller key,
    /// or equal key and higher index.
    @inline(__always)
    private static func siftDown(
        _ keys: UnsafeMutablePointer<Float>, _ idx: UnsafeMutablePointer<Int32>,
        count: Int, from: Int
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
