/* The built-in GEMM of vector_kernels.c (used when no BLAS is loaded),
 * included once per instruction set like vector_kernels_impl.h.
 *
 * c[i, j] = sum_p a[i, p] b[j, p], each output a single chain of fused
 * multiply-adds in p order, starting from 0: the order of an optimised
 * sgemm's micro-kernel (OpenBLAS, MKL, BLIS), and so of the reference's
 * float32 products that the golden files record. The order is the same for
 * every output, whatever the shape, the tile an output falls in or the
 * instruction set, so a row's result does not depend on the other rows of
 * the call. (A dot product split into vector lanes rounds differently by a
 * few units in the last place: enough that the first Adam step of the
 * golden test, which divides near-zero gradients by their own magnitude,
 * left its tolerance.)
 *
 * Vectorised across rows of a: rows are packed 8 to a panel, p-major, so
 * that one 8-lane load holds a[i..i+8, p]; each b[j, p] is broadcast. A
 * micro-tile of 16 rows x 6 columns keeps 12 accumulators in registers
 * (the baseline: 8 rows x 2 columns, each accumulator two doubles).
 * Blocks of GEMM_MB rows are packed at a time and meet every column of b,
 * so b streams from memory once per block. */

#ifndef CSAE_GEMM_CONSTANTS
#define CSAE_GEMM_CONSTANTS
#define GEMM_MB 64  /* rows of a packed block: 8 panels */
#endif
/* Columns of a micro-tile: 6 with AVX2's sixteen 8-lane registers; 2 on the
 * baseline, whose sixteen registers hold 2 doubles each. */
#ifdef MADD8
#define GEMM_NR 6
#else
#define GEMM_NR 2
#endif

/* Columns [j0, j1) of rows [i0, i1), one output at a time, reading a
 * unpacked: when the packing buffer cannot be allocated (and in tests,
 * which check that both forms agree bit for bit). Four chains at once
 * hide part of each one's latency. */
KERNEL_TARGET
static void KERNEL(gemm_unpacked)(int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t n, int64_t kk,
                                  const float *a, const float *b, float beta, float *c) {
#pragma clang fp contract(off)
    for (int64_t i = i0; i < i1; i++) {
        const float *ai = a + i * kk;
        float *ci = c + i * n;
        int64_t j = j0;
        for (; j + 4 <= j1; j += 4) {
            const float *b0 = b + j * kk, *b1 = b0 + kk, *b2 = b1 + kk, *b3 = b2 + kk;
            float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            for (int64_t p = 0; p < kk; p++) {
                s0 = MADD1(s0, ai[p], b0[p]);
                s1 = MADD1(s1, ai[p], b1[p]);
                s2 = MADD1(s2, ai[p], b2[p]);
                s3 = MADD1(s3, ai[p], b3[p]);
            }
            ci[j] = beta == 0 ? s0 : s0 + beta * ci[j];
            ci[j + 1] = beta == 0 ? s1 : s1 + beta * ci[j + 1];
            ci[j + 2] = beta == 0 ? s2 : s2 + beta * ci[j + 2];
            ci[j + 3] = beta == 0 ? s3 : s3 + beta * ci[j + 3];
        }
        for (; j < j1; j++) {
            const float *bj = b + j * kk;
            float s = 0;
            for (int64_t p = 0; p < kk; p++) s = MADD1(s, ai[p], bj[p]);
            ci[j] = beta == 0 ? s : s + beta * ci[j];
        }
    }
}

/* Writes a tile's accumulators (tile[col][row], `rows` <= 16 of them valid)
 * to c at (i, j). */
KERNEL_TARGET
static inline void KERNEL(gemm_store_tile)(const float *tile, int64_t rows, int64_t cols, float *c, int64_t n,
                                           float beta) {
#pragma clang fp contract(off)
    for (int64_t r = 0; r < rows; r++) {
        float *cr = c + r * n;
        for (int64_t q = 0; q < cols; q++) {
            float v = tile[q * 16 + r];
            cr[q] = beta == 0 ? v : v + beta * cr[q];
        }
    }
}

#ifdef MADD8
/* 16 rows (panels p0 and p1) x the 6 columns bc[0..6) (rows of b):
 * tile[col * 16 + row]. */
