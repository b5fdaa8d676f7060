#if canImport(Glibc)
import Glibc
#endif

/// How `CompresSAEModel.init(inputDim:latentDim:k:seed:initialization:)` sets the encoder.
public enum EncoderInitialization: Int32, Sendable {
    /// Kaiming-uniform, independent of the decoder (the reference's model).
    case reference = 0
    /// The transpose of the (unit-row) decoder: every latent starts as a
    /// direction that its own encoder row detects, so none starts dead.
    case tied = 1
}

/// A CompresSAE model: a top-k sparse autoencoder that maps `inputDim`-dense
/// embeddings to `k`-sparse codes in `latentDim` dimensions and back.
///
/// Parameters, as in the reference's state dict: `encoder_w [d,h]`,
/// `encoder_b [h]`, `decoder_w [h,d]` with unit-norm rows. Internally the
/// encoder is kept transposed (`[h,d]`) so that everything a latent owns is one
/// contiguous row: the sparse backward pass then touches whole rows only.
///
/// Thread safety: every method may be called from any thread at any time.
/// Encoding, decoding and reading weights run concurrently; a training step
/// holds the weights exclusively (other calls wait for the step, not for the
/// whole `train` call, and see the weights as they stand between steps). One
/// `train` runs at a time (a second one fails with `.busy`), and `setK`
/// fails with `.busy` while it runs: the k a call reads at its start is the
/// one it uses throughout.
public final class CompresSAEModel: @unchecked Sendable {
    /// Dense input dimension `d`.
    public let inputDim: Int
    /// Sparse latent dimension `h`.
    public let latentDim: Int

    /// Encoder weights transposed, `[h, d]` row-major.
    var encoderT: [Float]
    /// Encoder bias, `[h]`.
    var encoderBias: [Float]
    /// Decoder weights, `[h, d]` row-major, unit-norm rows.
    var decoder: [Float]
    /// Nonzeros per code used by `encode` and by training.
    var storedK: Int
    /// Per-step losses of the last `train` call.
    var storedHistory: [Float] = []
    /// Per-step fraction of dead latents of the last `train` call.
    var storedDeadHistory: [Float] = []
    /// Per-epoch validation losses of the last `train` call.
    var storedValidationHistory: [Float] = []
    /// Incremented whenever training changes the weights: an index built from
    /// earlier codes can tell that they no longer match the model. Guarded
    /// by `lock`; read it through `weightsVersion` (Model+Version.swift).
    var storedWeightsVersion = 0
    /// True while a `train` call runs (guarded by `lock`): a second `train`
    /// and `setK` fail fast instead of changing what the running one uses.
    var isTraining = false

    let lock = ReadWriteLock()

    /// Number of nonzeros per code.
    public var k: Int { lock.withReadLock { storedK } }

    /// Losses of every optimiser step of the last `train` call (before each update).
    public var lossHistory: [Float] { lock.withReadLock { storedHistory } }

    /// One of the per-call histories (`lossHistory`, `deadLatentHistory`,
    /// `validationHistory`).
    enum HistoryKind { case loss, deadLatents, validation }

    /// Runs `body` on one history under the model's read lock, so that a
    /// training call appending to it cannot move the storage under `body`.
    ///
    /// Complexity: O(1) plus `body`.
    func withHistory<T>(_ kind: HistoryKind, _ body: (UnsafeBufferPointer<Float>) throws -> T) rethrows -> T {
        try lock.withReadLock {
            switch kind {
            case .loss: return try storedHistory.withUnsafeBufferPointer(body)
            case .deadLatents: return try storedDeadHistory.withUnsafeBufferPointer(body)
            case .validation: return try storedValidationHistory.withUnsafeBufferPointer(body)
            }
        }
    }

    /// For every step of the last `train` call, the fraction of latents that
    /// were in no row's k-code during the last `TrainingOptions.deadLatentWindow`
    /// training rows (dead latents waste code space). 0 until a full window has
    /// been seen.
    public var deadLatentHistory: [Float] { lock.withReadLock { storedDeadHistory } }

    /// The validation loss at every validation (`TrainingOptions.validationSteps`) of the last `train` call (empty
    /// without `TrainingOptions.validationFraction`).
    public var validationHistory: [Float] { lock.withReadLock { storedValidationHistory } }

