/// The caller's result buffers of a search: `rows` rows of `n` slots, each
/// row best first and padded with (score `-inf`, id -1) past the results
/// found. Workers write disjoint rows (`@unchecked Sendable`).
struct SearchOutput: @unchecked Sendable {
    /// `rows * n` scores.
    let scores: UnsafeMutablePointer<Float>
    /// `rows * n` item ids.
    let ids: UnsafeMutablePointer<Int64>
    /// Slots per row.
    let n: Int

    /// Empties `selector` into row `row`, best first, and pads the rest of the row.
    ///
    /// - Complexity: O(s log s) for the `s` pairs the selector holds, plus O(n).
    @inline(__always)
    func write(row: Int, from selector: inout TopNSelector) {
        let rowScores = scores + row * n, rowIDs = ids + row * n
        let found = selector.drainSorted(scores: rowScores, ids: rowIDs)
        for slot in found..<n {
            rowScores[slot] = -.infinity
            rowIDs[slot] = -1
        }
    }

    /// Fills every slot of the buffers with padding: the result of a search
    /// that finds nothing. Returns 0, the results per query.
    ///
    /// - Complexity: O(`scores.count + ids.count`).
    static func empty(_ scores: UnsafeMutableBufferPointer<Float>, _ ids: UnsafeMutableBufferPointer<Int64>) -> Int {
        for i in scores.indices { scores[i] = -.infinity }
        for i in ids.indices { ids[i] = -1 }
        return 0
    }
}
