/// Library-wide thread settings, named as C (`csae_set_num_threads`,
/// `csae_get_num_threads`) and Python (`set_num_threads`, `get_num_threads`).
public enum Threads {
    /// Sets how many worker threads calls use when they are not given a
    /// count (0 restores the default, `Parallel.defaultWorkers`: the
    /// environment's `CSAE_NUM_THREADS`, else `OMP_NUM_THREADS`, else the
    /// CPUs this process may use).
    public static func setNumThreads(_ count: Int) throws {
        guard count >= 0 else { throw CompresSAEError.invalid("the thread count must be >= 0, got \(count)") }
        Parallel.defaultThreads.store(count, ordering: .relaxed)
    }

    /// The thread count calls use by default.
    public static var numThreads: Int { Parallel.threadCount(requested: 0) }

    /// The former name of `setNumThreads(_:)`.
    @available(*, deprecated, renamed: "setNumThreads(_:)")
    public static func setDefault(_ count: Int) throws { try setNumThreads(count) }

    /// The former name of `numThreads`.
    @available(*, deprecated, renamed: "numThreads")
    public static var defaultCount: Int { numThreads }
}