    /// Creates a model: a zero bias, a decoder drawn with PyTorch's default
    /// initialisation (`kaiming_uniform_`: Uniform(-sqrt(6/fan_in), +sqrt(6/fan_in))
    /// with `fan_in` the second dimension) and then given unit-norm rows, and
    /// an encoder set by `initialization`.
    ///
    /// - Parameters:
    ///   - inputDim: `d >= 1`.
    ///   - latentDim: `h >= 1`.
    ///   - k: nonzeros per code, `1...h`.
    ///   - seed: seed of the initialisation; equal seeds give equal models.
    ///   - initialization: `.reference` draws the encoder like the reference
    ///     does; `.tied` starts it as the decoder's transpose.
    public init(inputDim: Int, latentDim: Int, k: Int, seed: UInt64 = 0,
                initialization: EncoderInitialization = .reference) throws {
        try Self.validateShape(inputDim: inputDim, latentDim: latentDim, k: k)
        self.inputDim = inputDim
        self.latentDim = latentDim
        self.storedK = k
        let d = inputDim, h = latentDim
        var rng = SeededGenerator(seed: seed)
        // encoder_w [d,h] is drawn in its public layout, then stored transposed;
        // it is drawn for `.tied` too, so one seed gives one decoder either way.
        let encoderBound = (6.0 / Float(h)).squareRoot()
        let weightCount = try Size.product(h, d, what: "the model's weights")
        let encT = try [Float].fallible(count: weightCount, "the encoder weights (\(d) x \(h) floats)") { encT in
            for row in 0..<d {
                for col in 0..<h {
                    encT[col * d + row] = (2 * rng.nextUnitFloat() - 1) * encoderBound
                }
            }
        }
        let decoderBound = (6.0 / Float(d)).squareRoot()
        let dec = try [Float].fallible(count: weightCount, "the decoder weights (\(h) x \(d) floats)") { dec in
            for i in 0..<weightCount { dec[i] = (2 * rng.nextUnitFloat() - 1) * decoderBound }
        }
        self.encoderT = encT
        self.encoderBias = try [Float].fallible(repeating: 0, count: h, "the encoder bias")
        self.decoder = dec
        normalizeDecoderRows()
        // encoder_w = decoder_w^T: in the internal [h,d] layout, the same rows.
        if initialization == .tied { encoderT = decoder }
    }

    /// Creates a model from given weights, copied as they are (the decoder is
    /// not renormalised, so a reference checkpoint is reproduced exactly).
    ///
    /// - Parameters:
    ///   - encoderWeights: `encoder_w`, `d*h` floats, `[d,h]` row-major.
    ///   - encoderBias: `encoder_b`, `h` floats.
    ///   - decoderWeights: `decoder_w`, `h*d` floats, `[h,d]` row-major.
    /// - Throws: `CompresSAEError` on a size mismatch, a non-finite weight, or
    ///   an encoder whose pre-activations could overflow float (a column of
    ///   norm beyond 1.9e19, a bias beyond +-1e38).
    public convenience init(
        inputDim: Int, latentDim: Int, k: Int,
        encoderWeights: UnsafeBufferPointer<Float>,
        encoderBias: UnsafeBufferPointer<Float>,
        decoderWeights: UnsafeBufferPointer<Float>
    ) throws {
        try Self.validateShape(inputDim: inputDim, latentDim: latentDim, k: k)
        let d = inputDim, h = latentDim
        try Self.checkWeights(encoderWeights, count: d * h, name: "encoder_w", shape: "[\(d), \(h)]")
        try Self.checkWeights(encoderBias, count: h, name: "encoder_b", shape: "[\(h)]")
        try Self.checkWeights(decoderWeights, count: h * d, name: "decoder_w", shape: "[\(h), \(d)]")
        let encT = try Self.transposed(encoderWeights.baseAddress!, rows: d, cols: h)
        try Self.checkEncoderRange(encT, bias: encoderBias.baseAddress!, d: d, h: h)
        self.init(inputDim: d, latentDim: h, k: k, encoderT: encT,
                  encoderBias: try Self.copied(encoderBias, "encoder_b"),
                  decoder: try Self.copied(decoderWeights, "decoder_w"))
    }

