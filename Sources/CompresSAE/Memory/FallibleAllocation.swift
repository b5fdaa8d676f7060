import CCompresSAE
#if canImport(Glibc)
import Glibc
#endif

// Swift's own allocations (`Array`, `UnsafeMutablePointer.allocate`) end the
// process when `malloc` fails. The library runs inside other people's
// processes, so every buffer whose size comes from input (a file, an
// argument) goes through this file instead: its allocation failing becomes
// `CompresSAEError.Kind.outOfMemory`, a C status, a Python exception.

extension CompresSAEError {
    static func outOfMemory(_ message: String) -> CompresSAEError { .init(.outOfMemory, message) }
}

/// Overflow-checked size arithmetic for sizes that come from input.
enum Size {
    /// `factors` multiplied, or an `invalidArgument` error naming `what` if a
    /// factor is negative or the product exceeds `Int.max / 16` (so that a
    /// later multiplication by an element stride cannot overflow either).
    ///
    /// Complexity: O(`factors.count`).
    static func product(_ factors: Int..., what: @autoclosure () -> String) throws(CompresSAEError) -> Int {
        var result = 1
        for factor in factors {
            guard factor >= 0 else { throw .invalid("\(what()): negative size \(factor)") }
            let (p, overflow) = result.multipliedReportingOverflow(by: factor)
            guard !overflow, p <= Int.max / 16 else {
                throw .invalid("\(what()): size \(factors.map(String.init).joined(separator: " x ")) is too large")
            }
            result = p
        }
        return result
    }

    /// `a + b` for sizes, or an `invalidArgument` error naming `what`.
    static func sum(_ a: Int, _ b: Int, what: @autoclosure () -> String) throws(CompresSAEError) -> Int {
        let (s, overflow) = a.addingReportingOverflow(b)
        guard a >= 0, b >= 0, !overflow, s <= Int.max / 16 else {
            throw .invalid("\(what()): size \(a) + \(b) is too large")
        }
        return s
    }
}

/// A fixed-size heap buffer of `count` trivial elements whose allocation may
/// fail with an error instead of ending the process. Owns its memory: freed
/// when the last reference goes.
///
/// Workers may share it (`@unchecked Sendable`); the code that hands it out
/// gives each worker a disjoint part, as with the library's other buffers.
final class FallibleBuffer<Element: BitwiseCopyable>: @unchecked Sendable {
    /// First element; valid for `count` elements (a dangling non-null pointer when `count == 0`).
    let base: UnsafeMutablePointer<Element>
    /// Number of elements.
    let count: Int

    /// Allocates `count` elements, zero-filled when `zeroed`, else uninitialised.
    ///
    /// - Throws: `invalidArgument` when `count` is negative or its byte size
    ///   overflows; `outOfMemory` (naming `what`) when the allocation fails.
    /// - Complexity: O(1), or O(`count`) when `zeroed`.
    init(count: Int, zeroed: Bool = false, _ what: @autoclosure () -> String) throws(CompresSAEError) {
        let bytes = try Size.product(count, MemoryLayout<Element>.stride, what: what())
        let alignment = max(MemoryLayout<Element>.alignment, 64)
        var raw: UnsafeMutableRawPointer? = nil
        // At least one byte, so that an empty buffer still has a valid base.
        guard posix_memalign(&raw, alignment, max(bytes, 1)) == 0, let raw else {
            throw .outOfMemory("out of memory: \(what()) needs \(bytes) bytes")
        }
        if zeroed { memset(raw, 0, bytes) }
        self.base = raw.bindMemory(to: Element.self, capacity: max(count, 1))
        self.count = count
    }

    deinit { free(base) }

    /// The elements as a mutable buffer pointer (valid while `self` lives).
    var buffer: UnsafeMutableBufferPointer<Element> { UnsafeMutableBufferPointer(start: base, count: count) }

    /// Copies the elements into a new array (after `Array.fallible`'s check).
    ///
    /// Complexity: O(`count`).
    func toArray(_ what: @autoclosure () -> String) throws(CompresSAEError) -> [Element] {
        try [Element].fallible(count: count, what()) { out in
            // (An empty buffer may have no base address.)
            out.baseAddress?.update(from: base, count: count)
        }
    }
}

extension Array where Element: BitwiseCopyable {
    /// An array of `count` elements filled by `initialize`, whose allocation
    /// failing is an `outOfMemory` error rather than the end of the process.
    ///
    /// Swift arrays cannot report a failed allocation, so the size is first
    /// checked for overflow and the memory probed with `malloc`; only then is
    /// the array made. (Another thread taking the probed memory in between
    /// would still end the process; the probe catches the sizes that could
    /// never be had, which is what a hostile or mistaken size asks for.)
    ///
    /// - Complexity: O(`count`).
    static func fallible(
        count: Int, _ what: @autoclosure () -> String,
        initialize: (inout UnsafeMutableBufferPointer<Element>) throws(CompresSAEError) -> Void
    ) throws(CompresSAEError) -> [Element] {
        try probeAllocation(count: count, of: Element.self, what())
        // An empty array is the shared empty singleton: writing its count
        // from several threads at once is a data race (ThreadSanitizer).
        if count == 0 { return [] }
        var failure: CompresSAEError? = nil
        let result = [Element](unsafeUninitializedCapacity: count) { buffer, initialized in
            do throws(CompresSAEError) { try initialize(&buffer) } catch { failure = error }
            initialized = count
        }
        if let failure { throw failure }
        return result
    }

    /// A copy of `source` in storage of its own (never shared with `source`),
    /// or an `outOfMemory` error: a snapshot taken under a lock stays valid
    /// after the lock is released, whatever writers do to `source` then.
    ///
    /// - Complexity: O(`source.count`).
    static func fallibleCopy(of source: [Element], _ what: @autoclosure () -> String) throws(CompresSAEError) -> [Element] {
        try source.withUnsafeBufferPointer { (src) throws(CompresSAEError) -> [Element] in
            try fallible(count: src.count, what()) { out in
                if let to = out.baseAddress, let from = src.baseAddress { to.update(from: from, count: src.count) }
            }
        }
    }

    /// `count` copies of `value`, or an `outOfMemory` / `invalidArgument` error.
    ///
    /// - Complexity: O(`count`).
    static func fallible(repeating value: Element, count: Int, _ what: @autoclosure () -> String) throws(CompresSAEError) -> [Element] {
        try fallible(count: count, what()) { out in out.initialize(repeating: value) }
    }
}

/// Checks that `count` elements of `T` have a representable size and that
/// `malloc` can provide it right now (the memory is given back at once).
///
/// - Throws: `invalidArgument` on overflow, `outOfMemory` when `malloc` fails.
/// - Complexity: O(1).
func probeAllocation<T>(count: Int, of _: T.Type, _ what: @autoclosure () -> String) throws(CompresSAEError) {
    let bytes = try Size.product(count, MemoryLayout<T>.stride, what: what())
    guard csae_internal_can_allocate(bytes) != 0 else {
        throw .outOfMemory("out of memory: \(what()) needs \(bytes) bytes")
    }
}