KERNEL_TARGET
static void KERNEL(gemm_tile16)(const float *p0, const float *p1, const float *const *bc, int64_t kk, float *tile) {
    const float *b0 = bc[0], *b1 = bc[1], *b2 = bc[2], *b3 = bc[3], *b4 = bc[4], *b5 = bc[5];
    v8f c00 = splat8(0.0f), c01 = c00, c02 = c00, c03 = c00, c04 = c00, c05 = c00;
    v8f c10 = c00, c11 = c00, c12 = c00, c13 = c00, c14 = c00, c15 = c00;
    for (int64_t p = 0; p < kk; p++) {
        v8f x0 = load8(p0 + 8 * p), x1 = load8(p1 + 8 * p), w;
        w = splat8(b0[p]); c00 = MADD8(c00, x0, w); c10 = MADD8(c10, x1, w);
        w = splat8(b1[p]); c01 = MADD8(c01, x0, w); c11 = MADD8(c11, x1, w);
        w = splat8(b2[p]); c02 = MADD8(c02, x0, w); c12 = MADD8(c12, x1, w);
        w = splat8(b3[p]); c03 = MADD8(c03, x0, w); c13 = MADD8(c13, x1, w);
        w = splat8(b4[p]); c04 = MADD8(c04, x0, w); c14 = MADD8(c14, x1, w);
        w = splat8(b5[p]); c05 = MADD8(c05, x0, w); c15 = MADD8(c15, x1, w);
    }
    store8(tile, c00); store8(tile + 8, c10);
    store8(tile + 16, c01); store8(tile + 24, c11);
    store8(tile + 32, c02); store8(tile + 40, c12);
    store8(tile + 48, c03); store8(tile + 56, c13);
    store8(tile + 64, c04); store8(tile + 72, c14);
    store8(tile + 80, c05); store8(tile + 88, c15);
}

/* 8 rows (panel p0) x the 6 columns bc[0..6): tile[col * 16 + row], rows 0..8. */
KERNEL_TARGET
static void KERNEL(gemm_tile8)(const float *p0, const float *const *bc, int64_t kk, float *tile) {
    const float *b0 = bc[0], *b1 = bc[1], *b2 = bc[2], *b3 = bc[3], *b4 = bc[4], *b5 = bc[5];
    v8f c0 = splat8(0.0f), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
    for (int64_t p = 0; p < kk; p++) {
        v8f x0 = load8(p0 + 8 * p);
        c0 = MADD8(c0, x0, splat8(b0[p]));
        c1 = MADD8(c1, x0, splat8(b1[p]));
        c2 = MADD8(c2, x0, splat8(b2[p]));
        c3 = MADD8(c3, x0, splat8(b3[p]));
        c4 = MADD8(c4, x0, splat8(b4[p]));
        c5 = MADD8(c5, x0, splat8(b5[p]));
    }
    store8(tile, c0); store8(tile + 16, c1); store8(tile + 32, c2);
    store8(tile + 48, c3); store8(tile + 64, c4); store8(tile + 80, c5);
}

#else
typedef double v2d __attribute__((vector_size(16)));
typedef float v2f __attribute__((vector_size(8)));

/* 8 rows (panel p0) x the 2 columns bc[0..2): tile[col * 16 + row], rows
 * 0..8. Each accumulator holds a float in a double: the exact product of
 * two floats plus the accumulator, rounded to double and then to float,
 * is MADD1's fused multiply-add, without a conversion of the accumulator
 * per step. */
