/// Keeps the best `n` (score, id) pairs seen, in the order "higher score
/// first, lower id first on equal scores": the order brute force produces.
///
/// A bounded min-heap whose root is the worst kept pair; `threshold` is that
/// pair's score while the heap is full (candidates below it cannot enter).
struct TopNSelector {
    let capacity: Int
    private(set) var count = 0
    let scores: UnsafeMutablePointer<Float>
    let ids: UnsafeMutablePointer<Int64>

    init(capacity: Int) {
        self.capacity = capacity
        scores = .allocate(capacity: max(1, capacity))
        ids = .allocate(capacity: max(1, capacity))
    }

    func deallocate() {
        scores.deallocate()
        ids.deallocate()
    }

    mutating func reset() { count = 0 }

    /// The score a candidate must exceed (or equal, with a lower id) to enter.
    var threshold: Float { count < capacity ? -.infinity : scores[0] }

    @inline(__always)
    static func better(_ s1: Float, _ id1: Int64, than s2: Float, _ id2: Int64) -> Bool {
        s1 > s2 || (s1 == s2 && id1 < id2)
    }

    /// Offers a candidate.
    @inline(__always)
    mutating func offer(_ score: Float, _ id: Int64) {
        if count < capacity {
            // Sift up from the end.
            var child = count
            count += 1
            while child > 0 {
                let parent = (child - 1) / 2
                // The parent must be worse than the child in a min-heap of quality.
                guard Self.better(scores[parent], ids[parent], than: score, id) else { break }
                scores[child] = scores[parent]
                ids[child] = ids[parent]
                child = parent
            }
            scores[child] = score
            ids[child] = id
            return
        }
        guard capacity > 0, Self.better(score, id, than: scores[0], ids[0]) else { return }
        siftDown(score, id)
    }

    @inline(__always)
    private mutating func siftDown(_ score: Float, _ id: Int64) {
        var parent = 0
        while true {
            var child = 2 * parent + 1
            if child >= count { break }
            if child + 1 < count && Self.better(scores[child], ids[child], than: scores[child + 1], ids[child + 1]) {
                child += 1
            }
            guard Self.better(score, id, than: scores[child], ids[child]) else { break }
            scores[parent] = scores[child]
            ids[parent] = ids[child]
            parent = child
        }
        scores[parent] = score
        ids[parent] = id
    }

    /// Empties the heap into `outScores`/`outIds`, best first; returns how many.
    mutating func drainSorted(scores outScores: UnsafeMutablePointer<Float>, ids outIds: UnsafeMutablePointer<Int64>) -> Int {
        let total = count
        while count > 0 {
            let worstScore = scores[0], worstId = ids[0]
            count -= 1
            outScores[count] = worstScore
            outIds[count] = worstId
            if count > 0 {
                let lastScore = scores[count], lastId = ids[count]
                siftDown(lastScore, lastId)
            }
        }
        return total
    }
}
