// Index files of the packed storages: tensors `levels` (reconstructed,
// `[count, rowBytes]`) or `posting_levels` (sparse, one level per posting
// entry), dtype I8 at 8 bits and U8 (two nibbles per byte) at 4 bits, and
// `item_scales` (F32, `[count]`).

extension SparseIndex {
    /// The tensor of a level array.
    static func levelTensor(_ name: String, bits: Int, shape: [Int], _ bytes: [UInt8]) -> Safetensors.OutputTensor {
        .bytes(name, dtype: bits == 8 ? "I8" : "U8", shape: shape, bytes)
    }
}

extension SparseIndex.LoadedCodes {
    /// Verifies, element by element, what the packed writer guarantees
    /// beyond the shared checks: every level lies in `-maxLevel...maxLevel`
    /// (the two's-complement minimum is never written), unused nibbles are
    /// zero, and every item scale is finite and >= 0. Needs no verified
    /// structure; `validateLevelMaxima` checks each item's levels after it.
    ///
    /// - Complexity: O(count k).
    func validateLevels() throws {
        let bits = storage.levelBits!, top = ValueQuantizer.maxLevel(bits: bits)
        let levels = mode == .sparse ? postingLevels : rowLevels
        func bad(_ why: String) -> CompresSAEError { .format(why) }
        if let e = itemScales.firstIndex(where: { !$0.isFinite || $0 < 0 || $0.sign == .minus }) {
            throw bad("item \(e)'s scale \(itemScales[e]) is not a finite number >= 0")
        }
        for byte in levels {
            let low = Int(SparseIndex.level([byte], 0, bits: bits)), high = bits == 4 ? Int(SparseIndex.level([byte], 1, bits: 4)) : 0
            guard abs(low) <= top, abs(high) <= top else {
                throw bad("a stored level is outside -\(top)...\(top)")
            }
        }
        // Unused nibbles: the last of each odd-k row, or of an odd number of entries.
        if bits == 4 {
            if mode == .reconstructed, k % 2 == 1 {
                let rowBytes = SparseIndex.levelRowBytes(k: k, bits: 4)
                for item in 0..<count where levels[item * rowBytes + rowBytes - 1] >> 4 != 0 {
                    throw bad("item \(item)'s unused last nibble is not zero")
                }
            }
            if mode == .sparse, (count * k) % 2 == 1, let last = levels.last, last >> 4 != 0 {
                throw bad("the posting levels' unused last nibble is not zero")
            }
        }
    }

    /// Verifies each item's levels, once the ids and indices are: an item
    /// whose levels are all zero has scale 0; any other item's largest level
    /// magnitude is `maxLevel` (the quantiser maps a row's largest value
    /// there), and its scale is above 0 unless (reconstructed mode) its
    /// levels decode to the zero vector.
    ///
    /// - Complexity: O(count k).
    func validateLevelMaxima(model: CompresSAEModel) throws {
        let bits = storage.levelBits!, top = ValueQuantizer.maxLevel(bits: bits)
        let levels = mode == .sparse ? postingLevels : rowLevels
        func bad(_ why: String) -> CompresSAEError { .format(why) }
        var largest = try [Int8].fallible(repeating: 0, count: count, "per-item levels")
        switch mode {
        case .reconstructed:
            let rowBytes = SparseIndex.levelRowBytes(k: k, bits: bits)
            for item in 0..<count {
                for t in 0..<k {
                    let level = abs(SparseIndex.level(levels, bits == 8 ? item * k + t : item * rowBytes * 2 + t, bits: bits))
                    largest[item] = max(largest[item], level)
                }
            }
        case .sparse:
            for (e, id) in postingIDs.enumerated() {
                largest[Int(id)] = max(largest[Int(id)], abs(SparseIndex.level(levels, e, bits: bits)))
            }
        }
        for item in 0..<count {
            let scale = itemScales[item]
            if largest[item] == 0 {
                guard scale == 0 else { throw bad("item \(item) has no nonzero level but scale \(scale)") }
            } else {
                guard Int(largest[item]) == top else {
                    throw bad("item \(item)'s largest level is \(largest[item]), not \(top) (the quantiser maps a code's largest value there)")
                }
                // Reconstructed mode writes scale 0 only for levels that decode to zero.
                guard scale > 0 || (mode == .reconstructed && decodesToZero(item: item, model: model)) else {
                    throw bad("item \(item) has levels but scale 0")
                }
            }
        }
    }

    /// True when a reconstructed item's levels decode to the zero vector.
    ///
    /// - Complexity: O(k d).
    private func decodesToZero(item: Int, model: CompresSAEModel) -> Bool {
        let bits = storage.levelBits!, rowBytes = SparseIndex.levelRowBytes(k: k, bits: bits), d = model.inputDim
        return model.withDecoder { decoder, _ in
            var decoded = [Float](repeating: 0, count: d)
            for t in 0..<k {
                let level = SparseIndex.level(rowLevels, bits == 8 ? item * k + t : item * rowBytes * 2 + t, bits: bits)
                let row = decoder + Int(rowIndices16[item * k + t]) * d
                for c in 0..<d { decoded[c] += Float(level) * row[c] }
            }
            return decoded.allSatisfy { $0 == 0 }
        }
    }
}
