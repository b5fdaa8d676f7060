import CCompresSAE

// The one mapping between csae_train_params (C) and TrainingOptions (Swift).
// Each line of `TrainParamField.all` binds a C field to the option of the
// same name (lowerCamelCase of the C name) and is used both ways: to write
// the defaults csae_train_default_params() returns, and to read a caller's
// struct in csae_model_train. Adding a training option is the Swift option,
// its C field (with its doc) in compressae_types.h, and one line here.

/// One field of csae_train_params and its TrainingOptions counterpart.
struct TrainParamField {
    /// Sets the option from the C field, validating it.
    let read: (csae_train_params, inout TrainingOptions) throws -> Void
    /// Sets the C field from the option.
    let write: (TrainingOptions, inout csae_train_params) -> Void

    /// Every field but struct_size, progress and user_data (the call's own).
    static var all: [TrainParamField] {
        [
            .threads(\.num_threads, \.numThreads),
            .count(\.batch_size, \.batchSize, "batch_size", minimum: 1),
            .count(\.epochs, \.epochs, "epochs", minimum: 1),
            .same(\.learning_rate, \.learningRate),
            .same(\.beta1, \.beta1),
            .same(\.beta2, \.beta2),
            .same(\.eps, \.eps),
            .same(\.seed, \.seed),
            .flag(\.shuffle, \.shuffle),
            .choice(\.learning_rate_decay, \.learningRateDecay, "learning_rate_decay",
                    "CSAE_LR_CONSTANT, CSAE_LR_COSINE, CSAE_LR_LINEAR or CSAE_LR_PLATEAU"),
            .count(\.dead_latent_window, \.deadLatentWindow, "dead_latent_window", minimum: 0),
            .count(\.warmup_steps, \.warmupSteps, "warmup_steps", minimum: 0),
            .same(\.min_learning_rate_ratio, \.minLearningRateRatio),
            .same(\.validation_fraction, \.validationFraction),
            .count(\.patience, \.patience, "patience", minimum: 0),
            .same(\.tolerance, \.tolerance),
            .same(\.plateau_factor, \.plateauFactor),
            .count(\.plateau_reductions, \.plateauReductions, "plateau_reductions", minimum: 0),
            .same(\.sparse_similarity_weight, \.sparseSimilarityWeight),
            .same(\.similarity_temperature, \.similarityTemperature),
            .count(\.similarity_rows, \.similarityRows, "similarity_rows", minimum: 0),
            .count(\.validation_steps, \.validationSteps, "validation_steps", minimum: 0),
            .same(\.dead_latent_aux_weight, \.deadLatentAuxWeight),
            .count(\.dead_latent_aux_k, \.deadLatentAuxK, "dead_latent_aux_k", minimum: 0),
        ]
    }

    /// A field of the same type on both sides (reals and the seed): the
    /// options' own validation (in `train`) checks its value.
    static func same<T>(_ c: WritableKeyPath<csae_train_params, T>, _ s: WritableKeyPath<TrainingOptions, T>) -> Self {
        Self(read: { p, o in o[keyPath: s] = p[keyPath: c] }, write: { o, p in p[keyPath: c] = o[keyPath: s] })
    }

    /// An int64_t count in `minimum...Int32.max`.
    static func count(_ c: WritableKeyPath<csae_train_params, Int64>, _ s: WritableKeyPath<TrainingOptions, Int>,
                      _ name: String, minimum: Int64) -> Self {
        Self(read: { p, o in
                 o[keyPath: s] = minimum >= 1 ? try intArgument(p[keyPath: c], name) : try nonNegative(p[keyPath: c], name)
             },
             write: { o, p in p[keyPath: c] = Int64(o[keyPath: s]) })
    }

    /// An int32_t num_threads (0 = the default).
    static func threads(_ c: WritableKeyPath<csae_train_params, Int32>, _ s: WritableKeyPath<TrainingOptions, Int>) -> Self {
        Self(read: { p, o in o[keyPath: s] = try threadsArgument(p[keyPath: c]) },
             write: { o, p in p[keyPath: c] = Int32(clamping: o[keyPath: s]) })
    }

    /// An int32_t flag: 0 is false, anything else true.
    static func flag(_ c: WritableKeyPath<csae_train_params, Int32>, _ s: WritableKeyPath<TrainingOptions, Bool>) -> Self {
        Self(read: { p, o in o[keyPath: s] = p[keyPath: c] != 0 }, write: { o, p in p[keyPath: c] = o[keyPath: s] ? 1 : 0 })
    }

    /// An int32_t value of a C enum.
    static func choice<E: RawRepresentable<Int32>>(
        _ c: WritableKeyPath<csae_train_params, Int32>, _ s: WritableKeyPath<TrainingOptions, E>,
        _ name: String, _ allowed: String
    ) -> Self {
        Self(read: { p, o in
                 guard let value = E(rawValue: p[keyPath: c]) else {
                     throw CompresSAEError.invalid("\(name) must be \(allowed), got \(p[keyPath: c])")
                 }
                 o[keyPath: s] = value
             },
             write: { o, p in p[keyPath: c] = o[keyPath: s].rawValue })
    }
}

extension TrainingOptions {
    /// The options a caller's csae_train_params describe (all but the
    /// progress callback), each field checked.
    init(_ params: csae_train_params) throws {
        self.init()
        for field in TrainParamField.all { try field.read(params, &self) }
    }
}

extension csae_train_params {
    /// The C struct of `options`, with struct_size set and no progress callback.
    init(_ options: TrainingOptions) {
        self.init()
        struct_size = UInt32(MemoryLayout<Self>.size)
        progress = nil
        user_data = nil
        for field in TrainParamField.all { field.write(options, &self) }
    }
}
