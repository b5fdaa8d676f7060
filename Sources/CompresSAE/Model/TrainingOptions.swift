#if canImport(Glibc)
import Glibc
#endif

/// How the learning rate changes over the steps of one `train` call, after
/// the warm-up.
public enum LearningRateDecay: Int32, Sendable {
    /// The same rate at every step (the reference's recipe).
    case constant = 0
    /// Half a cosine from `learningRate` down to `learningRate * minLearningRateRatio`
    /// at the last planned step.
    case cosine = 1
    /// A straight line over the same range.
    case linear = 2
    /// Constant until the validation loss stops improving (`patience`), then
    /// cut by `plateauFactor`, at most `plateauReductions` times; the next
    /// plateau ends training. Needs validation and `patience > 0`.
    case plateau = 3
}

/// Settings of `CompresSAEModel.train`.
///
/// The defaults are the recipe chosen by measurement (docs/quality.md):
/// Adam at 1e-2 after a 50-step warm-up, cut on validation plateaus until
/// convergence (validated after epochs at least 25 steps apart, at most 400 epochs), with the sparse similarity
/// and dead-latent terms.
/// `TrainingOptions.reference` is the PyTorch reference's recipe: one epoch
/// at a constant 1e-3, the reconstruction objective alone.
public struct TrainingOptions: Sendable {
    /// Rows per optimiser step.
    public var batchSize: Int = 4096
    /// Passes over the data, at most (early stopping usually ends sooner;
    /// a small set, one step per epoch, needs hundreds of them).
    public var epochs: Int = 400
    /// Adam step size.
    public var learningRate: Double = 1e-2
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
    /// Worker threads, 0 = the default (`Threads.numThreads`).
    public var numThreads: Int = 0
    /// Rows after which a latent that fired in no k-code counts as dead
    /// (`deadLatentHistory`); 0 = one epoch (the number of training rows).
    public var deadLatentWindow: Int = 0
    /// Steps over which the learning rate rises linearly to `learningRate`.
    public var warmupSteps: Int = 50
    /// Shape of the learning rate after the warm-up.
    public var learningRateDecay: LearningRateDecay = .plateau
    /// Final learning rate of a decaying schedule, as a fraction of `learningRate`.
    public var minLearningRateRatio: Double = 0
    /// Fraction of the rows held out (a seeded random choice) to measure the
    /// validation loss (see `validationSteps`); 0 trains on every row, and so do
    /// inputs of fewer than 20 rows.
    public var validationFraction: Double = 0.05
    /// Fewest steps between two validations: the validation loss is
    /// measured at the end of the first epoch that ends at least this many
    /// steps after the previous measurement (after every epoch when epochs
    /// are longer), so that the plateau rule counts work, not passes over a
    /// small set. 0 validates after every epoch.
    public var validationSteps: Int = 25
    /// Stop when the validation loss has not improved on its best by a
    /// relative `tolerance` for this many validations in a row; 0 never stops early.
    /// Needs `validationFraction > 0`.
    public var patience: Int = 2
    /// Relative improvement of the validation loss that resets `patience`.
    public var tolerance: Double = 5e-3
    /// `.plateau`: factor of each learning-rate cut.
    public var plateauFactor: Double = 0.2
    /// `.plateau`: cuts before a plateau ends training.
    public var plateauReductions: Int = 2
    /// Weight of the sparse similarity term added to the objective (0: the
    /// reference's objective): the softmax of code cosines among
    /// `similarityRows` rows of each batch is trained towards the softmax of
    /// their input cosines, so that sparse-mode search ranks like dense search.
    public var sparseSimilarityWeight: Double = 0.03
    /// Temperature of both softmaxes of the similarity term.
    public var similarityTemperature: Double = 0.05
    /// Rows of each batch (its first ones; batches are shuffled) that the
    /// similarity term compares pairwise.
    public var similarityRows: Int = 1024
    /// Weight of the auxiliary dead-latent term (0: off, the reference's
    /// objective): each row's top `deadLatentAuxK` dead latents (those in no
    /// k-code during the last `deadLatentWindow` rows) are trained to
    /// reconstruct what its k-code misses, so that they come back into use
    /// (docs/maths.md, "The dead-latent term").
    public var deadLatentAuxWeight: Double = 0.125
    /// Dead latents each row's auxiliary reconstruction uses, at most;
    /// 0 = `deadLatentAuxK(k:d:h:)`'s default, max(4, k / 4).
    public var deadLatentAuxK: Int = 0

