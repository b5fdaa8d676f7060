/// How one training call walks its data: which rows are held out for
/// validation, and the batches of each epoch. The training loop
/// (`CompresSAEModel.runTraining`) is the same for every kind of data; only
/// this differs.
protocol TrainingBatches {
    /// Training rows per epoch; `nil` while unknown (a stream before the end
    /// of its first pass).
    var trainingRows: Int? { get }
    /// Held-out rows; a stream's count is final after its first pass.
    var validationRows: Int { get }
    /// Starts an epoch (shuffling with `rng` when `shuffle`).
    mutating func startEpoch(shuffle: Bool, using rng: inout SeededGenerator) throws
    /// Fills `batch` with the epoch's next training rows, at most `capacity`.
    /// - Returns: rows filled; 0 when the epoch is over.
    mutating func nextBatch(into batch: UnsafeMutablePointer<Float>, capacity: Int,
                            using rng: inout SeededGenerator) throws -> Int
    /// Fills `batch` with the `index`-th batch of held-out rows (`capacity`
    /// rows each, the last may be smaller); called with `index` 0, 1, 2, ...
    /// after each epoch. - Returns: rows filled; 0 past the end.
    mutating func validationBatch(_ index: Int, into batch: UnsafeMutablePointer<Float>, capacity: Int) throws -> Int
}

/// Training batches of data read by position (`RowReader`): the data is cut
/// into blocks of `blockRows` contiguous rows; a seeded random choice of
/// blocks is held out (`validationFraction` of them, at least one when the
/// data has 20 rows or more), and every epoch visits the others in a shuffled order,
/// cutting batches from the rows of consecutive blocks (then, for blocks of
/// more than one row, shuffling the rows within each batch).
///
/// With one-row blocks (`blockRows == 1`) the order is a shuffle of the rows
/// themselves. Longer blocks let a reader of a file read each batch as a few
/// sequential runs instead of one random access per row.
///
/// Memory: the order of the blocks (one `Int` per block) and one range per
/// row of a batch.
struct ShuffledBatches<Reader: RowReader>: TrainingBatches {
    let reader: Reader
    let rows: Int, blockRows: Int, d: Int
    /// Whether every row read is checked (finite, not all zero).
    let checkRows: Bool
    /// Training blocks in this epoch's order.
    private var order: [Int]
    /// Held-out blocks.
    private let heldOut: [Int]
    private let ranges: FallibleBuffer<RowRange>
    private(set) var trainingRows: Int?
    let validationRows: Int
    /// Position of the next row: a block of `order` and a row within it.
    private var cursor = 0, offset = 0
    /// The same for the held-out blocks.
    private var validationCursor = 0, validationOffset = 0

    /// Chooses the held-out blocks with `rng` (`options.validationRows` of
    /// the blocks).
    ///
    /// - Complexity: O(rows / blockRows).
    init(reader: Reader, blockRows: Int, d: Int, batchSize: Int, checkRows: Bool, options: TrainingOptions,
         using rng: inout SeededGenerator) throws {
        self.reader = reader
        rows = reader.rowCount
        self.blockRows = blockRows
        self.d = d
        self.checkRows = checkRows
        let blocks = rows / blockRows + (rows % blockRows == 0 ? 0 : 1)
        // As many blocks as `validationRows` would hold out rows (the same
        // count for one-row blocks), and at least one block of larger data.
        let heldOutBlocks = blockRows == 1 || rows < 20 || blocks < 2 || options.validationFraction == 0
            ? options.validationRows(rows: blocks)
            : min(blocks - 1, max(1, Int((Double(blocks) * options.validationFraction).rounded())))
        var order = try [Int].fallible(count: blocks, "the block order") { order in
            for i in 0..<blocks { order[i] = i }
        }
        // The held-out blocks: a seeded random choice, fixed for the whole call.
        if heldOutBlocks > 0 { order.shuffle(using: &rng) }
        heldOut = Array(order[(blocks - heldOutBlocks)...])
        order.removeLast(heldOutBlocks)
        self.order = order
        // Only the last block may be short.
        let shortfall = blocks * blockRows - rows
        let lastHeldOut = heldOut.contains(blocks - 1)
        validationRows = heldOutBlocks * blockRows - (lastHeldOut ? shortfall : 0)
        trainingRows = rows - validationRows
        ranges = try FallibleBuffer(count: batchSize + 1, "the row ranges of a batch")
    }

    mutating func startEpoch(shuffle: Bool, using rng: inout SeededGenerator) {
        if shuffle { order.shuffle(using: &rng) }
        cursor = 0
        offset = 0
    }

    mutating func nextBatch(into batch: UnsafeMutablePointer<Float>, capacity: Int,
                            using rng: inout SeededGenerator) throws -> Int {
        let count = try fill(batch, capacity: capacity, blocks: order, cursor: &cursor, offset: &offset)
        if blockRows > 1 && count > 1 {
            // Rows of one block are neighbours in the data: spread them over the batch.
            for i in stride(from: count - 1, to: 0, by: -1) {
                let j = Int.random(in: 0...i, using: &rng)
                if i != j { swapRows(batch + i * d, batch + j * d, d) }
            }
        }
        return count
    }

    mutating func validationBatch(_ index: Int, into batch: UnsafeMutablePointer<Float>, capacity: Int) throws -> Int {
        // Called with index 0, 1, 2, ...: the position carries over.
        if index == 0 { validationCursor = 0; validationOffset = 0 }
        return try fill(batch, capacity: capacity, blocks: heldOut, cursor: &validationCursor, offset: &validationOffset)
    }

    private func blockSize(_ block: Int) -> Int { min(blockRows, rows - block * blockRows) }

