import CCompresSAE

/// `PyTorch's cosine_similarity` clamps each norm at this value (as the
/// reconstruction terms do).
private let auxNormFloor: Float = 1e-8

/// The auxiliary dead-latent term of one training step
/// (`TrainingOptions.deadLatentAuxWeight`), and the buffers it needs.
///
/// A latent that no k-code selects gets no gradient from the
/// reconstruction objective and stays dead. This term gives the dead ones a
/// task of their own: for every row, the top-`auxK` dead latents (by
/// `|pre-activation|`) reconstruct what the row's k-code leaves out,
/// `e = xn - (xn . r / |r|^2) r` (the normalised row minus its projection on
/// the k-code's reconstruction `r`, a constant of the step), and the term is
/// `weight * mean_i (1 - cos(e_i, sum_{j in aux_i} p_ij decoder_w[j]))`.
/// Cosine, like the reconstruction terms, so the term is blind to scale.
/// Its gradient reaches the dead latents' encoder columns, biases and
/// decoder rows only, pulling them towards the directions the live codes
/// miss, where the k-code selection can pick them up again.
///
/// Memory: O(b (auxK + d) + h), made once per training call.
final class DeadLatentWorkspace {
    let weight: Float
    /// Dead latents each row reconstructs its residual from, at most.
    let auxK: Int
    let rows: Int, d: Int, h: Int
    private let ints: FallibleBuffer<Int32>
    private let floats: FallibleBuffer<Float>
    private let blockStartBuffer: FallibleBuffer<Int>
    private let entryBuffer: FallibleBuffer<csae_block_entry>
    /// `[h]` the dead latents of this step, ascending; `deadCount` of them.
    let dead: UnsafeMutablePointer<Int32>
    private(set) var deadCount = 0
    /// The weighted term of the last step that had it (0 when inactive).
    /// The reported losses leave the term out; its gradient tests read it.
    var lastLoss: Float = 0
    /// `[b,auxK]` each row's chosen dead latents (`usedK` per row this step).
    let selected: UnsafeMutablePointer<Int32>
    /// `[b,auxK]` their pre-activations and d(term)/d(pre-activation).
    let values: UnsafeMutablePointer<Float>, gPre: UnsafeMutablePointer<Float>
    /// `[b,d]` d(term)/d(auxiliary reconstruction).
    let upstream: UnsafeMutablePointer<Float>
    /// `[blocks+1]` and `[b*auxK]`: the entries grouped by latent block,
    /// as `StepBuffers` groups the k- and 4k-code entries.
    let blockStart: UnsafeMutablePointer<Int>
    let blockEntries: UnsafeMutablePointer<csae_block_entry>
    /// `[chunks]` each encoder chunk's sum of the term, added in chunk order.
    let chunkSums: UnsafeMutablePointer<Double>
    /// `[chunks, d + h]` each encoder chunk's residual (`d`) and gathered
    /// dead pre-activations (up to `h`).
    let chunkWork: UnsafeMutablePointer<Float>
    private let chunkSumBuffer: FallibleBuffer<Double>
    private let chunkWorkBuffer: FallibleBuffer<Float>

    /// Dead latents each row uses this step: `min(auxK, deadCount)`.
    var usedK: Int { min(auxK, deadCount) }

    init(weight: Float, auxK: Int, rows: Int, d: Int, h: Int, blocks: Int) throws(CompresSAEError) {
        self.weight = weight
        self.auxK = auxK
        self.rows = rows
        self.d = d
        self.h = h
        let what = "the dead-latent term's buffers"
        let bk = try Size.product(rows, auxK, what: what), bd = try Size.product(rows, d, what: what)
        ints = try FallibleBuffer(count: try Size.sum(h, bk, what: what), what)
        floats = try FallibleBuffer(count: try Size.sum(2 * bk, bd, what: what), what)
        blockStartBuffer = try FallibleBuffer(count: blocks + 1, what)
        entryBuffer = try FallibleBuffer(count: bk, what)
        // The chunks of a step of at most `rows` rows, as `forwardBackward` splits them.
        let chunks = (rows + min(encoderChunkRows, rows) - 1) / max(min(encoderChunkRows, rows), 1)
        chunkSumBuffer = try FallibleBuffer(count: chunks, what)
        chunkWorkBuffer = try FallibleBuffer(
            count: try Size.product(chunks, try Size.sum(d, h, what: what), what: what), what)
        chunkSums = chunkSumBuffer.base
        chunkWork = chunkWorkBuffer.base
        dead = ints.base
        selected = ints.base + h
        values = floats.base
        gPre = floats.base + bk
        upstream = floats.base + 2 * bk
        blockStart = blockStartBuffer.base
        blockEntries = entryBuffer.base
    }

    /// Sets this step's dead latents: those `isDead` says are.
    ///
    /// - Complexity: O(h).
    func setDead(_ isDead: (Int) -> Bool) {
        var n = 0
        for j in 0..<h where isDead(j) {
            dead[n] = Int32(truncatingIfNeeded: j)
            n += 1
        }
        deadCount = n
    }

    /// Whether the term does anything this step.
    var isActive: Bool { weight > 0 && deadCount > 0 }

