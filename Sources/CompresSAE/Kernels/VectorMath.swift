import CCompresSAE

/// Small dense kernels on raw buffers. The inner loops live in
/// vector_kernels.c, built for both the x86-64 baseline and AVX2 + FMA.

/// `a . b` (vector_kernels.c: AVX2 + FMA where the CPU has it).
@inline(__always)
func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    csae_k_dot(a, b, Int64(n))
}

/// `y += alpha * x` (vector_kernels.c).
@inline(__always)
func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    csae_k_axpy(alpha, x, y, Int64(n))
}

/// `y += sum_t weights[t] * rows[indices[t]]` over `count` rows of the
/// row-major matrix `base` (row length and stride `n`): a sparse row times a
/// dense matrix (vector_kernels.c).
@inline(__always)
func gatherAxpy(into y: UnsafeMutablePointer<Float>, _ n: Int, rowsOf base: UnsafePointer<Float>,
                indices: UnsafePointer<Int32>, weights: UnsafePointer<Float>, count: Int) {
    csae_k_gather_axpy(y, Int64(n), base, Int64(n), indices, weights, Int64(count))
}

/// `out[t] = base[indices[t]] . u` for `count` rows of length and stride `n`.
@inline(__always)
func gatherDot(into out: UnsafeMutablePointer<Float>, rowsOf base: UnsafePointer<Float>,
               indices: UnsafePointer<Int32>, count: Int, with u: UnsafePointer<Float>, _ n: Int) {
    csae_k_gather_dot(out, base, Int64(n), indices, Int64(count), u, Int64(n))
}

/// Sum of squares of a row.
@inline(__always)
func squaredNorm(_ a: UnsafePointer<Float>, _ n: Int) -> Float { dot(a, a, n) }

/// The L2 norm of a row, exact also where the plain sum of squares would
/// underflow (entries around 1e-20) or overflow (around 1e20): then the row is
/// scaled by its largest magnitude first. Rows of ordinary scale take the
/// plain path, so results match a straightforward `sqrt(sum(x^2))`.
@inline(__always)
func robustNorm(_ a: UnsafePointer<Float>, _ n: Int) -> Float {
    let sumSquares = squaredNorm(a, n)
    if sumSquares.isFinite && sumSquares >= Float.leastNormalMagnitude { return sumSquares.squareRoot() }
    var largest: Float = 0
    for i in 0..<n { largest = max(largest, abs(a[i])) }
    guard largest > 0 && largest.isFinite else { return sumSquares.squareRoot() }
    var scaled: Float = 0
    for i in 0..<n {
        let v = a[i] / largest
        scaled += v * v
    }
    return largest * scaled.squareRoot()
}
