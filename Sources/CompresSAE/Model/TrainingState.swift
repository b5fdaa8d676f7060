import CCompresSAE

#if canImport(Glibc)
import Glibc
#endif

/// Per-step scalars of Adam (the C kernel's struct), computed in Double and
/// rounded once, as PyTorch does with its Python-float hyperparameters.
typealias AdamScalars = csae_adam_scalars

extension csae_adam_scalars {
    init(options: TrainingOptions, step: Int, learningRate: Double? = nil) {
        let t = Double(step)
        self.init(
            one_minus_beta1: Float(1 - options.beta1), beta2: Float(options.beta2),
            one_minus_beta2: Float(1 - options.beta2), eps: Float(options.eps),
            step_size: Float((learningRate ?? options.learningRate) / (1 - pow(options.beta1, t))),
            correction2_sqrt: Float((1 - pow(options.beta2, t)).squareRoot()))
    }
}

/// Adam's moments for the three parameters (internal `[h,d]` layouts).
final class AdamState {
    struct Pointers: @unchecked Sendable {
        let encoderT, encoderTSq, bias, biasSq, decoder, decoderSq: UnsafeMutablePointer<Float>
    }

    /// One zeroed allocation holding all six moments.
    private let storage: FallibleBuffer<Float>
    let pointers: Pointers
    var step = 0

    init(h: Int, d: Int) throws(CompresSAEError) {
        let hd = try Size.product(h, d, what: "Adam's moments")
        storage = try FallibleBuffer(count: try Size.product(2, try Size.sum(2 * hd, h, what: "Adam's moments"),
                                                             what: "Adam's moments"),
                                     zeroed: true, "Adam's moments (4 x \(h) x \(d) floats)")
        let base = storage.base
        pointers = Pointers(encoderT: base, encoderTSq: base + hd, bias: base + 2 * hd, biasSq: base + 2 * hd + h,
                            decoder: base + 2 * hd + 2 * h, decoderSq: base + 3 * hd + 2 * h)
    }
}

/// What the row phase of a training step leaves for the latent phase, for a
/// batch of up to `rows` rows. O(b (d + k)) floats: no `[b,h]` array.
final class StepBuffers {
    struct Pointers: @unchecked Sendable {
        /// `[b,d]` normalised inputs.
        let normalized: UnsafeMutablePointer<Float>
        /// `[b,4k]` selected latents per row, best first (the first k are the k-code).
        let selected: UnsafeMutablePointer<Int32>
        /// `[b,4k]` their pre-activation values.
        let values: UnsafeMutablePointer<Float>
        /// `[b,4k]` d(loss)/d(pre-activation) of each selected entry.
        let gPre: UnsafeMutablePointer<Float>
        /// `[b,d]` d(loss)/d(code value) direction for k-code entries (both reconstructions).
        let upstreamK: UnsafeMutablePointer<Float>
        /// `[b,d]` the same for the other 3k entries (4k reconstruction only).
        let upstream4k: UnsafeMutablePointer<Float>
        /// `[blocks+1]` start of each latent block's entries in `blockEntries`.
        let blockStart: UnsafeMutablePointer<Int>
        /// `[b*4k]` the selected entries grouped by latent block, rows ascending within each.
        let blockEntries: UnsafeMutablePointer<csae_block_entry>
    }

    private let floats: FallibleBuffer<Float>
    private let selectedBuffer: FallibleBuffer<Int32>
    private let blockStartBuffer: FallibleBuffer<Int>
    private let blockEntryBuffer: FallibleBuffer<csae_block_entry>
    /// Per latent block, where its next entry goes while entries are grouped.
    private let blockCursorBuffer: FallibleBuffer<Int>
    /// Per chunk of rows of the row phase, its loss sums.
    private let chunkSumBuffer: FallibleBuffer<LossSums>
    /// Per worker of the latent phase, a block's gradient accumulators.
    private let latentAccumulatorBuffer: FallibleBuffer<Float>
    let pointers: Pointers
    let d: Int, h: Int, m: Int
    /// Latents per block of the latent phase, a power of two (`1 <<
    /// latentBlockShift`): their gradient accumulators (`2 d + 1` floats
    /// each) take at most `maxLatentBlockBytes`. Every block reads the
    /// batch's rows once more, and those passes cost more than accumulators
    /// that spill from L2 into L3, so blocks are sized past L2
    /// (benchmarks/train_step_ab.py measures the choice).
    let latentBlockShift: Int
    /// The most bytes of gradient accumulators a latent block may take.
    static let maxLatentBlockBytes = 1600 * 1024
    /// Bounds of `latentBlockShift`: at least 8 latents per block, at most 2^20.
    static let latentBlockShifts = 3...20
    var latentBlockSize: Int { 1 << latentBlockShift }
    /// Number of latent blocks.
    var latentBlocks: Int { (h + latentBlockSize - 1) >> latentBlockShift }
    /// Per-worker encoder scratch, kept for the whole training run so that
    /// steps do not map and fault in fresh pages.
    let encoderScratch: [CompresSAEModel.EncoderScratch]
    /// The similarity term's buffers, made on its first use.
    private var similarity: SimilarityWorkspace?

