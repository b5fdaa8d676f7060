import CCompresSAE

// The C ABI of training from a row source: data read through the caller's
// callbacks a batch at a time (larger than memory, or converted per batch).

/// Fills a caller's csae_row_source (its first struct_size bytes) with the
/// defaults: kind CSAE_SOURCE_ROWS, block_rows 1, max_validation_rows 16384,
/// rows 0 and no callbacks (set rows and read_rows, or kind
/// CSAE_SOURCE_STREAM and read_stream). csae_row_source_defaults() calls it
/// with the caller's sizeof.
/// @param source       the struct to fill
/// @param struct_size  sizeof(csae_row_source) in the caller's header
/// @return CSAE_OK, or CSAE_ERR_INVALID_ARGUMENT (NULL, a struct_size this
///         library cannot fill)
@c public func csae_row_source_init(_ source: UnsafeMutablePointer<csae_row_source>?, _ struct_size: UInt32) -> Int32 {
    withStatus { try csae_row_source.write(.defaults, to: source, size: struct_size) }
}

/// Trains the model on rows read through source's callback, a batch at a
/// time, with the settings and results of csae_model_train: memory is bounded
/// by the batch (and, for a stream, max_validation_rows), not the data.
/// CSAE_SOURCE_ROWS with block_rows 1 gives the results of csae_model_train
/// on the same rows, bit for bit; longer blocks let the reader read each
/// batch as a few sequential runs (see csae_row_source.block_rows), and the
/// held-out rows are params->validation_fraction of the blocks.
/// CSAE_SOURCE_STREAM trains in the stream's order, one pass per epoch
/// (params->shuffle has no effect); held out are the rows at positions a
/// seeded hash selects with probability validation_fraction, at most
/// max_validation_rows of them, kept in memory from the first pass and
/// skipped in the later ones: every pass must give the same rows in the
/// same order (a pass of another length is CSAE_ERR_INVALID_ARGUMENT). The
/// steps of a stream are known when its first pass ends: until then the
/// progress callback's total is 0, and CSAE_LR_COSINE / CSAE_LR_LINEAR are
/// refused. Every row read is checked (finite, not all zero): a bad one ends
/// training with CSAE_ERR_INVALID_ARGUMENT naming it.
/// @param source  the rows; its callback is called on this thread, with no
///                lock of the model held
/// @param params  settings, or NULL for csae_train_default_params()
/// @return as csae_model_train; when the callback returns non-zero, training
///         stops (the steps done are kept) and this returns that value if it
///         is a csae_status, else CSAE_ERR_IO
@c public func csae_model_train_source(
    _ model: OpaquePointer?, _ source: UnsafePointer<csae_row_source>?,
    _ params: UnsafePointer<csae_train_params>?
) -> Int32 {
    withStatus {
        let m = try modelHandles.lookup(model)
        guard let source else { throw CompresSAEError.invalid("source is NULL") }
        let s = try csae_row_source.read(source)
        let p = try csae_train_params.read(params)
        let options = try TrainingOptions(p)
        let callback = p.progress, userData = p.user_data
        let progress = callback.map { fn in
            { (step: Int, total: Int, loss: Float) in fn(userData, Int64(step), Int64(total), loss) == 0 }
        }
        switch s.kind {
        case Int32(CSAE_SOURCE_ROWS.rawValue):
            guard let read = s.read_rows else { throw CompresSAEError.invalid("source.read_rows is NULL") }
            guard s.rows >= 1 && s.rows <= Int64(Int.max / 16) else {
                throw CompresSAEError.invalid("source.rows must be in 1...\(Int.max / 16), got \(s.rows)")
            }
            guard s.block_rows >= 1 else { throw CompresSAEError.invalid("source.block_rows must be >= 1, got \(s.block_rows)") }
            let reader = CallbackRows(read: read, userData: s.user_data, rowCount: Int(s.rows))
            try m.train(rows: reader, blockRows: Int(min(s.block_rows, s.rows)), options: options, progress: progress)
        case Int32(CSAE_SOURCE_STREAM.rawValue):
            guard let read = s.read_stream else { throw CompresSAEError.invalid("source.read_stream is NULL") }
            guard s.max_validation_rows >= 0 && s.max_validation_rows <= Int64(Int32.max) else {
                throw CompresSAEError.invalid("source.max_validation_rows must be in 0...\(Int32.max), got \(s.max_validation_rows)")
            }
            try m.train(stream: CallbackStream(read: read, userData: s.user_data),
                        maxValidationRows: Int(s.max_validation_rows), options: options, progress: progress)
        default:
            throw CompresSAEError.invalid("source.kind must be CSAE_SOURCE_ROWS or CSAE_SOURCE_STREAM, got \(s.kind)")
        }
    }
}

/// A callback's non-zero return as the error that ends training.
private func sourceError(_ status: Int32) -> CompresSAEError {
    let kind = CompresSAEError.Kind(rawValue: status) ?? .io
    return CompresSAEError(kind, "the row source's read callback returned \(status)")
}

/// `RowReader` over a csae_read_rows_fn.
private struct CallbackRows: RowReader {
    let read: csae_read_rows_fn
    let userData: UnsafeMutableRawPointer?
    let rowCount: Int

    func read(_ ranges: UnsafeBufferPointer<RowRange>, into out: UnsafeMutablePointer<Float>) throws {
        // RowRange and csae_row_range are both two 64-bit integers, start then count.
        let status = UnsafeRawPointer(ranges.baseAddress!).withMemoryRebound(
            to: csae_row_range.self, capacity: ranges.count
        ) { read(userData, $0, Int64(ranges.count), out) }
        guard status == 0 else { throw sourceError(status) }
    }
}

/// `RowStream` over a csae_read_stream_fn.
private struct CallbackStream: RowStream {
    let read: csae_read_stream_fn
    let userData: UnsafeMutableRawPointer?

    func read(position: Int, count: Int, into out: UnsafeMutablePointer<Float>) throws -> Int {
        var rows: Int64 = -1
        let status = read(userData, Int64(position), Int64(count), out, &rows)
        guard status == 0 else { throw sourceError(status) }
        guard rows >= 0 && rows <= Int64(count) else {
            throw CompresSAEError.invalid("the row source's read_stream stored \(rows) rows read, asked for at most \(count)")
        }
        return Int(rows)
    }
}
