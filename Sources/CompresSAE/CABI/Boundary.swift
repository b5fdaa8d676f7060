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

/// The largest element count a size argument may give: a count of 8-byte
/// elements whose byte size still fits in an Int.
let maxElementCount = Int64(Int.max / 8)

/// Checks a pointer argument and its element count.
func requireBuffer<T>(_ pointer: UnsafePointer<T>?, _ name: String, count: Int64, _ what: String) throws -> UnsafeBufferPointer<T> {
    guard let pointer else { throw CompresSAEError.invalid("\(name) is NULL") }
    guard count >= 0, count <= maxElementCount else {
        throw CompresSAEError.invalid("\(name): invalid size \(count) (\(what))")
    }
    return UnsafeBufferPointer(start: pointer, count: Int(count))
}

func requireMutableBuffer<T>(_ pointer: UnsafeMutablePointer<T>?, _ name: String, count: Int64, _ what: String) throws -> UnsafeMutableBufferPointer<T> {
    guard let pointer else { throw CompresSAEError.invalid("\(name) is NULL") }
    guard count >= 0, count <= maxElementCount else {
        throw CompresSAEError.invalid("\(name): invalid size \(count) (\(what))")
    }
    return UnsafeMutableBufferPointer(start: pointer, count: Int(count))
}

/// `rows x cols` as an element count, refusing non-positive or overflowing sizes.
func elementCount(rows: Int64, cols: Int64, rowsName: String = "n", colsName: String) throws -> Int64 {
    guard rows >= 1 else { throw CompresSAEError.invalid("\(rowsName) must be >= 1, got \(rows)") }
    guard cols >= 1 else { throw CompresSAEError.invalid("\(colsName) must be >= 1, got \(cols)") }
    let (product, overflow) = rows.multipliedReportingOverflow(by: cols)
    guard !overflow, product <= maxElementCount else {
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

/// An Int64 size argument as Int, refusing values below 1 or above Int32.max.
func intArgument(_ value: Int64, _ name: String) throws -> Int {
    guard value >= 1 else { throw CompresSAEError.invalid("\(name) must be >= 1, got \(value)") }
    guard value <= Int64(Int32.max) else { throw CompresSAEError.invalid("\(name) = \(value) is too large") }
    return Int(value)
}

/// An Int64 count argument as Int, refusing values outside 0...Int32.max.
func nonNegative(_ value: Int64, _ name: String) throws -> Int {
    guard value >= 0 && value <= Int64(Int32.max) else {
        throw CompresSAEError.invalid("\(name) must be in 0...\(Int32.max), got \(value)")
    }
    return Int(value)
}

/// A num_threads argument or field: >= 1 for that many workers, 0 for the
/// process-wide default (resolved by the call that runs the work).
func threadsArgument(_ value: Int32) throws -> Int {
    guard value >= 0 else { throw CompresSAEError.invalid("num_threads must be >= 0 (0 for the default), got \(value)") }
    return Int(value)
}

/// Checks n and d of a dense input against the model; returns n*d.
func checkedInput(_ m: CompresSAEModel, n: Int64, d: Int64) throws -> Int64 {
    guard d == Int64(m.inputDim) else {
        throw CompresSAEError.invalid("x has \(d) columns, the model's input_dim is \(m.inputDim)")
    }
    return try elementCount(rows: n, cols: d, colsName: "d")
}

/// Checks that `rows` rows of `cols` entries fit in a caller's output
/// buffers of `capacity` elements each; returns the element count.
func requireCapacity(_ capacity: Int64, rows: Int64, cols: Int64, _ what: String) throws -> Int64 {
    let needed = try elementCount(rows: rows, cols: cols, colsName: "columns")
    guard capacity >= needed else {
        throw CompresSAEError.invalid("capacity \(capacity) is too small for \(what): \(rows) x \(cols) = \(needed) elements")
    }
    return needed
}