    /// Convenience form of `init(inputDim:latentDim:k:encoderWeights:encoderBias:decoderWeights:)`.
    public convenience init(
        inputDim: Int, latentDim: Int, k: Int,
        encoderWeights: [Float], encoderBias: [Float], decoderWeights: [Float]
    ) throws {
        let d = inputDim, h = latentDim
        try Self.validateShape(inputDim: d, latentDim: h, k: k)
        for (w, count, name, shape) in [(encoderWeights, d * h, "encoder_w", "[\(d), \(h)]"),
                                        (encoderBias, h, "encoder_b", "[\(h)]"),
                                        (decoderWeights, h * d, "decoder_w", "[\(h), \(d)]")] {
            try w.withUnsafeBufferPointer { try Self.checkWeights($0, count: count, name: name, shape: shape) }
        }
        let encT = try encoderWeights.withUnsafeBufferPointer { try Self.transposed($0.baseAddress!, rows: d, cols: h) }
        try encoderBias.withUnsafeBufferPointer { try Self.checkEncoderRange(encT, bias: $0.baseAddress!, d: d, h: h) }
        self.init(inputDim: d, latentDim: h, k: k, encoderT: encT, encoderBias: encoderBias, decoder: decoderWeights)
    }

    /// Takes already validated storage (internal layouts).
    init(inputDim: Int, latentDim: Int, k: Int, encoderT: [Float], encoderBias: [Float], decoder: [Float]) {
        self.inputDim = inputDim
        self.latentDim = latentDim
        self.storedK = k
        self.encoderT = encoderT
        self.encoderBias = encoderBias
        self.decoder = decoder
    }

    /// Changes the number of nonzeros per code (`1...h`).
    ///
    /// Calls already running keep the k they read at their start. While a
    /// `train` call runs, fails with `.busy`: the running training, its
    /// validation passes and its callers all keep one k.
    public func setK(_ newK: Int) throws {
        guard newK >= 1 && newK <= latentDim else {
            throw CompresSAEError.invalid("k must be in 1...\(latentDim) (the latent dimension), got \(newK)")
        }
        try lock.withWriteLock {
            guard !isTraining else {
                throw CompresSAEError(.busy, "k cannot change while the model is being trained (the running fit keeps the k it started with)")
            }
            storedK = newK
        }
    }

    /// `encoder_w` as `[d,h]` row-major (a copy).
    public var encoderWeights: [Float] {
        lock.withReadLock { encoderWeightsLocked() }
    }

    /// `encoder_b` (a copy).
    public var encoderBiasWeights: [Float] { lock.withReadLock { encoderBias } }

    /// `decoder_w` as `[h,d]` row-major (a copy).
    public var decoderWeights: [Float] { lock.withReadLock { decoder } }

    /// Copies the weights into caller-owned buffers; a `nil` buffer is skipped.
    ///
    /// - Parameters:
    ///   - encoderWeights: `d*h` floats, receives `encoder_w [d,h]`.
    ///   - encoderBias: `h` floats.
    ///   - decoderWeights: `h*d` floats.
    public func copyWeights(
        encoderWeights: UnsafeMutableBufferPointer<Float>?,
        encoderBias: UnsafeMutableBufferPointer<Float>?,
        decoderWeights: UnsafeMutableBufferPointer<Float>?
    ) throws {
        let d = inputDim, h = latentDim
        if let out = encoderWeights, out.count != d * h {
            throw CompresSAEError.invalid("encoder_w buffer holds \(out.count) floats, expected d*h = \(d * h)")
        }
        if let out = encoderBias, out.count != h {
            throw CompresSAEError.invalid("encoder_b buffer holds \(out.count) floats, expected h = \(h)")
        }
        if let out = decoderWeights, out.count != h * d {
            throw CompresSAEError.invalid("decoder_w buffer holds \(out.count) floats, expected h*d = \(h * d)")
        }
        lock.withReadLock {
            if let out = encoderWeights {
                encoderT.withUnsafeBufferPointer { Self.transpose($0.baseAddress!, rows: h, cols: d, into: out.baseAddress!) }
            }
            if let out = encoderBias { _ = out.initialize(from: self.encoderBias) }
            if let out = decoderWeights { _ = out.initialize(from: self.decoder) }
        }
    }

    // MARK: - Internals

    static func validateShape(inputDim: Int, latentDim: Int, k: Int) throws {
        guard inputDim >= 1 else { throw CompresSAEError.invalid("input_dim must be >= 1, got \(inputDim)") }
        guard latentDim >= 1 else { throw CompresSAEError.invalid("latent_dim must be >= 1, got \(latentDim)") }
        guard k >= 1 && k <= latentDim else {
            throw CompresSAEError.invalid("k must be in 1...\(latentDim) (the latent dimension), got \(k)")
        }
        // Keeps every index an Int32 and every buffer size far from overflow.
        guard latentDim <= Int(Int32.max), inputDim <= Int(Int32.max),
              inputDim.multipliedReportingOverflow(by: latentDim).overflow == false,
              inputDim * latentDim <= 1 << 34 else {
            throw CompresSAEError.invalid("input_dim x latent_dim = \(inputDim) x \(latentDim) is too large")
        }
    }

