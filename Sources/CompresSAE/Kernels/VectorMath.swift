/// Small dense kernels on raw buffers. Written with SIMD lanes so the
/// optimiser emits vector code without relying on auto-vectorisation of
/// floating-point reductions (which it must not reorder on its own).

@inline(__always)
func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
    var i = 0
    let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
    while i + 16 <= n {
        acc0 += ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            * rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        acc1 += ra.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self)
            * rb.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self)
        i += 16
    }
    if i + 8 <= n {
        acc0 += ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            * rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        i += 8
    }
    var s = (acc0 + acc1).sum()
    while i < n {
        s += a[i] * b[i]
        i += 1
    }
    return s
}

/// y += alpha * x
@inline(__always)
func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    var i = 0
    let rx = UnsafeRawPointer(x), ry = UnsafeMutableRawPointer(y)
    let va = SIMD8<Float>(repeating: alpha)
    while i + 8 <= n {
        let xv = rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        let yv = ry.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        ry.storeBytes(of: yv + va * xv, toByteOffset: i * 4, as: SIMD8<Float>.self)
        i += 8
    }
    while i < n {
        y[i] += alpha * x[i]
        i += 1
    }
}

/// Sum of squares of a row.
@inline(__always)
func squaredNorm(_ a: UnsafePointer<Float>, _ n: Int) -> Float { dot(a, a, n) }

/// y = alpha * x
@inline(__always)
func scaled(_ alpha: Float, _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, _ n: Int) {
    for i in 0..<n { y[i] = alpha * x[i] }
}

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
