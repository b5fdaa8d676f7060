import Dispatch
import Synchronization

/// A pointer that may cross into worker closures. The kernels that use it
/// give each worker a disjoint part of the buffer, which is what makes the
/// unchecked conformance sound.
struct SharedPointer<T>: @unchecked Sendable {
    let base: UnsafeMutablePointer<T>
    init(_ base: UnsafeMutablePointer<T>) { self.base = base }
}

struct SharedConstPointer<T>: @unchecked Sendable {
    let base: UnsafePointer<T>
    init(_ base: UnsafePointer<T>) { self.base = base }
}

enum Parallel {
    /// Threads used when a call asks for 0; 0 here means `defaultWorkers`.
    static let defaultThreads = Atomic<Int>(0)

    /// The worker count of calls given none, read once per process: the
    /// environment's `CSAE_NUM_THREADS`, else `OMP_NUM_THREADS` (its first
    /// entry), else `WorkerBudget.usableCPUs()`.
    static let defaultWorkers: Int = WorkerBudget.defaultWorkers(environment: WorkerBudget.environment)

    /// Most workers a call runs: per-worker scratch is sized by the worker
    /// count, so a huge requested count must not size allocations.
    static let maxThreads = 1024

    /// The thread count for a request: 0 means the default (`defaultWorkers`
    /// unless `setDefaultThreads` chose otherwise); at most `maxThreads`.
    static func threadCount(requested: Int) -> Int {
        if requested > 0 { return min(requested, maxThreads) }
        let chosen = defaultThreads.load(ordering: .relaxed)
        return min(chosen > 0 ? chosen : defaultWorkers, maxThreads)
    }

    /// Runs `body(worker)` for `worker` in `0..<workers`, concurrently when
    /// `workers > 1`. Work is split statically by the caller so that results
    /// do not depend on scheduling (training must be bit-for-bit repeatable).
    static func run(workers: Int, _ body: @Sendable (Int) -> Void) {
        if workers <= 1 {
            body(0)
        } else {
            DispatchQueue.concurrentPerform(iterations: workers, execute: body)
        }
    }
}

/// Boxes a value for workers that only read it.
struct UnsafeSendableBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
