@testable import CompresSAE

/// A value behind the library's pthread read-write lock, for tests that
/// collect results from several threads. Not `Synchronization.Mutex`: its
/// futex fast path is invisible to ThreadSanitizer, which then reports the
/// accesses it guards as races.
final class LockedBox<Value>: @unchecked Sendable {
    private let lock = ReadWriteLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        try lock.withWriteLock { try body(&value) }
    }
}