    /// Groups this step's entries of `rows` rows by latent block (see
    /// `StepBuffers.groupEntriesByLatentBlock`; every entry uses `upstream`).
    ///
    /// - Complexity: O(rows * auxK + blocks).
    func groupEntriesByLatentBlock(rows: Int, blocks: Int, shift: Int) {
        let kk = usedK, mask = (1 << shift) - 1
        blockStart.initialize(repeating: 0, count: blocks + 1)
        for e in 0..<(rows * kk) { blockStart[(Int(selected[e]) >> shift) + 1] += 1 }
        for block in 0..<blocks { blockStart[block + 1] += blockStart[block] }
        var cursor = Array(UnsafeBufferPointer(start: blockStart, count: blocks))
        cursor.withUnsafeMutableBufferPointer { cursor in
            for e in 0..<(rows * kk) {
                let latent = Int(selected[e])
                let block = latent >> shift
                blockEntries[cursor[block]] = csae_block_entry(
                    row_code: Int32(truncatingIfNeeded: 2 * (e / kk) + 1),
                    local: Int32(truncatingIfNeeded: latent & mask), g: gPre[e], v: values[e])
                cursor[block] += 1
            }
        }
    }
}

/// The workspace pointers the rows of a step share across threads.
struct DeadLatentPointers: @unchecked Sendable {
    let dead: UnsafePointer<Int32>, deadCount: Int, usedK: Int, weight: Float
    let selected: UnsafeMutablePointer<Int32>, values: UnsafeMutablePointer<Float>
    let gPre: UnsafeMutablePointer<Float>, upstream: UnsafeMutablePointer<Float>
    let chunkSums: UnsafeMutablePointer<Double>, chunkWork: UnsafeMutablePointer<Float>

    init(_ w: DeadLatentWorkspace) {
        dead = UnsafePointer(w.dead)
        deadCount = w.deadCount
        usedK = w.usedK
        weight = w.weight
        selected = w.selected
        values = w.values
        gPre = w.gPre
        upstream = w.upstream
        chunkSums = w.chunkSums
        chunkWork = w.chunkWork
    }
}

extension CompresSAEModel {
    /// The dead-latent term of row `i` of a batch of `b` rows: chooses the
    /// row's top dead latents from its pre-activations `pre` (length `h`),
    /// writes their values, `d(term)/d(value)` and `d(term)/d(aux
    /// reconstruction)` into `aux`, and returns the row's `1 - cos` (not
    /// weighted).
    ///
    /// - Parameters:
    ///   - xn: the normalised row; `reconK`: its k-code's reconstruction.
    ///   - gather: `deadCount` floats of scratch; `work`: `d` floats.
    /// - Complexity: O(h) for the choice, O(auxK d) for the rest.
    func deadLatentRow(
        _ i: Int, rows b: Int, pre: UnsafePointer<Float>, xn: UnsafePointer<Float>, reconK: UnsafePointer<Float>,
        decoder dec: UnsafePointer<Float>, aux: DeadLatentPointers, gather: UnsafeMutablePointer<Float>,
        work: UnsafeMutablePointer<Float>, scratch: TopK.Scratch
    ) -> Double {
        let d = inputDim, kk = aux.usedK
        let selected = aux.selected + i * kk, values = aux.values + i * kk, gPre = aux.gPre + i * kk
        let upstream = aux.upstream + i * d
        for t in 0..<aux.deadCount { gather[t] = pre[Int(aux.dead[t])] }
        TopK.select(row: gather, n: aux.deadCount, m: kk, sorted: false, outIndices: selected, scratch: scratch)
        for t in 0..<kk {
            let latent = aux.dead[Int(selected[t])]
            selected[t] = latent
            values[t] = pre[Int(latent)]
        }
        // The residual: the part of xn that the k-code's reconstruction misses.
        let residual = work
        let rr = squaredNorm(reconK, d)
        let scale = rr > 0 && rr.isFinite ? dot(xn, reconK, d) / rr : 0
        for c in 0..<d { residual[c] = xn[c] - scale * reconK[c] }
        let eNorm = max(squaredNorm(residual, d).squareRoot(), auxNormFloor)
        // The dead latents' reconstruction, then d(term)/d(it) into `upstream`.
        let auxRecon = upstream
        auxRecon.initialize(repeating: 0, count: d)
        gatherAxpy(into: auxRecon, d, rowsOf: dec, indices: selected, weights: values, count: kk)
        let aa = squaredNorm(auxRecon, d), ea = dot(residual, auxRecon, d)
        let aNorm = max(aa.squareRoot(), auxNormFloor)
        let cos = ea / (eNorm * aNorm)
        guard cos.isFinite else {
            // A reconstruction too large for float: no gradient from this row.
            upstream.initialize(repeating: 0, count: d)
            gPre.initialize(repeating: 0, count: kk)
            return 0
        }
        let weight = aux.weight / Float(b)
        let alpha = -weight / (eNorm * aNorm), beta = weight * cos / (aNorm * aNorm)
        for c in 0..<d { upstream[c] = alpha * residual[c] + beta * auxRecon[c] }
        gatherDot(into: gPre, rowsOf: dec, indices: selected, count: kk, with: upstream, d)
        return Double(1 - cos)
    }
}
