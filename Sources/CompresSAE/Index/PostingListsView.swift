/// The sparse-mode posting lists of an index as pointers, for the search
/// kernel: valid only inside `SparseIndex.withPostingLists`, which holds the
/// index's read lock (`@unchecked Sendable`: workers only read it).
///
/// One list per latent, item ids ascending; ids are stored relative to
/// their search tile (16 bits), and `tileOffsets` says where each tile's
/// entries start in a list. Exactly one kind of entry value is present,
/// by storage: `values` (standard), `values16` (compact, half precision)
/// or `levels` with `itemScales` (packed).
struct PostingListsView: @unchecked Sendable {
    /// Items in the lists (pending items are not).
    let itemCount: Int
    /// Search tiles over `itemCount` items.
    let tiles: Int
    /// `[h, tiles + 1]`: where each tile starts in each list, relative to the list's start.
    let tileOffsets: UnsafePointer<Int32>
    /// `[h + 1]`: where each list starts in the entry arrays.
    let listStart: UnsafePointer<Int>
    /// Per entry, the item id relative to its tile.
    let localIDs: UnsafePointer<UInt16>
    /// Standard storage: per entry, the value divided by the item's code norm.
    let values: UnsafePointer<Float>?
    /// Compact storage: the same in half precision.
    let values16: UnsafePointer<UInt16>?
    /// Packed storages: per entry, the value level (`levelBits` bits).
    let levels: UnsafePointer<UInt8>?
    /// Bits per level of a packed storage.
    let levelBits: Int?
    /// Packed storages: per item, the scale that multiplies its level sum.
    let itemScales: UnsafePointer<Float>?

    /// The tile offsets of the list of `latent` (`tiles + 1` of them).
    ///
    /// - Complexity: O(1).
    @inline(__always)
    func tileOffsets(ofLatent latent: Int) -> UnsafePointer<Int32> { tileOffsets + latent * (tiles + 1) }
}

extension SparseIndex {
    /// Runs `body` on the posting lists of the `itemCount` merged items.
    /// Caller holds the read lock; the lists hold at least one entry.
    ///
    /// - Complexity: O(1) plus `body`.
    func withPostingLists<R>(itemCount: Int, _ body: (PostingListsView) throws -> R) rethrows -> R {
        let tiles = (itemCount + Self.searchTile - 1) / Self.searchTile
        return try state.tileOffsets.withUnsafeBufferPointer { offsets in
            try state.postingStart.withUnsafeBufferPointer { starts in
                try withPostingEntries { entries in
                    try body(PostingListsView(
                        itemCount: itemCount, tiles: tiles, tileOffsets: offsets.baseAddress!,
                        listStart: starts.baseAddress!, localIDs: entries.ids, values: entries.values,
                        values16: entries.values16, levels: entries.levels, levelBits: storage.levelBits,
                        itemScales: entries.scales))
                }
            }
        }
    }

    /// The posting entries' arrays: the tile-relative ids, and the values of
    /// the storage's kind (`nil` for the others).
    private struct PostingEntries {
        var ids: UnsafePointer<UInt16>
        var values: UnsafePointer<Float>? = nil
        var values16: UnsafePointer<UInt16>? = nil
        var levels: UnsafePointer<UInt8>? = nil
        var scales: UnsafePointer<Float>? = nil
    }

    /// Runs `body` on the posting entries (at least one).
    private func withPostingEntries<R>(_ body: (PostingEntries) throws -> R) rethrows -> R {
        try state.postingLocalIDs.withUnsafeBufferPointer { idBuffer in
            let ids = idBuffer.baseAddress!
            switch storage {
            case .standard:
                return try state.postingValues.withUnsafeBufferPointer {
                    try body(PostingEntries(ids: ids, values: $0.baseAddress))
                }
            case .compact:
                return try state.postingValues16.withUnsafeBufferPointer {
                    try body(PostingEntries(ids: ids, values16: $0.baseAddress))
                }
            case .packed8, .packed4:
                return try state.postingLevels.withUnsafeBufferPointer { levels in
                    try state.itemScales.withUnsafeBufferPointer { scales in
                        try body(PostingEntries(ids: ids, levels: levels.baseAddress, scales: scales.baseAddress))
                    }
                }
            }
        }
    }
}
