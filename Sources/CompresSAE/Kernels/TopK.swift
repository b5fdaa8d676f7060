import CCompresSAE

/// Selection of the `m` entries of largest magnitude in a row.
///
/// The order is total: larger `|value|` first, and among equal magnitudes the
/// lower index first. The selected set is therefore unique and the result
/// deterministic, whatever the scan order.
///
/// The work is done by `csae_k_select_top` (vector_kernels.c), which compares
/// magnitudes as the integer bit patterns of `|value|`: for finite floats
/// that order is the numeric one.
enum TopK {
    /// Scratch for rows of up to `n` entries: `3n + 16` keys and `n + 8` indices.
    typealias Scratch = (keys: UnsafeMutablePointer<UInt32>, indices: UnsafeMutablePointer<Int32>)

    /// Scratch keys needed for rows of `n` entries.
    static func scratchKeys(n: Int) -> Int { 3 * n + 16 }
    /// Scratch indices needed for rows of `n` entries.
    static func scratchIndices(n: Int) -> Int { n + 8 }

    /// Selects the top `m` entries of `row[0..<n]` by `|value|`.
    ///
    /// On return `outIndices[0..<split]` holds the top `split` entries and
    /// `outIndices[split..<m]` the next `m - split`, each part in ascending
    /// index order; with `sorted`, all `m` are ordered best first.
    ///
    /// A bound is estimated first: from `boundHint` when given (a previous
    /// row's m-th magnitude, lowered by 15%: the rows of a batch have much
    /// the same one), else, or when fewer than `m` entries reach that, the
    /// `3m/16`-th largest magnitude among every 8th entry, which about 1.5 m
    /// entries reach. The entries that reach
    /// it are packed into the scratch with vector compares; when fewer than
    /// `m` do, a bound that is always safe is used instead (split the row into
    /// `m` groups and take the smallest group maximum). The exact `m`-th
    /// magnitude among the candidates is then found by a radix search over
    /// the bytes of the keys, with no comparison sort.
    ///
    /// - Parameters:
    ///   - row: `n` finite values.
    ///   - m: how many to keep, `1...n`.
    ///   - split: the size of the leading part, `1...m`.
    ///   - scratch: at least `scratchKeys(n:)` keys and `scratchIndices(n:)` indices.
    ///   - boundHint: `nil`, or a state kept across the rows of one kind (start
    ///     it at 0); the result never depends on it.
    /// - Complexity: O(n) for the scans and O(c) for c candidates, plus
    ///   O(m log m) when `sorted`.
    @inline(__always)
    static func select(
        row: UnsafePointer<Float>, n: Int, m: Int, split: Int? = nil, sorted: Bool = true,
        outIndices: UnsafeMutablePointer<Int32>, scratch: Scratch, boundHint: UnsafeMutablePointer<UInt32>? = nil
    ) {
        csae_k_select_top(row, Int64(n), Int64(m), Int64(split ?? m), sorted ? 1 : 0, outIndices,
                          scratch.keys, scratch.indices, boundHint)
    }
}