    public init() {}

    /// The auxiliary term's k for a model of `k`, `d`, `h`: the option, or
    /// max(4, k / 4) when it is 0; at most h. Few latents per row: each
    /// then takes a larger share of the residual, and more of them revive
    /// than with the d / 2 of sparse autoencoders of language models
    /// (docs/quality.md, "Dead latents").
    public func deadLatentAuxK(k: Int, d: Int, h: Int) -> Int {
        let wanted = deadLatentAuxK > 0 ? deadLatentAuxK : max(4, k / 4)
        return max(1, min(wanted, h))
    }

    /// The former name of `numThreads`.
    @available(*, deprecated, renamed: "numThreads")
    public var threads: Int {
        get { numThreads }
        set { numThreads = newValue }
    }

    /// The former name of `learningRateDecay`.
    @available(*, deprecated, renamed: "learningRateDecay")
    public var decay: LearningRateDecay {
        get { learningRateDecay }
        set { learningRateDecay = newValue }
    }

    /// The PyTorch reference's recipe: one epoch of Adam at a constant 1e-3
    /// on the reconstruction objective, every row used for training.
    public static var reference: TrainingOptions {
        var o = TrainingOptions()
        o.epochs = 1
        o.learningRate = 1e-3
        o.warmupSteps = 0
        o.learningRateDecay = .constant
        o.validationFraction = 0
        o.patience = 0
        o.sparseSimilarityWeight = 0
        o.validationSteps = 0
        o.deadLatentAuxWeight = 0
        return o
    }

    /// The learning rate of `step` (1-based) out of `total` planned steps.
    public func learningRate(step: Int, total: Int) -> Double {
        if step <= warmupSteps { return learningRate * Double(step) / (Double(warmupSteps) + 1) }
        let span = total - warmupSteps
        guard learningRateDecay != .constant && learningRateDecay != .plateau, span > 1 else { return learningRate }
        let progress = (Double(step) - Double(warmupSteps) - 1) / (Double(span) - 1)
        let floor = learningRate * minLearningRateRatio
        switch learningRateDecay {
        case .constant, .plateau: return learningRate
        case .cosine: return floor + (learningRate - floor) * 0.5 * (1 + cos(Double.pi * progress))
        case .linear: return floor + (learningRate - floor) * (1 - progress)
        }
    }

    /// Rows held out for validation out of `rows`.
    public func validationRows(rows: Int) -> Int {
        guard validationFraction > 0 && rows >= 20 else { return 0 }
        // Clamped as a double: an unvalidated fraction (huge, or NaN) must not trap in the conversion.
        let wanted = (Double(rows) * validationFraction).rounded()
        if wanted.isNaN { return 0 }
        return wanted >= Double(rows - 1) ? rows - 1 : max(1, Int(max(1, wanted)))
    }

    /// Number of optimiser steps for `rows` rows (at most: early stopping may end sooner).
    public func totalSteps(rows: Int) -> Int {
        let trainingRows = rows - validationRows(rows: rows)
        let batch = max(1, min(batchSize, trainingRows))
        let (steps, overflow) = max(0, epochs).multipliedReportingOverflow(by: (trainingRows + batch - 1) / batch)
        return overflow ? Int.max : steps
    }

