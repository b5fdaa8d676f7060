import Testing
import CCompresSAE
@testable import CompresSAE

/// A reader over an array that records the ranges of every read.
private final class RecordingReader: RowReader, @unchecked Sendable {
    let x: [Float], d: Int
    var reads: [[RowRange]] = []
    var failAfter = Int.max

    init(_ x: [Float], d: Int) { self.x = x; self.d = d }
    var rowCount: Int { x.count / d }

    func read(_ ranges: UnsafeBufferPointer<RowRange>, into out: UnsafeMutablePointer<Float>) throws {
        guard reads.count < failAfter else { throw CompresSAEError.invalid("reader failed on purpose") }
        reads.append(Array(ranges))
        var target = out
        for r in ranges {
            x.withUnsafeBufferPointer { target.update(from: $0.baseAddress! + r.start * d, count: r.count * d) }
            target += r.count * d
        }
    }
}

/// A stream over an array, pass after pass, in pieces of at most `piece` rows.
private final class ArrayStream: RowStream, @unchecked Sendable {
    let x: [Float], d: Int, piece: Int
    var passes = 0
    /// Rows of each pass after the first (to test a stream that changes).
    var laterRows: Int? = nil

    init(_ x: [Float], d: Int, piece: Int) { self.x = x; self.d = d; self.piece = piece }

    func read(position: Int, count: Int, into out: UnsafeMutablePointer<Float>) throws -> Int {
        if position == 0 { passes += 1 }
        let rows = passes > 1 ? (laterRows ?? x.count / d) : x.count / d
        let n = min(count, piece, rows - position)
        // Pieces shorter than asked for: the loop asks again until it gets 0.
        x.withUnsafeBufferPointer { out.update(from: $0.baseAddress! + position * d, count: n * d) }
        return n
    }
}

private func bits(_ v: [Float]) -> [UInt32] { v.map(\.bitPattern) }

@Suite("Training from row sources")
struct TrainingSourceTests {
    @Test("a reader of one-row blocks trains bit for bit as the in-memory rows")
    func readerEqualsMemory() throws {
        let (x, d) = try Fixtures.realEmbeddings(rows: 1200)
        var options = TrainingOptions()
        options.batchSize = 100
        options.epochs = 3
        options.seed = 9
        options.validationSteps = 0   // one validation per epoch
        let a = try CompresSAEModel(inputDim: d, latentDim: 512, k: 8, seed: 4)
        let b = try CompresSAEModel(inputDim: d, latentDim: 512, k: 8, seed: 4)
        let ha = try a.train(x, rows: 1200, options: options)
        let reader = RecordingReader(x, d: d)
        let hb = try b.train(rows: reader, options: options)
        #expect(bits(ha) == bits(hb))
        #expect(bits(a.validationHistory) == bits(b.validationHistory))
        #expect(a.validationHistory.count == 3)
        #expect(bits(a.decoderWeights) == bits(b.decoderWeights))
        #expect(bits(a.encoderWeights) == bits(b.encoderWeights))
        // One read per step and per validation batch (60 held-out rows: one batch per epoch).
        #expect(reader.reads.count == ha.count + 3)
    }