    /// Refuses an encoder whose pre-activations could overflow float
    /// (`encoderRangeProblem`); `encT` is the `h x d` internal layout.
    static func checkEncoderRange(_ encT: [Float], bias: UnsafePointer<Float>, d: Int, h: Int) throws {
        if let problem = encT.withUnsafeBufferPointer({
            encoderRangeProblem(encoderT: $0.baseAddress!, bias: bias, d: d, h: h)
        }) {
            throw CompresSAEError.invalid(problem)
        }
    }

    static func checkWeights(_ w: UnsafeBufferPointer<Float>, count: Int, name: String, shape: String) throws {
        guard w.count == count, w.baseAddress != nil || count == 0 else {
            throw CompresSAEError.invalid("\(name) must have shape \(shape) (\(count) floats), got \(w.count) floats")
        }
        for i in 0..<count where !w[i].isFinite {
            throw CompresSAEError.invalid("\(name) has a non-finite value (\(w[i])) at flat position \(i)")
        }
    }

    /// Writes the transpose of the row-major `rows x cols` matrix `src`.
    static func transpose(_ src: UnsafePointer<Float>, rows: Int, cols: Int, into out: UnsafeMutablePointer<Float>) {
        // Tiles keep both sides in cache for large matrices.
        let tile = 32
        var r0 = 0
        while r0 < rows {
            let r1 = min(r0 + tile, rows)
            var c0 = 0
            while c0 < cols {
                let c1 = min(c0 + tile, cols)
                for r in r0..<r1 {
                    for c in c0..<c1 { out[c * rows + r] = src[r * cols + c] }
                }
                c0 = c1
            }
            r0 = r1
        }
    }

    /// The transpose of the row-major `rows x cols` matrix `src`, as an array.
    static func transposed(_ src: UnsafePointer<Float>, rows: Int, cols: Int) throws(CompresSAEError) -> [Float] {
        try [Float].fallible(count: try Size.product(rows, cols, what: "a transposed matrix"),
                             "a transposed \(rows) x \(cols) matrix") { buffer in
            transpose(src, rows: rows, cols: cols, into: buffer.baseAddress!)
        }
    }

    /// A copy of caller-given weights, or an out-of-memory error.
    static func copied(_ w: UnsafeBufferPointer<Float>, _ name: String) throws(CompresSAEError) -> [Float] {
        try [Float].fallible(count: w.count, name) { out in
            if w.count > 0 { out.baseAddress!.update(from: w.baseAddress!, count: w.count) }
        }
    }

    /// `encoder_w` in its public `[d,h]` layout. Caller holds a lock.
    func encoderWeightsLocked() -> [Float] {
        // The model's own size: the memory was available when it was made.
        encoderT.withUnsafeBufferPointer { src in
            [Float](unsafeUninitializedCapacity: src.count) { buffer, count in
                Self.transpose(src.baseAddress!, rows: latentDim, cols: inputDim, into: buffer.baseAddress!)
                count = src.count
            }
        }
    }

    /// `decoder_w[j] /= ||decoder_w[j]||` for every row (a zero row stays zero).
    func normalizeDecoderRows() {
        let d = inputDim
        decoder.withUnsafeMutableBufferPointer { dec in
            let base = dec.baseAddress!
            for j in 0..<latentDim {
                let row = base + j * d
                let norm = squaredNorm(row, d).squareRoot()
                if norm > 0 {
                    for c in 0..<d { row[c] = row[c] / norm }
                }
            }
        }
    }
}

/// A pthread read-write lock on the heap (its address must not move).
final class ReadWriteLock: @unchecked Sendable {
    private let rw: UnsafeMutablePointer<pthread_rwlock_t>

    init() {
        rw = .allocate(capacity: 1)
        rw.initialize(to: pthread_rwlock_t())
        pthread_rwlock_init(rw, nil)
    }

    deinit {
        pthread_rwlock_destroy(rw)
        rw.deallocate()
    }

    func withReadLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_rwlock_rdlock(rw)
        defer { pthread_rwlock_unlock(rw) }
        return try body()
    }

    func withWriteLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_rwlock_wrlock(rw)
        defer { pthread_rwlock_unlock(rw) }
        return try body()
    }
}
