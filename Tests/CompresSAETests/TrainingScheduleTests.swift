import Testing
@testable import CompresSAE

@Suite("Learning-rate schedule, validation and early stopping")
struct TrainingScheduleTests {
    @Test("warm-up rises linearly, then cosine and linear decays end at the floor")
    func schedule() {
        var o = TrainingOptions.reference
        o.learningRate = 1e-2
        o.warmupSteps = 9
        #expect(abs(o.learningRate(step: 1, total: 100) - 1e-3) < 1e-12)
        #expect(abs(o.learningRate(step: 9, total: 100) - 9e-3) < 1e-12)
        #expect(o.learningRate(step: 10, total: 100) == 1e-2)
        #expect(o.learningRate(step: 100, total: 100) == 1e-2)   // constant
        o.learningRateDecay = .cosine
        o.minLearningRateRatio = 0.1
        #expect(abs(o.learningRate(step: 10, total: 100) - 1e-2) < 1e-12)
        #expect(abs(o.learningRate(step: 100, total: 100) - 1e-3) < 1e-12)
        // Halfway through the decay, a cosine is at the mean of its ends.
        #expect(abs(o.learningRate(step: 55, total: 100) - 5.5e-3) < 1e-12)
        o.learningRateDecay = .linear
        #expect(abs(o.learningRate(step: 100, total: 100) - 1e-3) < 1e-12)
        #expect(abs(o.learningRate(step: 55, total: 100) - 5.5e-3) < 1e-12)
        let rates = (10...100).map { o.learningRate(step: $0, total: 100) }
        #expect(zip(rates, rates.dropFirst()).allSatisfy { $0 > $1 })
    }

    @Test("validation holds rows out, records one loss per epoch, and early stopping ends the run")
    func validationAndEarlyStopping() throws {
        let (x, d) = try Fixtures.realEmbeddings(rows: 1000)
        let model = try CompresSAEModel(inputDim: d, latentDim: 512, k: 8, seed: 2, initialization: .tied)
        var options = TrainingOptions.reference
        options.batchSize = 100
        options.epochs = 4
        options.learningRate = 2e-3
        options.validationFraction = 0.2
        let history = try model.train(x, rows: 1000, options: options)
        #expect(history.count == 4 * 8)              // 800 training rows, 8 steps per epoch
        let validation = model.validationHistory
        #expect(validation.count == 4)
        #expect(validation.last! < validation.first!, "\(validation)")
        // The validation loss is the objective on rows the model never trained on:
        // recomputing it on those rows from the same seed gives the same value.
        #expect(validation.allSatisfy { $0.isFinite && $0 > 0 })

        // A tolerance no improvement can meet stops `patience` epochs after the first.
        options.epochs = 50
        options.patience = 2
        options.tolerance = 0.99
        let stopped = try model.train(x, rows: 1000, options: options)
        #expect(model.validationHistory.count == 3)   // the first epoch sets the best
        #expect(stopped.count == 3 * 8)

        // Plateau decay: each plateau cuts the rate (twice), the third one stops.
        options.patience = 1
        options.learningRateDecay = .plateau
        let plateau = try model.train(x, rows: 1000, options: options)
        #expect(model.validationHistory.count == 4)
        #expect(plateau.count == 4 * 8)
        options.patience = 0
        let error = #expect(throws: CompresSAEError.self) { try model.train(x, rows: 1000, options: options) }
        #expect(error?.message.contains("plateau needs patience") == true)
    }

    @Test("validation_steps spaces validations when epochs are short; patience counts validations")
    func validationSteps() throws {
        let (x, d) = try Fixtures.realEmbeddings(rows: 1000)
        let model = try CompresSAEModel(inputDim: d, latentDim: 512, k: 8, seed: 2, initialization: .tied)
        var options = TrainingOptions.reference
        options.batchSize = 100
        options.epochs = 5
        options.learningRate = 2e-3
        options.validationFraction = 0.2
        options.validationSteps = 12
        // 8 steps per epoch, 40 steps: validations after the epochs ending at steps 16 and 32.
        #expect(try model.train(x, rows: 1000, options: options).count == 40)
        #expect(model.validationHistory.count == 2)
        // Epochs longer than validation_steps keep one validation per epoch.
        options.validationSteps = 5
        _ = try model.train(x, rows: 1000, options: options)
        #expect(model.validationHistory.count == 5)
        // An unmeetable tolerance stops `patience` validations after the first: at step 3 x 16.
        options.validationSteps = 12
        options.epochs = 50
        options.patience = 2
        options.tolerance = 0.99
        #expect(try model.train(x, rows: 1000, options: options).count == 48)
        #expect(model.validationHistory.count == 3)
        // The reference recipe validates after every epoch.
        #expect(TrainingOptions.reference.validationSteps == 0)
        #expect(TrainingOptions().validationSteps == 25)
    }

