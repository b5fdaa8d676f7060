import Testing
@testable import CompresSAE

@Suite("Dead-latent term")
struct DeadLatentTermTests {
    /// The term's gradient with respect to the dead latents' parameters,
    /// against central differences of its value. The residual each row's dead
    /// latents reconstruct is a constant of the step; it depends only on the
    /// live latents' parameters, which are not perturbed here.
    @Test("its gradient on the dead latents' parameters matches finite differences")
    func gradientMatchesFiniteDifferences() throws {
        let (x, d) = try Fixtures.realEmbeddings(rows: 24)
        let k = 4, h = 64, rows = 24, workers = 2
        let model = try CompresSAEModel(inputDim: d, latentDim: h, k: k, seed: 3, initialization: .tied)
        // Spread the pre-activations so that no perturbation below changes a selection.
        for j in 0..<h { model.encoderBias[j] = Float(j % 7) * 0.013 - 0.04 }
        let buffers = try StepBuffers(rows: rows, d: d, h: h, m: 4 * k, workers: workers)
        let p = buffers.pointers
        func forward(_ term: DeadLatentWorkspace?) {
            x.withUnsafeBufferPointer { xb in
                _ = model.forwardBackward(xb.baseAddress!, rows: rows, k: k, buffers: buffers, workers: workers,
                                          deadLatents: term)
            }
        }
        forward(nil)
        var live = Set<Int>()
        for i in 0..<rows { for t in 0..<k { live.insert(Int(p.selected[i * 4 * k + t])) } }
        let deadList = (0..<h).filter { !live.contains($0) }
        #expect(deadList.count >= 8)
        let term = try DeadLatentWorkspace(weight: 0.7, auxK: 3, rows: rows, d: d, h: h, blocks: buffers.latentBlocks)
        term.setDead(deadList)
        #expect(term.usedK == 3 && term.isActive)

        /// Per-latent gradients (encoder column, decoder row, bias) of the step just run.
        func gradients(_ term: DeadLatentWorkspace?) -> (enc: [Float], dec: [Float], bias: [Float]) {
            let enc = UnsafeMutableBufferPointer<Float>.allocate(capacity: h * d)
            let dec = UnsafeMutableBufferPointer<Float>.allocate(capacity: h * d)
            let bias = UnsafeMutableBufferPointer<Float>.allocate(capacity: h)
            defer { enc.deallocate(); dec.deallocate(); bias.deallocate() }
            let e = SharedPointer(enc.baseAddress!), r = SharedPointer(dec.baseAddress!)
            let b = SharedPointer(bias.baseAddress!)
            model.forEachLatentGradient(buffers: buffers, rows: rows, k: k, workers: workers,
                                        deadLatents: term) { j, gEnc, gDec, gBias in
                (e.base + j * d).update(from: gEnc, count: d)
                (r.base + j * d).update(from: gDec, count: d)
                b.base[j] = gBias
            }
            return (Array(enc), Array(dec), Array(bias))
        }
        forward(term)
        let base = term.lastLoss
        #expect(base.isFinite && base > 0)
        let chosen = Set((0..<(rows * 3)).map { Int(term.selected[$0]) })
        let with = gradients(term), without = gradients(nil)
        let gEnc = zip(with.enc, without.enc).map { $0 - $1 }
        let gDec = zip(with.dec, without.dec).map { $0 - $1 }
        let gBias = zip(with.bias, without.bias).map { $0 - $1 }
        // Only the latents some row chose get anything from the term.
        for j in 0..<h where !chosen.contains(j) {
            #expect(gBias[j] == 0 && gEnc[(j * d)..<((j + 1) * d)].allSatisfy { $0 == 0 }, "latent \(j)")
        }
        #expect(chosen.isSubset(of: Set(deadList)))

        let choice = Array(UnsafeBufferPointer(start: term.selected, count: rows * 3))
        /// The term's value, or nil when the perturbation changed a row's choice of dead latents.
        func value() -> Float? {
            forward(term)
            let same = Set(0..<rows).allSatisfy { i in
                Set(choice[(i * 3)..<(i * 3 + 3)]) == Set(UnsafeBufferPointer(start: term.selected + i * 3, count: 3))
            }
            return same ? term.lastLoss : nil
        }
        var skipped = 0
        func check(_ storage: ReferenceWritableKeyPath<CompresSAEModel, [Float]>, _ index: Int, _ analytic: Float,
                   _ what: String) {
            let saved = model[keyPath: storage][index], step: Float = 2e-3
            model[keyPath: storage][index] = saved + step
            let up = value()
            model[keyPath: storage][index] = saved - step
            let down = value()
            model[keyPath: storage][index] = saved
            guard let up, let down else { skipped += 1; return }
            let numeric = (up - down) / (2 * step)
            #expect(abs(numeric - analytic) <= 5e-2 * abs(analytic) + 1e-4,
                    "\(what): numeric \(numeric), analytic \(analytic)")
        }
        var checked = 0
        for j in chosen.sorted().prefix(4) {
            check(\.encoderBias, j, gBias[j], "bias \(j)")
            for c in [0, 17, 200] {
                check(\.encoderT, j * d + c, gEnc[j * d + c], "encoder \(j),\(c)")
                check(\.decoder, j * d + c, gDec[j * d + c], "decoder \(j),\(c)")
            }
            checked += 1
        }
        #expect(checked == 4)
        #expect(skipped <= 4, "\(skipped) of 28 perturbations changed a choice")
        #expect(gBias.contains { $0 != 0 })
    }

    @Test("it brings back latents that can never fire without it, repeatably")
    func revivesDeadLatents() throws {
        let (x, d) = try Fixtures.realEmbeddings(rows: 400)
        let h = 64
        let seeded = try CompresSAEModel(inputDim: d, latentDim: h, k: 4, seed: 8)
        // Latents 0..<8 start with tiny encoder columns and zero bias: never
        // in a 4k-code, so without the term they get no gradient and stay dead.
        var encoder = seeded.encoderWeights
        for row in 0..<d { for j in 0..<8 { encoder[row * h + j] *= 1e-4 } }
        func run(weight: Double, threads: Int) throws -> CompresSAEModel {
            let model = try CompresSAEModel(inputDim: d, latentDim: h, k: 4, encoderWeights: encoder,
                                            encoderBias: seeded.encoderBiasWeights,
                                            decoderWeights: seeded.decoderWeights)
            var options = TrainingOptions.reference
            options.batchSize = 100
            options.epochs = 6
            options.learningRate = 1e-2
            options.deadLatentWindow = 100
            options.deadLatentAuxWeight = weight
            options.deadLatentAuxK = 16
            options.numThreads = threads
            try model.train(x, rows: 400, options: options)
            return model
        }
        let off = try run(weight: 0, threads: 2)
        let on = try run(weight: 1, threads: 2), onOne = try run(weight: 1, threads: 1)
        #expect(on.encoderWeights.map(\.bitPattern) == onOne.encoderWeights.map(\.bitPattern))
        let offEncoder = off.encoderWeights, onEncoder = on.encoderWeights
        for j in 0..<8 {
            #expect((0..<d).allSatisfy { offEncoder[$0 * h + j] == encoder[$0 * h + j] })
            #expect((0..<d).contains { onEncoder[$0 * h + j] != encoder[$0 * h + j] })
        }
        #expect(off.deadLatentHistory.last! >= 8.0 / Float(h))
        // With the term, some of the eight fire in a k-code of the last window.
        let codes = try on.encode(x, rows: 400)
        #expect(codes.indices.contains { $0 < 8 }, "no revived latent in any code")
    }

    @Test("the reference recipe leaves it off; bad settings are refused")
    func settings() throws {
        #expect(TrainingOptions.reference.deadLatentAuxWeight == 0)
        #expect(TrainingOptions().deadLatentAuxWeight > 0)
        #expect(TrainingOptions().deadLatentAuxK(k: 8, d: 384, h: 4096) == TrainingOptions().deadLatentAuxK(k: 8, d: 384, h: 4096))
        let (x, d) = try Fixtures.realEmbeddings(rows: 100)
        let model = try CompresSAEModel(inputDim: d, latentDim: 64, k: 4)
        for (change, text) in [({ (o: inout TrainingOptions) in o.deadLatentAuxWeight = -1 }, "dead_latent_aux_weight"),
                               ({ (o: inout TrainingOptions) in o.deadLatentAuxWeight = .nan }, "dead_latent_aux_weight"),
                               ({ (o: inout TrainingOptions) in o.deadLatentAuxK = -1 }, "dead_latent_aux_k")] {
            var o = TrainingOptions.reference
            change(&o)
            let error = #expect(throws: CompresSAEError.self) { try model.train(x, rows: 100, options: o) }
            #expect(error?.message.contains(text) == true, "\(error?.message ?? "")")
        }
    }
}

extension DeadLatentWorkspace {
    /// Sets the dead latents from a list, ignoring repeats and indices outside `0..<h`.
    func setDead(_ list: [Int]) {
        let set = Set(list)
        setDead { set.contains($0) }
    }
}
