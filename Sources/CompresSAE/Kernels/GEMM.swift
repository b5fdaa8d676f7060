import CCompresSAE

/// Matrix products. The encoder forward is the only dense product of the
/// library; it goes to an optimised BLAS when one is installed (found at run
/// time, see blas_loader.c) and to a portable blocked kernel otherwise.
enum GEMM {
    // CBLAS enum values (cblas.h): row-major, no transpose, transpose.
    private static let rowMajor: Int32 = 101
    private static let noTrans: Int32 = 111
    private static let trans: Int32 = 112

    /// Name of the BLAS in use, or "none (built-in kernel)".
    static var backendName: String {
        let name = String(cString: csae_internal_blas_name())
        return name == "none" ? "none (built-in kernel)" : name
    }

    /// `c[m,n] = a[m,kk] * b[n,kk]^T + beta * c`, all row-major and contiguous.
    ///
    /// - Parameters:
    ///   - a: `m` rows of `kk` floats.
    ///   - b: `n` rows of `kk` floats (the right operand, transposed).
    ///   - c: `m` rows of `n` floats; read only when `beta != 0`.
    /// - Complexity: O(m n kk).
    static func multiplyTransposed(
        m: Int, n: Int, kk: Int,
        a: UnsafePointer<Float>, b: UnsafePointer<Float>,
        beta: Float, c: UnsafeMutablePointer<Float>
    ) {
        if m == 0 || n == 0 { return }
        if let sgemm = csae_internal_blas_sgemm(),
           m < Int(Int32.max), n < Int(Int32.max), kk < Int(Int32.max) {
            sgemm(rowMajor, noTrans, trans, Int32(m), Int32(n), Int32(kk),
                  1, a, Int32(kk), b, Int32(kk), beta, c, Int32(n))
            return
        }
        portableMultiplyTransposed(m: m, n: n, kk: kk, a: a, b: b, beta: beta, c: c)
    }

    /// Blocked fallback: 4 rows of `a` against one row of `b` at a time, so each
    /// row of `b` is loaded once per 4 outputs.
    static func portableMultiplyTransposed(
        m: Int, n: Int, kk: Int,
        a: UnsafePointer<Float>, b: UnsafePointer<Float>,
        beta: Float, c: UnsafeMutablePointer<Float>
    ) {
        var i = 0
        while i < m {
            let rows = min(4, m - i)
            for j in 0..<n {
                let bj = b + j * kk
                for r in 0..<rows {
                    let value = dot(a + (i + r) * kk, bj, kk)
                    let out = c + (i + r) * n + j
                    out.pointee = beta == 0 ? value : value + beta * out.pointee
                }
            }
            i += rows
        }
    }
}