KERNEL_TARGET
static void KERNEL(gemm_tile8)(const float *p0, const float *const *bc, int64_t kk, float *tile) {
#pragma clang fp contract(off)
    const float *b0 = bc[0], *b1 = bc[1];
    v2d c00 = {0, 0}, c01 = c00, c02 = c00, c03 = c00, c10 = c00, c11 = c00, c12 = c00, c13 = c00;
#define ROUND_TO_FLOAT(v) __builtin_convertvector(__builtin_convertvector((v), v2f), v2d)
    for (int64_t p = 0; p < kk; p++) {
        const float *x = p0 + 8 * p;
        v2d x0 = {x[0], x[1]}, x1 = {x[2], x[3]}, x2 = {x[4], x[5]}, x3 = {x[6], x[7]};
        double y0 = b0[p], y1 = b1[p];
        v2d w0 = {y0, y0}, w1 = {y1, y1};
        c00 = ROUND_TO_FLOAT(c00 + x0 * w0); c01 = ROUND_TO_FLOAT(c01 + x1 * w0);
        c02 = ROUND_TO_FLOAT(c02 + x2 * w0); c03 = ROUND_TO_FLOAT(c03 + x3 * w0);
        c10 = ROUND_TO_FLOAT(c10 + x0 * w1); c11 = ROUND_TO_FLOAT(c11 + x1 * w1);
        c12 = ROUND_TO_FLOAT(c12 + x2 * w1); c13 = ROUND_TO_FLOAT(c13 + x3 * w1);
    }
#undef ROUND_TO_FLOAT
    const v2d *column0[4] = {&c00, &c01, &c02, &c03}, *column1[4] = {&c10, &c11, &c12, &c13};
    for (int r = 0; r < 4; r++) {
        tile[2 * r] = (float)(*column0[r])[0]; tile[2 * r + 1] = (float)(*column0[r])[1];
        tile[16 + 2 * r] = (float)(*column1[r])[0]; tile[16 + 2 * r + 1] = (float)(*column1[r])[1];
    }
}
#endif

/* See csae_k_gemm_nt in CCompresSAE.h. */
KERNEL_TARGET
static void KERNEL(csae_k_gemm_nt)(int64_t m, int64_t n, int64_t kk, const float *a, const float *b, float beta,
                                   float *c, int unpacked) {
    if (m <= 0 || n <= 0) return;
    int64_t panels = ((m < GEMM_MB ? m : GEMM_MB) + 7) / 8;
    /* Smaller than a, so the size cannot overflow where a fits in memory. */
    float *packed = unpacked || kk == 0 ? NULL : malloc((size_t)(panels * 8) * (size_t)kk * sizeof(float));
    if (packed == NULL) {
        KERNEL(gemm_unpacked)(0, m, 0, n, n, kk, a, b, beta, c);
        return;
    }
    float tile[GEMM_NR * 16];
    for (int64_t i0 = 0; i0 < m; i0 += GEMM_MB) {
        int64_t rows = m - i0 < GEMM_MB ? m - i0 : GEMM_MB;
        int64_t used = (rows + 7) / 8;
        /* packed[panel][p][lane] = a[i0 + 8 panel + lane, p], 0 past the last row. */
        for (int64_t q = 0; q < used; q++) {
            float *dst = packed + q * 8 * kk;
            for (int64_t lane = 0; lane < 8; lane++) {
                int64_t i = i0 + 8 * q + lane;
                if (i < m) {
                    const float *src = a + i * kk;
                    for (int64_t p = 0; p < kk; p++) dst[8 * p + lane] = src[p];
                } else {
                    for (int64_t p = 0; p < kk; p++) dst[8 * p + lane] = 0.0f;
                }
            }
        }
        for (int64_t j = 0; j < n; j += GEMM_NR) {
            /* The last tile of a row may have fewer columns: it repeats its
             * last one, computed and not stored. */
            int64_t cols = n - j < GEMM_NR ? n - j : GEMM_NR;
            const float *bc[GEMM_NR];
            for (int64_t q = 0; q < GEMM_NR; q++) bc[q] = b + (j + (q < cols ? q : cols - 1)) * kk;
            int64_t q = 0;
#ifdef MADD8
            for (; q + 2 <= used; q += 2) {
                KERNEL(gemm_tile16)(packed + q * 8 * kk, packed + (q + 1) * 8 * kk, bc, kk, tile);
                int64_t r = rows - 8 * q < 16 ? rows - 8 * q : 16;
                KERNEL(gemm_store_tile)(tile, r, cols, c + (i0 + 8 * q) * n + j, n, beta);
            }
#endif
            for (; q < used; q++) {
                KERNEL(gemm_tile8)(packed + q * 8 * kk, bc, kk, tile);
                int64_t r = rows - 8 * q < 8 ? rows - 8 * q : 8;
                KERNEL(gemm_store_tile)(tile, r, cols, c + (i0 + 8 * q) * n + j, n, beta);
            }
        }
    }
    free(packed);
}
#undef GEMM_NR
