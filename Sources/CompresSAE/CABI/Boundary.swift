import CCompresSAE

/// Runs `body` and turns its outcome into a C status: 0 on success; on a
/// thrown error, the error's code, with its message stored for
/// `csae_last_error()`. Nothing escapes as a Swift error or a trap.
@inline(__always)
func withStatus(_ body: () throws -> Void) -> Int32 {
    do {
        try body()
        csae_internal_set_error(nil)
        return 0
    } catch let error as CompresSAEError {
        csae_internal_set_error(error.message)
        return error.kind.rawValue
    } catch {
        csae_internal_set_error("unexpected error: \(error)")
        return CompresSAEError.Kind.invalidArgument.rawValue
    }
}

/// Checks a pointer argument and its element count (`count * multiplier`).
func requireBuffer<T>(_ pointer: UnsafePointer<T>?, _ name: String, count: Int64, _ what: String) throws -> UnsafeBufferPointer<T> {
    guard let pointer else { throw CompresSAEError.invalid("\(name) is NULL") }
    guard count >= 0, count <= Int64(Int.max / 8) else {
        throw CompresSAEError.invalid("\(name): invalid size \(count) (\(what))")
    }
    return UnsafeBufferPointer(start: pointer, count: Int(count))
}

func requireMutableBuffer<T>(_ pointer: UnsafeMutablePointer<T>?, _ name: String, count: Int64, _ what: String) throws -> UnsafeMutableBufferPointer<T> {
    guard let pointer else { throw CompresSAEError.invalid("\(name) is NULL") }
    guard count >= 0, count <= Int64(Int.max / 8) else {
        throw CompresSAEError.invalid("\(name): invalid size \(count) (\(what))")
    }
    return UnsafeMutableBufferPointer(start: pointer, count: Int(count))
}

/// `rows x cols` as an element count, refusing non-positive or overflowing sizes.
func elementCount(rows: Int64, cols: Int64, rowsName: String = "n", colsName: String) throws -> Int64 {
    guard rows >= 1 else { throw CompresSAEError.invalid("\(rowsName) must be >= 1, got \(rows)") }
    guard cols >= 1 else { throw CompresSAEError.invalid("\(colsName) must be >= 1, got \(cols)") }
    let (product, overflow) = rows.multipliedReportingOverflow(by: cols)
    guard !overflow, product <= Int64(Int.max / 8) else {
        throw CompresSAEError.invalid("\(rowsName) x \(colsName) = \(rows) x \(cols) is too large")
    }
    return product
}

func requirePath(_ path: UnsafePointer<CChar>?) throws -> String {
    guard let path else { throw CompresSAEError.invalid("path is NULL") }
    let s = String(cString: path)
    guard !s.isEmpty else { throw CompresSAEError.invalid("path is empty") }
    return s
}
