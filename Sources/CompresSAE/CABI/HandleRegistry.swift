/// Maps the opaque `csae_model *` handles given to C callers to live models.
///
/// A handle is a never-reused number dressed as a pointer, not the object's
/// address: a freed or forged handle is then looked up and refused with
/// CSAE_ERR_INVALID_HANDLE instead of being dereferenced.
///
/// The table sits behind a pthread read-write lock rather than
/// `Synchronization.Mutex`: the Mutex's futex fast path is invisible to
/// ThreadSanitizer, which then reports every lookup racing an insert, and the
/// TSan stage of the tests must stay meaningful for the C ABI.
final class HandleRegistry<Object: AnyObject & Sendable>: @unchecked Sendable {
    /// Low bits of a handle that are always zero (the id is shifted past
    /// them), so that a handle looks like an aligned pointer and is never NULL.
    static var tagBits: UInt { 4 }

    /// The live objects by id, and the next id to hand out.
    private struct Table {
        var objects: [UInt: Object] = [:]
        var nextID: UInt = 1
    }

    /// Guarded by `lock`: read under its read lock, changed under its write lock.
    nonisolated(unsafe) private var table = Table()
    private let lock = ReadWriteLock()
    private let kind: String

    init(kind: String) {
        self.kind = kind
    }

    /// Registers `object` and returns its new handle.
    func insert(_ object: Object) -> OpaquePointer {
        lock.withWriteLock {
            let id = table.nextID
            table.nextID += 1
            table.objects[id] = object
            return OpaquePointer(bitPattern: id << Self.tagBits)!
        }
    }

    /// The live object behind `handle`.
    func lookup(_ handle: OpaquePointer?) throws -> Object {
        guard let handle else { throw CompresSAEError(.invalidHandle, "the \(kind) handle is NULL") }
        let bits = UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(handle)))
        let object = lock.withReadLock { Self.isAligned(bits) ? table.objects[bits >> Self.tagBits] : nil }
        guard let object else {
            throw CompresSAEError(.invalidHandle, "the \(kind) handle is not valid (already freed, or never created)")
        }
        return object
    }

    /// Forgets `handle`; unknown handles are ignored. Calls still running on the
    /// object keep it alive until they return.
    func remove(_ handle: OpaquePointer?) {
        guard let handle else { return }
        let bits = UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(handle)))
        _ = lock.withWriteLock { Self.isAligned(bits) ? table.objects.removeValue(forKey: bits >> Self.tagBits) : nil }
    }

    /// Whether the tag bits of a handle's value are zero, as in every handle `insert` returns.
    private static func isAligned(_ bits: UInt) -> Bool { bits & ((1 << tagBits) - 1) == 0 }
}

let modelHandles = HandleRegistry<CompresSAEModel>(kind: "model")