    @Test("blocks are read as contiguous runs, held out whole, and every training row is used once per epoch")
    func blocks() throws {
        let (x, d) = try Fixtures.realEmbeddings(rows: 1003)
        var options = TrainingOptions.reference
        options.batchSize = 128
        options.epochs = 2
        options.validationFraction = 0.1
        let model = try CompresSAEModel(inputDim: d, latentDim: 256, k: 8, seed: 1)
        let reader = RecordingReader(x, d: d)
        let history = try model.train(rows: reader, blockRows: 10, options: options)
        // 101 blocks (the last of 3 rows), 10 held out: 903 or 910 training rows, 8 steps per epoch.
        #expect(history.count == 16)
        #expect(model.validationHistory.count == 2)
        // Reads: epoch 1's steps, its held-out batch, epoch 2's steps, its held-out batch.
        #expect(reader.reads.count == 18)
        func rows(_ reads: ArraySlice<[RowRange]>) -> [Int] {
            reads.flatMap { $0.flatMap { Array($0.start..<($0.start + $0.count)) } }
        }
        for ranges in reader.reads {
            // A run never crosses a block boundary.
            for r in ranges { #expect(r.start / 10 == (r.start + r.count - 1) / 10) }
        }
        let heldOut = rows(reader.reads[8...8])
        #expect(heldOut == rows(reader.reads[17...17]))
        #expect(heldOut.count == 100 || heldOut.count == 93)
        #expect(Set(heldOut.map { $0 / 10 }).count == 10)
        for epoch in [reader.reads[0..<8], reader.reads[9..<17]] {
            let trained = rows(epoch)
            #expect(trained.count == 1003 - heldOut.count)
            #expect(Set(trained).union(heldOut) == Set(0..<1003))
            #expect(Set(trained).count == trained.count)
        }
    }

    @Test("a bad row or a failing reader ends training with its error; the steps done are kept")
    func readerErrors() throws {
        var (x, d) = try Fixtures.realEmbeddings(rows: 400)
        var options = TrainingOptions.reference
        options.batchSize = 100
        options.shuffle = false
        let model = try CompresSAEModel(inputDim: d, latentDim: 256, k: 8, seed: 1)
        let failing = RecordingReader(x, d: d)
        failing.failAfter = 2
        let error = #expect(throws: CompresSAEError.self) { try model.train(rows: failing, options: options) }
        #expect(error?.message == "reader failed on purpose")
        #expect(model.lossHistory.count == 2)
        for c in 0..<d { x[250 * d + c] = 0 }
        let zero = #expect(throws: CompresSAEError.self) { try model.train(rows: RecordingReader(x, d: d), options: options) }
        #expect(zero?.message.contains("training data row 250 is all zeros") == true)
        #expect(throws: CompresSAEError.self) { try model.train(rows: RecordingReader(x, d: d), blockRows: 0) }
    }

    @Test("a stream trains pass after pass, holds out a bounded sample, and stops early on a plateau")
    func stream() throws {
        let (x, d) = try Fixtures.realEmbeddings(rows: 1000)
        var options = TrainingOptions()
        options.batchSize = 128
        options.epochs = 3
        options.validationFraction = 0.1
        options.validationSteps = 0   // one validation per epoch
        let model = try CompresSAEModel(inputDim: d, latentDim: 256, k: 8, seed: 1)
        let stream = ArrayStream(x, d: d, piece: 77)
        var totals: [Int] = []
        let history = try model.train(stream: stream, maxValidationRows: 50, options: options) { _, total, _ in
            totals.append(total)
            return true
        }
        // 50 rows held out (the cap), 950 trained on: 8 steps per epoch.
        #expect(history.count == 24)
        #expect(stream.passes == 3)
        #expect(model.validationHistory.count == 3)
        // The total is unknown (0) until the end of the first pass is seen.
        #expect(totals.last == 24)
        #expect(totals.first == 0)
        #expect(history.allSatisfy { $0.isFinite })

        // Without a cap, about 10% is held out.
        let uncapped = try model.train(stream: ArrayStream(x, d: d, piece: 1000), options: options)
        #expect(uncapped.count == 3 * 7 || uncapped.count == 3 * 8)

        // A tolerance no improvement can meet stops `patience` epochs after the first.
        options.epochs = 50
        options.tolerance = 0.99
        options.patience = 1
        options.plateauReductions = 0
        let stopped = try model.train(stream: ArrayStream(x, d: d, piece: 500), maxValidationRows: 50, options: options)
        #expect(model.validationHistory.count == 2)
        #expect(stopped.count == 16)
    }

    @Test("a stream whose passes differ, or that gives nothing, is an error")
    func streamErrors() throws {
        let (x, d) = try Fixtures.realEmbeddings(rows: 300)
        var options = TrainingOptions.reference
        options.batchSize = 64
        options.epochs = 2
        let model = try CompresSAEModel(inputDim: d, latentDim: 256, k: 8, seed: 1)
        let shorter = ArrayStream(x, d: d, piece: 64)
        shorter.laterRows = 250
        let error = #expect(throws: CompresSAEError.self) { try model.train(stream: shorter, options: options) }
        #expect(error?.message.contains("every pass must give the same rows") == true)
        let empty = ArrayStream([], d: d, piece: 64)
        let none = #expect(throws: CompresSAEError.self) { try model.train(stream: empty, options: options) }
        #expect(none?.message.contains("no rows") == true)
    }
}

/// The data a C callback reads: rows of `d` floats.
private final class CallbackData {
    let x: [Float], d: Int
    var failWith: Int32 = 0
    init(_ x: [Float], d: Int) { self.x = x; self.d = d }
}

@Suite("csae_model_train_source")
struct TrainSourceCABITests {
    @Test("rows and streams through C callbacks; a callback's status ends training")
    func callbacks() throws {
        #expect(MemoryLayout<RowRange>.size == MemoryLayout<csae_row_range>.size)
        #expect(MemoryLayout<RowRange>.offset(of: \.count) == MemoryLayout<csae_row_range>.offset(of: \.count))
        let (x, d) = try Fixtures.realEmbeddings(rows: 600)
        let data = CallbackData(x, d: d)
        let user = Unmanaged.passUnretained(data).toOpaque()
        var params = csae_train_default_params()
        params.batch_size = 100
        params.epochs = 2
        params.validation_steps = 0 // a validation after each epoch: the history length below counts them
        func model() -> OpaquePointer? {
            var m: OpaquePointer? = nil
            #expect(csae_model_create(Int64(d), 256, 8, 1, 0, &m) == 0)
            return m
        }
        func weights(_ m: OpaquePointer?) -> [Float] {
            var w = [Float](repeating: 0, count: 256 * d)
            #expect(csae_model_copy_weights(m, nil, 0, nil, 0, &w, Int64(w.count)) == 0)
            return w
        }
        let a = model(), b = model(), c = model()
        defer { csae_model_free(a); csae_model_free(b); csae_model_free(c) }
        #expect(x.withUnsafeBufferPointer { csae_model_train(a, $0.baseAddress, 600, Int64(d), &params) } == 0)

        var rows = csae_row_source_defaults()
        #expect(rows.struct_size == UInt32(MemoryLayout<csae_row_source>.size))
        rows.rows = 600
        rows.user_data = user
        rows.read_rows = { user, ranges, n, out in
            let data = Unmanaged<CallbackData>.fromOpaque(user!).takeUnretainedValue()
            if data.failWith != 0 { return data.failWith }
            var target = out!
            for i in 0..<Int(n) {
                let r = ranges![i]
                data.x.withUnsafeBufferPointer {
                    target.update(from: $0.baseAddress! + Int(r.start) * data.d, count: Int(r.count) * data.d)
                }
                target += Int(r.count) * data.d
            }
            return 0
        }
        #expect(csae_model_train_source(b, &rows, &params) == 0)
        #expect(weights(a).map(\.bitPattern) == weights(b).map(\.bitPattern))

        var stream = csae_row_source_defaults()
        stream.kind = Int32(CSAE_SOURCE_STREAM.rawValue)
        stream.user_data = user
        stream.read_stream = { user, position, count, out, read in
            let data = Unmanaged<CallbackData>.fromOpaque(user!).takeUnretainedValue()
            let n = min(Int(count), 70, data.x.count / data.d - Int(position))
            data.x.withUnsafeBufferPointer { out!.update(from: $0.baseAddress! + Int(position) * data.d, count: n * data.d) }
            read!.pointee = Int64(n)
            return 0
        }
        #expect(csae_model_train_source(c, &stream, &params) == 0)
        var length: Int64 = 0
        #expect(csae_model_copy_history(c, Int32(CSAE_HISTORY_VALIDATION_LOSS.rawValue), nil, 0, &length) == 0)
        #expect(length == 2)

        data.failWith = Int32(CSAE_ERR_CANCELLED.rawValue)
        #expect(csae_model_train_source(b, &rows, &params) == CSAE_ERR_CANCELLED.rawValue)
        data.failWith = 42
        #expect(csae_model_train_source(b, &rows, &params) == CSAE_ERR_IO.rawValue)
        #expect(String(cString: csae_last_error()).contains("returned 42"))
        data.failWith = 0
        var bad = rows
        bad.struct_size = 8
        #expect(csae_model_train_source(b, &bad, &params) == CSAE_ERR_INVALID_ARGUMENT.rawValue)
        bad = rows
        bad.read_rows = nil
        #expect(csae_model_train_source(b, &bad, &params) == CSAE_ERR_INVALID_ARGUMENT.rawValue)
        bad = rows
        bad.kind = 7
        #expect(csae_model_train_source(b, &bad, &params) == CSAE_ERR_INVALID_ARGUMENT.rawValue)
        #expect(csae_model_train_source(b, nil, &params) == CSAE_ERR_INVALID_ARGUMENT.rawValue)
    }
}
