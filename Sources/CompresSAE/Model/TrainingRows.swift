/// A run of contiguous rows of the training data: `start ..< start + count`.
public struct RowRange: Sendable, Equatable, BitwiseCopyable {
    /// First row.
    public var start: Int
    /// Number of rows.
    public var count: Int

    public init(start: Int, count: Int) {
        self.start = start
        self.count = count
    }
}

/// Training data that can be read at any position, for data that is not one
/// in-memory buffer (a file, a memory map, rows converted from another type).
///
/// The training loop reads each batch with one `read` call: the batch's rows
/// as runs of contiguous rows, so that a reader of a file can read each run
/// sequentially. `CompresSAEModel.train(rows:blockRows:)` chooses how long
/// the runs are.
public protocol RowReader {
    /// Number of rows, `>= 1`; read once, at the start of a training call.
    var rowCount: Int { get }

    /// Copies the rows of `ranges`, one range after the other, into `out`
    /// (`d` floats per row, `d` the model's input dimension). The ranges lie
    /// within `0..<rowCount`; their counts add up to at most a batch.
    ///
    /// - Throws: any error, which ends training (the steps done are kept).
    func read(_ ranges: UnsafeBufferPointer<RowRange>, into out: UnsafeMutablePointer<Float>) throws
}

/// Training data read in order, pass after pass (an iterator over batches
/// that can be restarted), for data that cannot be read by position.
///
/// Each pass must give the same rows in the same order: the held-out
/// validation rows are chosen by position in the first pass and skipped by
/// position in the later ones.
public protocol RowStream {
    /// Copies up to `count` rows into `out` (`d` floats per row), starting at
    /// row `position` of the current pass: 0 starts a new pass, any other
    /// value is where the previous call ended.
    ///
    /// - Returns: rows copied, `1...count`, or 0 when the pass is over.
    /// - Throws: any error, which ends training (the steps done are kept).
    func read(position: Int, count: Int, into out: UnsafeMutablePointer<Float>) throws -> Int
}

/// The rows of one in-memory buffer of `rowCount * d` floats.
struct BufferRows: RowReader {
    let base: UnsafePointer<Float>
    let rowCount: Int
    let d: Int

    /// - Complexity: O(rows read * d).
    func read(_ ranges: UnsafeBufferPointer<RowRange>, into out: UnsafeMutablePointer<Float>) {
        var target = out
        for range in ranges {
            target.update(from: base + range.start * d, count: range.count * d)
            target += range.count * d
        }
    }
}