    /// - Throws: `outOfMemory` when the buffers cannot be allocated.
    init(rows: Int, d: Int, h: Int, m: Int, workers: Int) throws(CompresSAEError) {
        self.d = d
        self.h = h
        self.m = m
        var shift = Self.latentBlockShifts.lowerBound
        while shift < Self.latentBlockShifts.upperBound
                && (1 << (shift + 1)) * MemoryLayout<Float>.stride * (2 * d + 1) <= Self.maxLatentBlockBytes
                && (1 << shift) < h {
            shift += 1
        }
        latentBlockShift = shift
        let blocks = (h + (1 << shift) - 1) >> shift
        let what = "training buffers for batches of \(rows) rows"
        let bd = try Size.product(rows, d, what: what), bm = try Size.product(rows, m, what: what)
        floats = try FallibleBuffer(count: try Size.product(3, try Size.sum(bd, bm, what: what), what: what), what)
        selectedBuffer = try FallibleBuffer(count: bm, what)
        blockStartBuffer = try FallibleBuffer(count: blocks + 1, what)
        blockEntryBuffer = try FallibleBuffer(count: bm, what)
        blockCursorBuffer = try FallibleBuffer(count: blocks, what)
        let f = floats.base
        pointers = Pointers(
            normalized: f, selected: selectedBuffer.base, values: f + bd, gPre: f + bd + bm,
            upstreamK: f + bd + 2 * bm, upstream4k: f + 2 * bd + 2 * bm,
            blockStart: blockStartBuffer.base, blockEntries: blockEntryBuffer.base)
        let chunkRows = min(encoderChunkRows, rows)
        let chunks = (rows + chunkRows - 1) / chunkRows
        chunkSumBuffer = try FallibleBuffer(count: chunks, what)
        latentWorkers = max(1, min(workers, blocks))
        latentAccumulatorBuffer = try FallibleBuffer(
            count: try Size.product(latentWorkers, 1 << shift, try Size.sum(2 * d, 1, what: what), what: what), what)
        var scratch: [CompresSAEModel.EncoderScratch] = []
        for _ in 0..<max(1, min(workers, chunks)) {
            scratch.append(try CompresSAEModel.EncoderScratch(chunkRows: chunkRows, d: d, h: h))
        }
        encoderScratch = scratch
    }

    /// Workers the latent phase has accumulators for.
    let latentWorkers: Int

    /// Per chunk of `encoderChunkRows` rows of a batch, its loss sums (row phase).
    var chunkSums: UnsafeMutablePointer<LossSums> { chunkSumBuffer.base }

    /// The gradient accumulators of latent-phase worker `w` (`0..<latentWorkers`):
    /// `latentBlockSize * (2 d + 1)` floats.
    ///
    /// Complexity: O(1).
    func latentAccumulators(worker w: Int) -> UnsafeMutablePointer<Float> {
        latentAccumulatorBuffer.base + w * latentBlockSize * (2 * d + 1)
    }

    /// Buffers for the similarity term over `rows` rows, kept for later steps
    /// (remade only when a larger size is asked for).
    func similarityWorkspace(rows: Int, k: Int, workers: Int) throws(CompresSAEError) -> SimilarityWorkspace {
        if let w = similarity, w.rows >= rows, w.k == k, w.workers >= workers { return w }
        let w = try SimilarityWorkspace(rows: rows, k: k, h: h, workers: workers)
        similarity = w
        return w
    }

    /// Groups the selected entries of `rows` rows by latent block (a counting
    /// sort, rows ascending within each block), writing what the latent
    /// phase reads of each entry; `blockStart[block]` is where a block's
    /// entries begin in `blockEntries`.
    ///
    /// - Complexity: O(rows * 4k + blocks).
    func groupEntriesByLatentBlock(rows: Int, k: Int) {
        let p = pointers
        let blocks = latentBlocks, shift = latentBlockShift, mask = latentBlockSize - 1
        p.blockStart.initialize(repeating: 0, count: blocks + 1)
        for e in 0..<(rows * m) { p.blockStart[(Int(p.selected[e]) >> shift) + 1] += 1 }
        for block in 0..<blocks { p.blockStart[block + 1] += p.blockStart[block] }
        let cursor = blockCursorBuffer.base
        cursor.update(from: p.blockStart, count: blocks)
        for i in 0..<rows {
            for t in 0..<m {
                let e = i * m + t
                let latent = Int(p.selected[e])
                let block = latent >> shift
                p.blockEntries[cursor[block]] = csae_block_entry(
                    row_code: Int32(truncatingIfNeeded: 2 * i + (t < k ? 1 : 0)),
                    local: Int32(truncatingIfNeeded: latent & mask), g: p.gPre[e], v: p.values[e])
                cursor[block] += 1
            }
        }
    }
}

/// Loss sums of a chunk of rows, in Double so that summing many rows loses nothing.
struct LossSums {
    var l2 = 0.0, l2_4k = 0.0, l1 = 0.0, l0 = 0.0, cosine = 0.0, cosine4k = 0.0

    mutating func add(_ o: LossSums) {
        l2 += o.l2; l2_4k += o.l2_4k; l1 += o.l1; l0 += o.l0; cosine += o.cosine; cosine4k += o.cosine4k
    }

    func report(rows: Int, dim: Int) -> LossReport {
        var r = LossReport()
        let b = Double(rows)
        r.l2 = Float(l2 / (b * Double(dim)))
        r.l2_4k = Float(l2_4k / (b * Double(dim)))
        r.l1 = Float(l1 / b)
        r.l0 = Float(l0 / b)
        r.cosine = Float(cosine / b)
        r.cosine4k = Float(cosine4k / b)
        r.loss = Float(cosine / b + cosine4k / b / 8)
        return r
    }
}
