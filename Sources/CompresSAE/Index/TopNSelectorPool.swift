/// A fixed set of score collectors of one capacity (`TopNSelector`s for
/// results, `CandidatePool`s for a candidate stage), one per worker (or per
/// worker and query), owning their storage: freed with the pool.
///
/// Workers reach their own collectors through `subscript`; the code that
/// hands out slots gives each worker disjoint ones (`@unchecked Sendable`).
final class CollectorPool<Collector: ScoreCollector>: @unchecked Sendable {
    private let selectors: UnsafeMutablePointer<Collector>
    /// Number of selectors.
    let count: Int

    /// Makes `count` empty collectors of `capacity` pairs each.
    ///
    /// - Throws: `outOfMemory` when a collector's storage cannot be allocated.
    /// - Complexity: O(`count * capacity`).
    init(count: Int, capacity: Int) throws(CompresSAEError) {
        // The count is bounded by the worker count (`Parallel.maxThreads`)
        // times a query block, never by input: a plain allocation.
        selectors = .allocate(capacity: max(count, 1))
        var made = 0
        do {
            while made < count {
                (selectors + made).initialize(to: try Collector(capacity: capacity))
                made += 1
            }
        } catch {
            selectors.deinitialize(count: made)
            selectors.deallocate()
            throw error
        }
        self.count = count
    }

    deinit {
        selectors.deinitialize(count: count)
        selectors.deallocate()
    }

    /// Collector `slot` (`0..<count`), valid while the pool lives.
    @inline(__always)
    subscript(slot: Int) -> UnsafeMutablePointer<Collector> { selectors + slot }
}

/// The result selectors of a search.
typealias TopNSelectorPool = CollectorPool<TopNSelector>
