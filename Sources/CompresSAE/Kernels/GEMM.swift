import CCompresSAE

/// Matrix products. The encoder forward is the only dense product of the
/// library; it goes to an optimised BLAS when one is installed (found at run
/// time, see blas_loader.c) and to a portable blocked kernel otherwise.
enum GEMM {
    // CBLAS enum values (cblas.h): row-major, no transpose, transpose.
    private static let rowMajor: Int32 = 101
    private static let noTrans: Int32 = 111
    private static let trans: Int32 = 112

    /// What `backendCName` says when no BLAS was found.
    private static let builtInKernelName: StaticString = "none (built-in kernel)"

    /// Name of the BLAS in use, or "none (built-in kernel)", as a static
    /// NUL-terminated string (the loader's, or a literal of the binary).
    ///
    /// Complexity: O(length of the name).
    static var backendCName: UnsafePointer<CChar> {
        let loaded = csae_internal_blas_name()!
        guard String(cString: loaded) == "none" else { return loaded }
        return UnsafeRawPointer(builtInKernelName.utf8Start).assumingMemoryBound(to: CChar.self)
    }

    /// Name of the BLAS in use, or "none (built-in kernel)".
    static var backendName: String { String(cString: backendCName) }

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

    /// The built-in kernel (gemm_impl.h): each output one chain of fused
    /// multiply-adds in `kk` order, the order of an optimised sgemm, so its
    /// results are those of the BLAS path to within that BLAS's own choices.
    ///
    /// - Parameter unpacked: use the form that reads `a` in place (the one
    ///   taken when the packing buffer cannot be allocated); the results are
    ///   the same bit for bit.
    /// - Complexity: O(m n kk).
    static func portableMultiplyTransposed(
        m: Int, n: Int, kk: Int,
        a: UnsafePointer<Float>, b: UnsafePointer<Float>,
        beta: Float, c: UnsafeMutablePointer<Float>, unpacked: Bool = false
    ) {
        csae_k_gemm_nt(Int64(m), Int64(n), Int64(kk), a, b, beta, c, unpacked ? 1 : 0)
    }
}
