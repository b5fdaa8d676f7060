import Testing
@testable import CompresSAE

/// Parity with the PyTorch reference on its recorded inputs and outputs.
@Suite("Golden parity with the PyTorch reference")
struct GoldenParityTests {
    @Test("forward pass: pre-activations, codes, reconstructions", arguments: ["small", "medium"])
    func forward(name: String) throws {
        let golden = try Fixtures.Golden(name)
        let model = try golden.initialModel()
        let x = try golden.tensor("x")
        var pre = [Float](repeating: 0, count: golden.b * golden.h)
        try x.withUnsafeBufferPointer { xb in
            try pre.withUnsafeMutableBufferPointer { try model.preactivations(xb, rows: golden.b, into: $0) }
        }
        #expect(relativeError(pre, try golden.tensor("pre")) < 1e-5)

        let codesK = try model.encode(x, rows: golden.b)
        #expect(relativeError(densify(codesK), try golden.tensor("codes_k")) < 1e-5)
        let codes4k = try model.encode(x, rows: golden.b, k: 4 * golden.k)
        #expect(relativeError(densify(codes4k), try golden.tensor("codes_4k")) < 1e-5)

        #expect(relativeError(try model.decode(codesK), try golden.tensor("recon_k")) < 1e-5)
        #expect(relativeError(try model.decode(codes4k), try golden.tensor("recon_4k")) < 1e-5)
    }

    @Test("the seven losses and the three gradients at initialisation", arguments: ["small", "medium"])
    func lossesAndGradients(name: String) throws {
        let golden = try Fixtures.Golden(name)
        let model = try golden.initialModel()
        let x = try golden.tensor("x")
        let (report, gradients) = try x.withUnsafeBufferPointer {
            try model.lossAndGradients($0, rows: golden.b)
        }
        let expected = golden.lossesAtInit
        let pairs: [(Float, String)] = [(report.l2, "L2"), (report.l2_4k, "L2_4k"), (report.l1, "L1"),
                                        (report.l0, "L0"), (report.cosine, "Cosine"),
                                        (report.cosine4k, "Cosine_4k"), (report.loss, "Loss")]
        for (value, key) in pairs {
            let reference = try #require(expected[key])
            #expect(abs(Double(value) - reference) <= 1e-5 * max(1, abs(reference)), "\(key): \(value) vs \(reference)")
        }
        let g = try #require(gradients)
        #expect(relativeError(g.encoderWeights, try golden.tensor("grad_encoder_w")) < 1e-5)
        #expect(relativeError(g.encoderBias, try golden.tensor("grad_encoder_b")) < 1e-5)
        #expect(relativeError(g.decoderWeights, try golden.tensor("grad_decoder_w")) < 1e-5)
    }

    @Test("one Adam step, then 20, match the reference", arguments: ["small", "medium"])
    func adamSteps(name: String) throws {
        let golden = try Fixtures.Golden(name)
        let x = try golden.tensor("x")
        var options = TrainingOptions.reference
        options.batchSize = golden.b
        options.shuffle = false
        options.learningRate = 1e-3

        // Adam's first step moves each weight by about lr * g / (|g| + eps): a
        // gradient entry that is itself within float noise of zero (a sum that
        // nearly cancels) can move by a visible fraction of lr. Hence the
        // absolute floor of 1e-3 * lr next to the relative 1e-4.
        let once = try golden.initialModel()
        try once.train(x, rows: golden.b, options: options)
        #expect(allCloseExcess(once.encoderWeights, try golden.tensor("encoder_w_step1"), rtol: 1e-4, atol: 1e-6) <= 0)
        #expect(allCloseExcess(once.encoderBiasWeights, try golden.tensor("encoder_b_step1"), rtol: 1e-4, atol: 1e-6) <= 0)
        #expect(allCloseExcess(once.decoderWeights, try golden.tensor("decoder_w_step1"), rtol: 1e-4, atol: 1e-6) <= 0)

        options.epochs = 20
        let twenty = try golden.initialModel()
        let history = try twenty.train(x, rows: golden.b, options: options)
        let trace = try golden.tensor("loss_trace")
        #expect(history.count == 20)
        for (ours, reference) in zip(history, trace) {
            #expect(abs(ours - reference) <= 1e-4, "loss trace \(ours) vs \(reference)")
        }
        // After 20 steps the same amplification has compounded; the weights
        // still agree to a small fraction of the 20 * lr they moved.
        #expect(relativeError(twenty.encoderWeights, try golden.tensor("encoder_w_final")) < 1e-4)
        #expect(relativeError(twenty.encoderBiasWeights, try golden.tensor("encoder_b_final")) < 1e-3)
        #expect(relativeError(twenty.decoderWeights, try golden.tensor("decoder_w_final")) < 1e-4)
        print("golden \(name): 20-step relative errors encoder_w \(relativeError(twenty.encoderWeights, try golden.tensor("encoder_w_final"))), encoder_b \(relativeError(twenty.encoderBiasWeights, try golden.tensor("encoder_b_final"))), decoder_w \(relativeError(twenty.decoderWeights, try golden.tensor("decoder_w_final"))); step-1 allclose excess (<= 0 passes) encoder_w \(allCloseExcess(once.encoderWeights, try golden.tensor("encoder_w_step1"), rtol: 1e-4, atol: 1e-6)), encoder_b \(allCloseExcess(once.encoderBiasWeights, try golden.tensor("encoder_b_step1"), rtol: 1e-4, atol: 1e-6)), decoder_w \(allCloseExcess(once.decoderWeights, try golden.tensor("decoder_w_step1"), rtol: 1e-4, atol: 1e-6))")
    }
}
