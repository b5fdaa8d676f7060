/// Checks of caller data, done once per call before any kernel runs, so that
/// bad input becomes an error message instead of NaN codes or a trap.
enum InputValidation {
    /// Verifies that `x` holds `rows` finite, non-zero rows of `dim` floats.
    /// Rows of extreme scale (whose plain sum of squares under- or overflows)
    /// are accepted: normalisation uses `robustNorm`; a row whose norm itself
    /// exceeds the float range is refused.
    ///
    /// - Throws: `CompresSAEError` naming the first offending row (counted
    ///   from `firstRow`) and column.
    /// - Complexity: O(rows * dim).
    static func checkRows(_ x: UnsafePointer<Float>, rows: Int, dim: Int, what: String = "input",
                          firstRow: Int = 0) throws {
        for i in 0..<rows {
            let row = x + i * dim
            let sumSquares = squaredNorm(row, dim)
            if sumSquares.isFinite && sumSquares > 0 { continue }
            for j in 0..<dim where !row[j].isFinite {
                throw CompresSAEError.invalid("\(what) row \(firstRow + i), column \(j) is \(row[j]): values must be finite")
            }
            if (0..<dim).allSatisfy({ row[$0] == 0 }) {
                throw CompresSAEError.invalid(
                    "\(what) row \(firstRow + i) is all zeros: it has no direction, so it cannot be normalised or encoded")
            }
            // Finite, non-zero, but of extreme scale: robustNorm handles it,
            // as long as the norm itself is a float.
            var wide = 0.0
            for j in 0..<dim { wide += Double(row[j]) * Double(row[j]) }
            guard wide.squareRoot() <= Double(Float.greatestFiniteMagnitude) else {
                throw CompresSAEError.invalid(
                    "\(what) row \(firstRow + i) has norm \(wide.squareRoot()), beyond the float range: scale the rows down")
            }
        }
    }

    /// Verifies a buffer's element count against `rows * cols`.
    static func checkCount(_ count: Int, rows: Int, cols: Int, name: String) throws {
        let (expected, overflow) = rows.multipliedReportingOverflow(by: cols)
        guard !overflow, count == expected else {
            throw CompresSAEError.invalid("\(name) holds \(count) elements, expected \(rows) x \(cols)")
        }
    }

    static func checkRowCount(_ rows: Int) throws {
        guard rows >= 1 else { throw CompresSAEError.invalid("the number of rows must be >= 1, got \(rows)") }
    }

    /// Verifies code supports: `rows * k` latent indices in `0..<latentDim`,
    /// none repeated within a row.
    static func checkSupports(_ indices: UnsafePointer<Int32>, rows: Int, k: Int, latentDim h: Int,
                              what: String = "code") throws {
        // lastRow[j] = the last row that used latent j: one pass per row finds repeats.
        let lastRowBuffer = try FallibleBuffer<Int>(count: h, "the repeated-latent check")
        defer { withExtendedLifetime(lastRowBuffer) {} }
        let lastRow = lastRowBuffer.base
        lastRow.initialize(repeating: -1, count: h)
        for i in 0..<rows {
            let idx = indices + i * k
            for t in 0..<k {
                let j = idx[t]
                guard j >= 0 && Int(j) < h else {
                    throw CompresSAEError.invalid("\(what) row \(i): index \(j) at position \(t) is outside 0..<\(h)")
                }
                guard lastRow[Int(j)] != i else {
                    throw CompresSAEError.invalid("\(what) row \(i): latent \(j) appears twice")
                }
                lastRow[Int(j)] = i
            }
        }
    }
}