    /// Reads up to `capacity` rows from `blocks`, from (`cursor`, `offset`) on.
    private func fill(_ batch: UnsafeMutablePointer<Float>, capacity: Int, blocks: [Int],
                      cursor: inout Int, offset: inout Int) throws -> Int {
        var count = 0, rangeCount = 0
        while count < capacity && cursor < blocks.count {
            let block = blocks[cursor]
            let size = blockSize(block)
            let take = min(size - offset, capacity - count)
            ranges.base[rangeCount] = RowRange(start: block * blockRows + offset, count: take)
            rangeCount += 1
            count += take
            offset += take
            if offset == size { cursor += 1; offset = 0 }
        }
        guard count > 0 else { return 0 }
        try reader.read(UnsafeBufferPointer(start: ranges.base, count: rangeCount), into: batch)
        if checkRows {
            var row = batch
            for r in 0..<rangeCount {
                let range = ranges.base[r]
                try InputValidation.checkRows(row, rows: range.count, dim: d, what: "training data", firstRow: range.start)
                row += range.count * d
            }
        }
        return count
    }
}

extension CompresSAEModel {
    /// Held-out rows a stream keeps by default (`train(stream:maxValidationRows:)`):
    /// enough for a validation loss that moves little between epochs, at 24 MB
    /// for d = 384.
    public static let defaultMaxValidationRows = 16384
}

/// Training batches of a stream (`RowStream`), read in its order pass after
/// pass. Held out: the rows at positions that a seeded hash selects with
/// probability `validationFraction`, up to `maxValidationRows` of them (the
/// first such positions of a pass); they are copied aside during the first
/// pass and skipped by position in the later ones.
///
/// Memory: one batch, and the held-out rows (`maxValidationRows * d` floats at most).
struct StreamBatches<Stream: RowStream>: TrainingBatches {
    let stream: Stream
    let d: Int
    private let threshold: UInt64, hashSeed: UInt64
    private let heldOut: FallibleBuffer<Float>?
    private let maxHeldOut: Int
    private(set) var trainingRows: Int?
    private(set) var validationRows = 0
    /// Rows in a pass (known after the first), the last held-out position.
    private var passRows: Int? = nil, lastHeldOut = -1
    private var pass = 0, position = 0, passEnded = false

    init(stream: Stream, d: Int, maxValidationRows: Int, options: TrainingOptions) throws {
        self.stream = stream
        self.d = d
        let fraction = options.validationFraction
        maxHeldOut = fraction > 0 ? maxValidationRows : 0
        threshold = fraction >= 1 ? .max : UInt64(fraction * 0x1p64)
        hashSeed = options.seed ^ 0x5DEE_CE66_D1CE_4E5B
        heldOut = maxHeldOut > 0
            ? try FallibleBuffer(count: try Size.product(maxHeldOut, d, what: "the held-out rows"),
                                 "the held-out validation rows (\(maxHeldOut) x \(d) floats)")
            : nil
    }

    /// Whether the row at `position` of a pass is one the hash selects.
    private func selected(_ position: Int) -> Bool {
        var z = hashSeed &+ UInt64(truncatingIfNeeded: position) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return (z ^ (z >> 31)) < threshold
    }

    mutating func startEpoch(shuffle: Bool, using rng: inout SeededGenerator) {
        pass += 1
        position = 0
        passEnded = false
    }

    mutating func nextBatch(into batch: UnsafeMutablePointer<Float>, capacity: Int,
                            using rng: inout SeededGenerator) throws -> Int {
        var count = 0
        while count < capacity && !passEnded {
            let wanted = capacity - count
            let got = try stream.read(position: position, count: wanted, into: batch + count * d)
            guard got >= 0 && got <= wanted else {
                throw CompresSAEError.invalid("the row stream returned \(got) rows when asked for at most \(wanted)")
            }
            if got == 0 { passEnded = true }
            try InputValidation.checkRows(batch + count * d, rows: got, dim: d, what: "training data", firstRow: position)
            // Keep the training rows, move the held-out ones aside (first pass) or drop them.
            var kept = count
            for r in 0..<got {
                let p = position + r
                let row = batch + (count + r) * d
                if maxHeldOut > 0 && selected(p) {
                    if pass == 1 && validationRows < maxHeldOut {
                        (heldOut!.base + validationRows * d).update(from: row, count: d)
                        validationRows += 1
                        lastHeldOut = p
                        continue
                    }
                    if p <= lastHeldOut { continue }
                }
                if kept != count + r { (batch + kept * d).update(from: row, count: d) }
                kept += 1
            }
            count = kept
            position += got
            if let passRows, position > passRows || (passEnded && position != passRows) {
                throw CompresSAEError.invalid(
                    "the row stream gave \(passRows) rows in its first pass and \(passEnded ? "\(position)" : "more") in pass \(pass): every pass must give the same rows")
            }
        }
        if passEnded && passRows == nil {
            passRows = position
            trainingRows = position - validationRows
            guard position > validationRows else {
                throw CompresSAEError.invalid(
                    position == 0 ? "the row stream gave no rows"
                                  : "the row stream's \(position) rows were all held out for validation: no training rows")
            }
        }
        return count
    }

    mutating func validationBatch(_ index: Int, into batch: UnsafeMutablePointer<Float>, capacity: Int) -> Int {
        let first = index * capacity
        guard let heldOut, first < validationRows else { return 0 }
        let count = min(capacity, validationRows - first)
        batch.update(from: heldOut.base + first * d, count: count * d)
        return count
    }
}

@inline(__always)
private func swapRows(_ a: UnsafeMutablePointer<Float>, _ b: UnsafeMutablePointer<Float>, _ d: Int) {
    for c in 0..<d { let t = a[c]; a[c] = b[c]; b[c] = t }
}
