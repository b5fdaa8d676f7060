/// A copy of a model's parameters, taken when a training call starts, so
/// that a call whose arithmetic leaves the float range can give the model
/// back as it was instead of returning NaN weights.
///
/// Memory: one more copy of the weights (`2 d h + h` floats), besides the
/// Adam moments the call already holds (twice that).
struct WeightSnapshot {
    private let encoderT: [Float]
    private let encoderBias: [Float]
    private let decoder: [Float]

    /// Copies the model's weights. Caller holds the model's lock.
    ///
    /// - Throws: `outOfMemory` when the copy cannot be made.
    /// - Complexity: O(d h).
    init(of model: CompresSAEModel) throws(CompresSAEError) {
        encoderT = try .fallibleCopy(of: model.encoderT, "a copy of encoder_w for the training call")
        encoderBias = try .fallibleCopy(of: model.encoderBias, "a copy of encoder_b for the training call")
        decoder = try .fallibleCopy(of: model.decoder, "a copy of decoder_w for the training call")
    }

    /// Puts the copied weights back. Caller holds the model's write lock.
    ///
    /// - Complexity: O(1) (the arrays are shared until written).
    func restore(into model: CompresSAEModel) {
        model.encoderT = encoderT
        model.encoderBias = encoderBias
        model.decoder = decoder
    }
}

extension CompresSAEModel {
    /// The largest `|encoder_b[j]|` a model may hold.
    static let encoderBiasLimit: Float = 1e38

    /// Why latent `j`'s encoder column or bias would let a pre-activation
    /// overflow float, or nil when they cannot. A row's pre-activation is
    /// `w_j . xn + b_j` with `|xn| = 1`, and every partial sum of the dot
    /// product is at most `|w_j|` (Cauchy-Schwarz), so a finite float `|w_j|^2`
    /// (`|w_j| < 1.9e19`) and `|b_j| <= encoderBiasLimit` keep encoding finite.
    ///
    /// - Parameters:
    ///   - encoderT: `h x d`, the encoder's internal layout (latent-major).
    /// - Complexity: O(d h).
    static func encoderRangeProblem(encoderT: UnsafePointer<Float>, bias: UnsafePointer<Float>, d: Int, h: Int) -> String? {
        for j in 0..<h {
            let squares = squaredNorm(encoderT + j * d, d)
            guard squares.isFinite else {
                return "encoder_w column \(j) has a norm beyond 1.9e19 (or a non-finite entry): its pre-activations would overflow float"
            }
            guard abs(bias[j]) <= encoderBiasLimit else {
                return "encoder_b[\(j)] is \(bias[j]), beyond +-1e38: its pre-activations would overflow float"
            }
        }
        return nil
    }

    /// Whether the weights are ones a model may hold: all finite, and the
    /// encoder within `encoderRangeProblem`'s bounds. Caller holds the
    /// model's lock.
    ///
    /// - Complexity: O(d h), passes without branches except per latent.
    func weightsAreUsable() -> Bool {
        func allFinite(_ values: [Float]) -> Bool {
            values.withUnsafeBufferPointer { buffer in
                // `x - x` is 0 for a finite `x` and NaN otherwise.
                var sum: Float = 0
                for value in buffer { sum += value - value }
                return sum == 0
            }
        }
        guard allFinite(decoder) else { return false }
        return encoderT.withUnsafeBufferPointer { enc in
            encoderBias.withUnsafeBufferPointer { bias in
                Self.encoderRangeProblem(encoderT: enc.baseAddress!, bias: bias.baseAddress!,
                                         d: inputDim, h: latentDim) == nil
            }
        }
    }
}
