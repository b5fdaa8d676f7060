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
    /// Whether every weight is finite. Caller holds the model's lock.
    ///
    /// - Complexity: O(d h), one pass without branches (`x - x` is 0 for a
    ///   finite `x` and NaN otherwise), so it vectorises.
    func weightsAreFinite() -> Bool {
        func allFinite(_ values: [Float]) -> Bool {
            values.withUnsafeBufferPointer { buffer in
                var sum: Float = 0
                for value in buffer { sum += value - value }
                return sum == 0
            }
        }
        return allFinite(encoderT) && allFinite(encoderBias) && allFinite(decoder)
    }
}