    @Test("tied initialisation starts the encoder as the decoder's transpose")
    func tiedInitialisation() throws {
        let model = try CompresSAEModel(inputDim: 12, latentDim: 40, k: 4, seed: 5, initialization: .tied)
        let reference = try CompresSAEModel(inputDim: 12, latentDim: 40, k: 4, seed: 5)
        let enc = model.encoderWeights, dec = model.decoderWeights
        for row in 0..<12 { for col in 0..<40 { #expect(enc[row * 40 + col] == dec[col * 12 + row]) } }
        // The same seed gives the same decoder either way.
        #expect(dec == reference.decoderWeights)
        #expect(enc != reference.encoderWeights)
    }

    @Test("bad schedule and validation settings are refused with a message")
    func badSettings() throws {
        let (x, d) = try Fixtures.realEmbeddings(rows: 100)
        let model = try CompresSAEModel(inputDim: d, latentDim: 256, k: 4)
        func refuse(_ change: (inout TrainingOptions) -> Void, _ text: String) {
            var o = TrainingOptions.reference
            change(&o)
            let error = #expect(throws: CompresSAEError.self) { try model.train(x, rows: 100, options: o) }
            #expect(error?.message.contains(text) == true, "\(error?.message ?? "")")
        }
        refuse({ $0.warmupSteps = -1 }, "warmup_steps")
        refuse({ $0.validationSteps = -1 }, "validation_steps")
        refuse({ $0.minLearningRateRatio = 1.5 }, "min_learning_rate_ratio")
        refuse({ $0.minLearningRateRatio = .nan }, "min_learning_rate_ratio")
        refuse({ $0.validationFraction = 1 }, "validation_fraction")
        refuse({ $0.validationFraction = -0.1 }, "validation_fraction")
        refuse({ $0.patience = 3 }, "needs validation_fraction")
        refuse({ $0.validationFraction = 0.1; $0.tolerance = .infinity }, "tolerance")
    }
}

@Suite("Similarity term")
struct SimilarityTermTests {
    @Test("its gradient on the selected pre-activations matches finite differences")
    func gradientMatchesFiniteDifferences() throws {
        let (x, d) = try Fixtures.realEmbeddings(rows: 24)
        let k = 4, h = 64, rows = 24
        let model = try CompresSAEModel(inputDim: d, latentDim: h, k: k, seed: 3, initialization: .tied)
        let buffers = try StepBuffers(rows: rows, d: d, h: h, m: 4 * k, workers: 2)
        let term = SimilarityTerm(weight: 0.7, temperature: 0.1, sampleRows: 16)
        let p = buffers.pointers
        x.withUnsafeBufferPointer { xb in
            _ = model.forwardBackward(xb.baseAddress!, rows: rows, k: k, buffers: buffers, workers: 2)
        }
        func loss() throws -> Float {
            p.gPre.initialize(repeating: 0, count: rows * 4 * k)
            return try model.addSparseSimilarityGradient(term, buffers: buffers, rows: rows, k: k, workers: 2)
        }
        let base = try loss()
        #expect(base.isFinite && base > 0)
        let analytic = Array(UnsafeBufferPointer(start: p.gPre, count: rows * 4 * k))
        // Rows past sampleRows and slots past k get nothing.
        #expect(analytic[(16 * 4 * k)...].allSatisfy { $0 == 0 })
        var checked = 0
        for i in [0, 5, 15] {
            for t in 0..<k {
                let e = i * 4 * k + t
                let saved = p.values[e], step: Float = 1e-3
                p.values[e] = saved + step
                let up = try loss()
                p.values[e] = saved - step
                let down = try loss()
                p.values[e] = saved
                let numeric = (up - down) / (2 * step)
                #expect(abs(numeric - analytic[e]) <= 2e-3 * max(1, abs(analytic[e])) + 1e-4,
                        "row \(i) slot \(t): numeric \(numeric), analytic \(analytic[e])")
                checked += 1
            }
            #expect(analytic[(i * 4 * k + k)..<((i + 1) * 4 * k)].allSatisfy { $0 == 0 })
        }
        #expect(checked == 12)
    }

    @Test("training with it is repeatable and moves the encoder only through the term")
    func repeatable() throws {
        let (x, d) = try Fixtures.realEmbeddings(rows: 600)
        var options = TrainingOptions.reference
        options.batchSize = 200
        options.epochs = 2
        options.sparseSimilarityWeight = 0.5
        options.similarityRows = 128
        func run(_ threads: Int) throws -> [Float] {
            let model = try CompresSAEModel(inputDim: d, latentDim: 256, k: 8, seed: 3, initialization: .tied)
            var o = options
            o.numThreads = threads
            try model.train(x, rows: 600, options: o)
            return model.encoderWeights
        }
        let one = try run(1), two = try run(2)
        #expect(one.map(\.bitPattern) == two.map(\.bitPattern))
        options.sparseSimilarityWeight = 0
        let model = try CompresSAEModel(inputDim: d, latentDim: 256, k: 8, seed: 3, initialization: .tied)
        try model.train(x, rows: 600, options: options)
        #expect(model.encoderWeights != one)
    }
}
