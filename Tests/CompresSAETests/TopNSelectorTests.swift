import Testing
@testable import CompresSAE

@Suite("Top-n selection")
struct TopNSelectorTests {
    /// Scores drawn from a few values (many ties), both signs, both zeros.
    func stream(count: Int, seed: UInt64) -> [(Float, Int64)] {
        var rng = SeededGenerator(seed: seed)
        let palette: [Float] = [-3, -1.5, -0.0, 0, 0.25, 0.25, 1, 2.5, .leastNonzeroMagnitude, -.leastNonzeroMagnitude]
        return (0..<count).map { i in
            let score = Bool.random(using: &rng) ? palette.randomElement(using: &rng)! : Float.random(in: -2...2, using: &rng)
            return (score, Int64(i))
        }
    }

    @Test("keeps the best n in brute force's order, in any arrival order", arguments: [1, 7, 100])
    func matchesSort(n: Int) throws {
        for seed in 0..<20 as Range<UInt64> {
            var pairs = stream(count: 1000, seed: seed)
            let expected = pairs.sorted { $0.0 > $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }.prefix(n)
            if seed % 2 == 1 { var rng = SeededGenerator(seed: seed); pairs.shuffle(using: &rng) }
            var selector = try TopNSelector(capacity: n)
            for (score, id) in pairs { selector.offer(score, id) }
            var scores = [Float](repeating: .nan, count: n), ids = [Int64](repeating: -1, count: n)
            let found = selector.drainSorted(scores: &scores, ids: &ids)
            #expect(found == n)
            #expect(ids == expected.map { $0.1 }, "seed \(seed)")
            #expect(zip(scores, expected).allSatisfy { $0 == $1.0 }, "seed \(seed)")
        }
    }

    @Test("the threshold is the worst kept score once full, and ids up to 2^32 - 1 survive")
    func thresholdAndLargeIDs() throws {
        var selector = try TopNSelector(capacity: 2)
        #expect(selector.threshold == -.infinity)
        selector.offer(1, 4_294_967_295)
        selector.offer(-5, 3)
        #expect(selector.threshold == -5)
        selector.offer(0.5, 2_147_483_648)
        #expect(selector.threshold == 0.5)
        var scores = [Float](repeating: 0, count: 2), ids = [Int64](repeating: 0, count: 2)
        _ = selector.drainSorted(scores: &scores, ids: &ids)
        #expect(scores == [1, 0.5])
        #expect(ids == [4_294_967_295, 2_147_483_648])
    }

    @Test("a pool's selectors are independent, and a pool too large to allocate is an error")
    func pool() throws {
        let pool = try TopNSelectorPool(count: 3, capacity: 2)
        for slot in 0..<3 {
            pool[slot].pointee.offer(Float(slot), Int64(slot))
            pool[slot].pointee.offer(-1, 99)
        }
        var scores = [Float](repeating: 0, count: 2), ids = [Int64](repeating: 0, count: 2)
        for slot in 0..<3 {
            let found = pool[slot].pointee.drainSorted(scores: &scores, ids: &ids)
            #expect(found == 2)
            #expect(ids == [Int64(slot), 99])
        }
        // A heap that cannot be made fails the pool (with nothing leaked: ASan's leak check).
        #expect(throws: CompresSAEError.self) { try TopNSelectorPool(count: 2, capacity: Int.max / 32) }
    }
}
