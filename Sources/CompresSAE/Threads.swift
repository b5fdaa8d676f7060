/// Library-wide thread settings.
public enum Threads {
    /// Sets how many worker threads calls use when they are not given a
    /// count (0 restores the default, `Parallel.defaultWorkers`: the
    /// environment's `CSAE_NUM_THREADS`, else `OMP_NUM_THREADS`, else the
    /// CPUs this process may use).
    public static func setDefault(_ count: Int) throws {
        guard count >= 0 else { throw CompresSAEError.invalid("the thread count must be >= 0, got \(count)") }
        Parallel.defaultThreads.store(count, ordering: .relaxed)
    }

    /// The thread count calls use by default.
    public static var defaultCount: Int { Parallel.threadCount(requested: 0) }
}