    /// A setting the training arithmetic uses as a `Float`: it must be finite
    /// and non-negative (positive when `positive`) after rounding to float
    /// too, or a weight of 1e39 would become infinite, an `eps` of 1e-300
    /// zero, and both would turn the weights into NaN.
    private static func checkFloatSetting(_ value: Double, _ name: String, positive: Bool) throws {
        let rounded = Float(value)
        guard value.isFinite, rounded.isFinite, positive ? rounded > 0 : value >= 0 else {
            throw CompresSAEError.invalid(
                "\(name) must be \(positive ? "> 0" : ">= 0") and within the float range (up to 3.4e38\(positive ? ", not rounding to 0" : "")), got \(value)")
        }
    }

    func validate(rows: Int) throws {
        guard batchSize >= 1 else { throw CompresSAEError.invalid("batch_size must be >= 1, got \(batchSize)") }
        guard validationSteps >= 0 else {
            throw CompresSAEError.invalid("validation_steps must be >= 0, got \(validationSteps)")
        }
        guard epochs >= 1 else { throw CompresSAEError.invalid("epochs must be >= 1, got \(epochs)") }
        try Self.checkFloatSetting(learningRate, "learning_rate", positive: true)
        guard beta1 >= 0 && beta1 < 1 else { throw CompresSAEError.invalid("beta1 must be in [0, 1), got \(beta1)") }
        guard beta2 >= 0 && beta2 < 1 else { throw CompresSAEError.invalid("beta2 must be in [0, 1), got \(beta2)") }
        try Self.checkFloatSetting(eps, "eps", positive: true)
        guard numThreads >= 0 else { throw CompresSAEError.invalid("num_threads must be >= 0, got \(numThreads)") }
        guard deadLatentWindow >= 0 else {
            throw CompresSAEError.invalid("dead_latent_window must be >= 0, got \(deadLatentWindow)")
        }
        guard warmupSteps >= 0 else { throw CompresSAEError.invalid("warmup_steps must be >= 0, got \(warmupSteps)") }
        guard minLearningRateRatio >= 0 && minLearningRateRatio <= 1 else {
            throw CompresSAEError.invalid("min_learning_rate_ratio must be in [0, 1], got \(minLearningRateRatio)")
        }
        guard validationFraction >= 0 && validationFraction < 1 else {
            throw CompresSAEError.invalid("validation_fraction must be in [0, 1), got \(validationFraction)")
        }
        guard patience >= 0 else { throw CompresSAEError.invalid("patience must be >= 0, got \(patience)") }
        guard learningRateDecay != .plateau || patience > 0 else {
            throw CompresSAEError.invalid("learning_rate_decay plateau needs patience > 0 (and validation_fraction > 0)")
        }
        guard plateauFactor > 0 && plateauFactor < 1 else {
            throw CompresSAEError.invalid("plateau_factor must be in (0, 1), got \(plateauFactor)")
        }
        guard plateauReductions >= 0 else {
            throw CompresSAEError.invalid("plateau_reductions must be >= 0, got \(plateauReductions)")
        }
        guard patience == 0 || validationFraction > 0 else {
            throw CompresSAEError.invalid("early stopping (patience > 0) needs validation_fraction > 0")
        }
        guard tolerance.isFinite && tolerance >= 0 else {
            throw CompresSAEError.invalid("tolerance must be finite and >= 0, got \(tolerance)")
        }
        try Self.checkFloatSetting(sparseSimilarityWeight, "sparse_similarity_weight", positive: false)
        try Self.checkFloatSetting(similarityTemperature, "similarity_temperature", positive: true)
        guard similarityRows >= 2 && similarityRows <= 16384 else {
            throw CompresSAEError.invalid("similarity_rows must be in 2...16384, got \(similarityRows)")
        }
        try Self.checkFloatSetting(deadLatentAuxWeight, "dead_latent_aux_weight", positive: false)
        guard deadLatentAuxK >= 0 else {
            throw CompresSAEError.invalid("dead_latent_aux_k must be >= 0, got \(deadLatentAuxK)")
        }
        // (batch_size may be as large as Int.max: the steps are counted from the rows.)
        let batch = min(batchSize, rows)
        let (steps, overflow) = epochs.multipliedReportingOverflow(by: (rows + batch - 1) / batch)
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
