import Testing
@testable import CompresSAE

/// Integer arithmetic on option values a caller passes (Python ints up to
/// 2^63 - 1 reach these unchanged): errors or saturated results, never an
/// overflow trap.
@Suite("Option arithmetic")
struct InputArithmeticTests {
    @Test("batch_size and warmup_steps of Int.max train or are refused without trapping")
    func hugeOptions() throws {
        let d = 8, n = 40
        var rng = SeededGenerator(seed: 2)
        let x = (0..<(n * d)).map { _ in 2 * rng.nextUnitFloat() - 1 + 1e-3 }
        let model = try CompresSAEModel(inputDim: d, latentDim: 32, k: 2, seed: 1)
        var options = TrainingOptions.reference
        options.epochs = 1
        options.batchSize = Int.max  // one batch of all rows
        options.warmupSteps = Int.max
        let history = try model.train(x, rows: n, options: options)
        #expect(history.count == 1)
        #expect(options.totalSteps(rows: n) == 1)
        options.epochs = Int.max
        options.batchSize = 1
        #expect(throws: CompresSAEError.self) { try model.train(x, rows: n, options: options) }
        #expect(options.totalSteps(rows: n) == Int.max)
        #expect(options.learningRate(step: 5, total: Int.max) > 0)
    }

    @Test("the public schedule helpers take any option values")
    func scheduleHelpers() {
        var options = TrainingOptions()
        for fraction in [1e300, .infinity, .nan, 0.5, 0.999999] {
            options.validationFraction = fraction
            let held = options.validationRows(rows: Int.max)
            #expect(held >= 0 && held < Int.max)
            #expect(options.validationRows(rows: 100) <= 99)
        }
        options.validationFraction = 0.05
        options.batchSize = 0
        options.epochs = Int.max
        #expect(options.totalSteps(rows: 1000) >= 0)
        options.warmupSteps = Int.max
        options.learningRateDecay = .cosine
        #expect(options.learningRate(step: Int.max, total: Int.max).isFinite)
        options.warmupSteps = 0
        #expect(options.learningRate(step: Int.max, total: Int.min).isFinite)
    }
}
