import Testing
@testable import CompresSAE

#if canImport(Glibc)
import Glibc
#endif

/// The built-in GEMM against its definition: each output one chain of fused
/// multiply-adds in kk order from 0, then + beta c.
@Suite("Built-in GEMM")
struct GEMMTests {
    static func reference(m: Int, n: Int, kk: Int, a: [Float], b: [Float], beta: Float, c: [Float]) -> [Float] {
        var out = c
        for i in 0..<m {
            for j in 0..<n {
                var s: Float = 0
                for p in 0..<kk { s = s.addingProduct(a[i * kk + p], b[j * kk + p]) }
                out[i * n + j] = beta == 0 ? s : s + beta * c[i * n + j]
            }
        }
        return out
    }

    @Test("bit for bit the fused chain, packed and unpacked, on every edge of the tiles",
          arguments: [(1, 1, 1), (1, 4096, 384), (7, 5, 3), (8, 6, 17), (9, 7, 64), (16, 12, 5), (17, 13, 33),
                      (63, 1, 8), (64, 6, 2), (65, 19, 31), (130, 25, 100), (3, 4, 0)])
    func matchesDefinition(shape: (Int, Int, Int)) {
        let (m, n, kk) = shape
        var rng = SeededGenerator(seed: UInt64(m * 10_000 + n * 100 + kk))
        func values(_ count: Int) -> [Float] { (0..<count).map { _ in rng.nextUnitFloat() * 2 - 1 } }
        let a = values(m * kk), b = values(n * kk), c0 = values(m * n)
        for beta: Float in [0, 1] {
            let expected = Self.reference(m: m, n: n, kk: kk, a: a, b: b, beta: beta, c: c0)
            for unpacked in [false, true] {
                // beta 0 must not read c: start from NaN there.
                var c = beta == 0 ? [Float](repeating: .nan, count: m * n) : c0
                a.withUnsafeBufferPointer { ap in
                    b.withUnsafeBufferPointer { bp in
                        c.withUnsafeMutableBufferPointer { cp in
                            GEMM.portableMultiplyTransposed(m: m, n: n, kk: kk, a: ap.baseAddress ?? UnsafePointer(bitPattern: 16)!,
                                                            b: bp.baseAddress ?? UnsafePointer(bitPattern: 16)!,
                                                            beta: beta, c: cp.baseAddress!, unpacked: unpacked)
                        }
                    }
                }
                let same = zip(c, expected).allSatisfy { $0.bitPattern == $1.bitPattern }
                #expect(same, "m \(m) n \(n) kk \(kk) beta \(beta) unpacked \(unpacked)")
            }
        }
    }

    @Test("a row's result does not depend on the other rows of the call")
    func rowsIndependent() {
        let (m, n, kk) = (70, 20, 48)
        var rng = SeededGenerator(seed: 7)
        let a = (0..<(m * kk)).map { _ in rng.nextUnitFloat() * 2 - 1 }
        let b = (0..<(n * kk)).map { _ in rng.nextUnitFloat() * 2 - 1 }
        var all = [Float](repeating: 0, count: m * n)
        GEMM.portableMultiplyTransposed(m: m, n: n, kk: kk, a: a, b: b, beta: 0, c: &all)
        for i in [0, 9, 33, 69] {
            var one = [Float](repeating: 0, count: n)
            a.withUnsafeBufferPointer {
                GEMM.portableMultiplyTransposed(m: 1, n: n, kk: kk, a: $0.baseAddress! + i * kk, b: b, beta: 0, c: &one)
            }
            #expect(one == Array(all[(i * n)..<((i + 1) * n)]), "row \(i)")
        }
    }

    @Test("CSAE_DISABLE_BLAS and CSAE_DISABLE_AVX2, when set, took effect")
    func switches() {
        #if canImport(Glibc)
        if getenv("CSAE_DISABLE_BLAS") != nil { #expect(GEMM.backendName == "none (built-in kernel)") }
        if getenv("CSAE_DISABLE_AVX2") != nil { #expect(String(cString: csae_vector_isa()) == "baseline") }
        #endif
        #expect(["avx2+fma", "baseline"].contains(String(cString: csae_vector_isa())))
    }
}
