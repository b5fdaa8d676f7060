/// A fixed set of `TopNSelector`s of one capacity, one per worker (or per
/// worker and query), owning their storage: freed with the pool.
///
/// Workers reach their own selectors through `subscript`; the code that
/// hands out slots gives each worker disjoint ones (`@unchecked Sendable`).
final class TopNSelectorPool: @unchecked Sendable {
    private let selectors: UnsafeMutablePointer<TopNSelector>
    /// Number of selectors.
    let count: Int

    /// Makes `count` empty selectors of `capacity` pairs each.
    ///
    /// - Throws: `outOfMemory` when a selector's heap cannot be allocated.
    /// - Complexity: O(`count * capacity`).
    init(count: Int, capacity: Int) throws(CompresSAEError) {
        // The count is bounded by the worker count (`Parallel.maxThreads`)
        // times a query block, never by input: a plain allocation.
        selectors = .allocate(capacity: max(count, 1))
        var made = 0
        do {
            while made < count {
                (selectors + made).initialize(to: try TopNSelector(capacity: capacity))
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

    /// Selector `slot` (`0..<count`), valid while the pool lives.
    @inline(__always)
    subscript(slot: Int) -> UnsafeMutablePointer<TopNSelector> { selectors + slot }
}
