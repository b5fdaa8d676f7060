#if canImport(Glibc)
import Glibc
#endif

/// Maps the opaque `csae_model *` handles given to C callers to live models.
///
/// A handle is a never-reused number dressed as a pointer, not the object's
/// address: a freed or forged handle is then looked up and refused with
/// CSAE_ERR_INVALID_HANDLE instead of being dereferenced.
final class HandleRegistry<Object: AnyObject>: @unchecked Sendable {
    private var objects: [UInt: Object] = [:]
    private var nextID: UInt = 1
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let kind: String

    init(kind: String) {
        self.kind = kind
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }

    /// Registers `object` and returns its new handle.
    func insert(_ object: Object) -> OpaquePointer {
        locked {
            let id = nextID
            nextID += 1
            objects[id] = object
            // Shifted so the value looks like an aligned pointer and is never NULL.
            return OpaquePointer(bitPattern: id << 4)!
        }
    }

    /// The live object behind `handle`.
    func lookup(_ handle: OpaquePointer?) throws -> Object {
        guard let handle else { throw CompresSAEError(.invalidHandle, "the \(kind) handle is NULL") }
        let bits = UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(handle)))
        let object = locked { bits & 0xF == 0 ? objects[bits >> 4] : nil }
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
        _ = locked { bits & 0xF == 0 ? objects.removeValue(forKey: bits >> 4) : nil }
    }
}

let modelHandles = HandleRegistry<CompresSAEModel>(kind: "model")
