/// Settings of `CompresSAEModel.train`.
public struct TrainingOptions: Sendable {
    /// Rows per optimiser step.
    public var batchSize: Int = 4096
    /// Passes over the data.
    public var epochs: Int = 1
    /// Adam step size.
    public var learningRate: Double = 1e-3
    /// Adam first-moment decay.
    public var beta1: Double = 0.9
    /// Adam second-moment decay.
    public var beta2: Double = 0.999
    /// Adam epsilon.
    public var eps: Double = 1e-8
    /// Seed of the per-epoch shuffle.
    public var seed: UInt64 = 0
    /// Shuffle the rows at every epoch (false: batches in row order).
    public var shuffle: Bool = true
    /// Worker threads, 0 = every core.
    public var threads: Int = 0
    /// Rows after which a latent that fired in no k-code counts as dead
    /// (`deadLatentHistory`); 0 = one epoch (the number of training rows).
    public var deadLatentWindow: Int = 0

    public init() {}

    /// Number of optimiser steps for `rows` rows.
    public func totalSteps(rows: Int) -> Int {
        epochs * ((rows + batchSize - 1) / batchSize)
    }

    func validate(rows: Int) throws {
        guard batchSize >= 1 else { throw CompresSAEError.invalid("batch_size must be >= 1, got \(batchSize)") }
        guard epochs >= 1 else { throw CompresSAEError.invalid("epochs must be >= 1, got \(epochs)") }
        guard learningRate.isFinite && learningRate > 0 else {
            throw CompresSAEError.invalid("learning_rate must be finite and > 0, got \(learningRate)")
        }
        guard beta1 >= 0 && beta1 < 1 else { throw CompresSAEError.invalid("beta1 must be in [0, 1), got \(beta1)") }
        guard beta2 >= 0 && beta2 < 1 else { throw CompresSAEError.invalid("beta2 must be in [0, 1), got \(beta2)") }
        guard eps.isFinite && eps > 0 else { throw CompresSAEError.invalid("eps must be finite and > 0, got \(eps)") }
        guard threads >= 0 else { throw CompresSAEError.invalid("num_threads must be >= 0, got \(threads)") }
        guard deadLatentWindow >= 0 else {
            throw CompresSAEError.invalid("dead_latent_window must be >= 0, got \(deadLatentWindow)")
        }
        let (steps, overflow) = epochs.multipliedReportingOverflow(by: (rows + batchSize - 1) / batchSize)
        guard !overflow, steps <= 1 << 40 else {
            throw CompresSAEError.invalid("epochs x steps per epoch is too large")
        }
    }
}

/// The loss values of one batch, as the reference reports them.
public struct LossReport: Sendable, Equatable {
    /// Mean squared error of the k-sparse reconstruction.
    public var l2: Float = 0
    /// Mean squared error of the 4k-sparse reconstruction.
    public var l2_4k: Float = 0
    /// Mean over rows of the sum of |code| (k-sparse).
    public var l1: Float = 0
    /// Mean nonzeros per code (k-sparse).
    public var l0: Float = 0
    /// Mean of `1 - cos(x, recon_k)`.
    public var cosine: Float = 0
    /// Mean of `1 - cos(x, recon_4k)`.
    public var cosine4k: Float = 0
    /// The objective: `cosine + cosine4k / 8`.
    public var loss: Float = 0

    public init() {}
}

/// Gradients of the objective with respect to the parameters, in their public layouts.
public struct Gradients: Sendable {
    /// `[d,h]` row-major.
    public var encoderWeights: [Float]
    /// `[h]`.
    public var encoderBias: [Float]
    /// `[h,d]` row-major.
    public var decoderWeights: [Float]
}
