/// The reconstructed-mode codes of an index as pointers, for the search
/// kernel: valid only inside `SparseIndex.withReconstructedRows`, which
/// holds the index's read lock (`@unchecked Sendable`: workers only read it).
///
/// `count` rows of `k` entries, values divided by the item's decoded norm.
/// By storage: standard rows have `indices` and `values`; compact rows
/// `indices16` and `values16` (half precision); packed rows `indices16`,
/// `levels` (rows of `SparseIndex.levelRowBytes` bytes) and `itemScales`.
struct ReconstructedRowsView: @unchecked Sendable {
    /// Rows (items).
    let count: Int
    /// Entries per row.
    let k: Int
    let indices: UnsafePointer<Int32>?
    let indices16: UnsafePointer<UInt16>?
    let values: UnsafePointer<Float>?
    let values16: UnsafePointer<UInt16>?
    let levels: UnsafePointer<UInt8>?
    /// Bits per level of a packed storage.
    let levelBits: Int?
    let itemScales: UnsafePointer<Float>?
}

extension SparseIndex {
    /// Runs `body` on the index's reconstructed rows. Caller holds the read
    /// lock; the index holds at least one item.
    ///
    /// - Complexity: O(1) plus `body`.
    func withReconstructedRows<R>(_ body: (ReconstructedRowsView) throws -> R) rethrows -> R {
        let count = state.count, k = state.k!, bits = storage.levelBits
        func view(_ indices: UnsafePointer<Int32>? = nil, _ indices16: UnsafePointer<UInt16>? = nil,
                  values: UnsafePointer<Float>? = nil, values16: UnsafePointer<UInt16>? = nil,
                  levels: UnsafePointer<UInt8>? = nil, scales: UnsafePointer<Float>? = nil) -> ReconstructedRowsView {
            ReconstructedRowsView(count: count, k: k, indices: indices, indices16: indices16, values: values,
                                  values16: values16, levels: levels, levelBits: bits, itemScales: scales)
        }
        switch storage {
        case .standard:
            return try state.rowIndices.withUnsafeBufferPointer { indices in
                try state.rowValues.withUnsafeBufferPointer { try body(view(indices.baseAddress, values: $0.baseAddress)) }
            }
        case .compact:
            return try state.rowIndices16.withUnsafeBufferPointer { indices in
                try state.rowValues16.withUnsafeBufferPointer { try body(view(nil, indices.baseAddress, values16: $0.baseAddress)) }
            }
        case .packed8, .packed4:
            return try state.rowIndices16.withUnsafeBufferPointer { indices in
                try state.rowLevels.withUnsafeBufferPointer { levels in
                    try state.itemScales.withUnsafeBufferPointer { scales in
                        try body(view(nil, indices.baseAddress, levels: levels.baseAddress, scales: scales.baseAddress))
                    }
                }
            }
        }
    }
}
