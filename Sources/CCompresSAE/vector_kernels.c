/* Dense vector kernels of the library, compiled twice (vector_kernels_impl.h
 * included once per instruction set): for the portable x86-64 baseline and
 * for AVX2 + FMA, chosen once at load time from the CPU's feature flags.
 * Swift cannot select instruction sets per function without compiler flags
 * that would make the package unusable as a dependency; these few loops
 * carry most of the arithmetic outside the GEMM, so they are where wider
 * vectors pay. (Feature flags, not `target_clones("arch=haswell")`: that
 * form dispatches on the CPU model and so never picks AVX2 on AMD CPUs.)
 *
 * The arithmetic is written with 8-lane vector types and a fixed order of
 * partial sums, so each clone's result is deterministic. */
#include "CCompresSAE.h"
#include <stdlib.h>
#include <string.h>
#ifdef __x86_64__
#include <immintrin.h>
#endif

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__)) && !defined(CSAE_NO_MULTIVERSION)
#define CSAE_HAVE_AVX2_VARIANT 1
#endif
#define CSAE_HIDDEN __attribute__((visibility("hidden")))

/* Posting lists ahead of the one being added whose lines are prefetched. */
#define PF_AHEAD 2

typedef float v8f __attribute__((vector_size(32), aligned(4), may_alias));

/* Macros, not functions: a function passing an 8-lane vector by value would
 * have a different calling convention in the two clones. The type is
 * declared 4-byte aligned, so these are unaligned loads and stores. */
#define load8(p) (*(const v8f *)(p))
#define store8(p, v) (*(v8f *)(p) = (v))
#define splat8(x) ((v8f){(x), (x), (x), (x), (x), (x), (x), (x)})
#define sum8(v) ((((v)[0] + (v)[4]) + ((v)[1] + (v)[5])) + (((v)[2] + (v)[6]) + ((v)[3] + (v)[7])))

/* Half to float for the values the compact index stores: zero or normal. */
static inline float half_to_float(uint16_t h) {
    uint32_t magnitude = h & 0x7FFFu, sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t bits = magnitude ? (sign | ((magnitude << 13) + (112u << 23))) : sign;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

typedef int32_t v8i __attribute__((vector_size(32), aligned(4), may_alias));

/* Bit l set when lane l of a comparison result is true (all ones). A macro:
 * an 8-lane vector argument would change the calling convention. */
#define mask8_generic(v) ((unsigned)((v)[0] != 0) | (unsigned)((v)[1] != 0) << 1 | (unsigned)((v)[2] != 0) << 2 \
    | (unsigned)((v)[3] != 0) << 3 | (unsigned)((v)[4] != 0) << 4 | (unsigned)((v)[5] != 0) << 5              \
    | (unsigned)((v)[6] != 0) << 6 | (unsigned)((v)[7] != 0) << 7)

/* out[i, 0..64) = sum_t value(i, t) * dense[index(i, t), 0..64), for both
 * storages of the codes: one body, two element readers. Eight accumulators
 * of 8 lanes: 64 queries per pass over the codes. flags[i] = 1 when some lane
 * exceeds limits[0..64) (the caller's running top-n thresholds), else 0. */
#define SPARSE_TIMES_DENSE_BODY(INDEX, VALUE)                                    \
    for (int64_t i = 0; i < items; i++) {                                        \
        v8f a0 = splat8(0.0f), a1 = splat8(0.0f), a2 = splat8(0.0f), a3 = splat8(0.0f); \
        v8f a4 = splat8(0.0f), a5 = splat8(0.0f), a6 = splat8(0.0f), a7 = splat8(0.0f); \
        for (int64_t t = 0; t < k; t++) {                                        \
            const float *r = dense + (int64_t)(INDEX) * 64;                      \
            float weight = (VALUE);                                              \
            v8f w = splat8(weight);                                              \
            a0 += w * load8(r);                                                  \
            a1 += w * load8(r + 8);                                              \
            a2 += w * load8(r + 16);                                             \
            a3 += w * load8(r + 24);                                             \
            a4 += w * load8(r + 32);                                             \
            a5 += w * load8(r + 40);                                             \
            a6 += w * load8(r + 48);                                             \
            a7 += w * load8(r + 56);                                             \
        }                                                                        \
        float *o = out + i * 64;                                                 \
        store8(o, a0); store8(o + 8, a1); store8(o + 16, a2); store8(o + 24, a3); \
        store8(o + 32, a4); store8(o + 40, a5); store8(o + 48, a6); store8(o + 56, a7); \
        v8i hit = (a0 > load8(limits)) | (a1 > load8(limits + 8)) | (a2 > load8(limits + 16)) \
                | (a3 > load8(limits + 24)) | (a4 > load8(limits + 32)) | (a5 > load8(limits + 40)) \
                | (a6 > load8(limits + 48)) | (a7 > load8(limits + 56));          \
        flags[i] = (uint8_t)((hit[0] | hit[1] | hit[2] | hit[3] | hit[4] | hit[5] | hit[6] | hit[7]) != 0); \
    }

/* For each 8-bit mask, the positions of its set bits in order (one byte
 * each, the rest 0): the permutation that packs the selected lanes of a
 * vector to its front. Filled at load time. */
static uint64_t compress_permutation[256];

#ifdef CSAE_HAVE_AVX2_VARIANT
#define COMPRESS8(dst, vec, mask)                                                                    \
    _mm256_storeu_si256((__m256i *)(void *)(dst),                                                    \
                        _mm256_permutevar8x32_epi32(                                                 \
                            (vec), _mm256_cvtepu8_epi32(_mm_loadl_epi64(                             \
                                       (const __m128i *)(const void *)&compress_permutation[(mask)]))))
#define SQRT8(v) ((v8f)_mm256_sqrt_ps((__m256)(v)))
#define KERNEL(name) name##_avx2
#define KERNEL_TARGET __attribute__((target("avx2,fma,f16c")))
/* F16C's conversion instruction; the same value as half_to_float for the
 * zero and normal halves the index stores. */
#define HALF_TO_FLOAT(h) _cvtsh_ss(h)
#define MASK8(v) _mm256_movemask_ps((__m256)(v))
/* acc + x * y rounded once (a fused multiply-add), lane by lane / scalar. */
#define MADD8(acc, x, y) ((v8f)_mm256_fmadd_ps((__m256)(x), (__m256)(y), (__m256)(acc)))
#define MADD1(acc, x, y) __builtin_fmaf((x), (y), (acc))
#include "vector_kernels_impl.h"
#include "packed_kernels_impl.h"
#include "selection_impl.h"
#include "gemm_impl.h"
#undef MADD1
#undef MADD8
#undef SQRT8
#undef COMPRESS8
#undef MASK8
#undef HALF_TO_FLOAT
#undef KERNEL
#undef KERNEL_TARGET
#endif

#define KERNEL(name) name##_base
#define KERNEL_TARGET
#define HALF_TO_FLOAT(h) half_to_float(h)
#define MASK8(v) mask8_generic(v)
/* The fused multiply-add without the instruction: the product of two floats
 * is exact in double, so the sum rounded to double and then to float is the
 * fused result, except where the first rounding makes a tie of the second
 * (about one operation in 2^29). The built-in GEMM thus rounds alike on both
 * instruction sets. (No MADD8: gemm_impl.h has a baseline tile of its own.) */
#define MADD1(acc, x, y) ((float)((double)(acc) + (double)(x) * (double)(y)))
#include "vector_kernels_impl.h"
#include "packed_kernels_impl.h"
#include "selection_impl.h"
#include "gemm_impl.h"
#undef MADD1
#undef MASK8
#undef HALF_TO_FLOAT
#undef KERNEL
#undef KERNEL_TARGET

/* Chosen before any call: the library's constructor runs at load time. */
static int use_avx2 = 0;

__attribute__((constructor)) static void choose_kernels(void) {
    for (unsigned mask = 0; mask < 256; mask++) {
        uint64_t permutation = 0;
        unsigned slot = 0;
        for (unsigned lane = 0; lane < 8; lane++)
            if (mask >> lane & 1u) permutation |= (uint64_t)lane << (8 * slot++);
        compress_permutation[mask] = permutation;
    }
#ifdef CSAE_HAVE_AVX2_VARIANT
    __builtin_cpu_init();
    use_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")
        && getenv("CSAE_DISABLE_AVX2") == NULL;
#endif
}

#ifdef CSAE_HAVE_AVX2_VARIANT
#define DISPATCH(name, args) (use_avx2 ? name##_avx2 args : name##_base args)
#else
#define DISPATCH(name, args) (name##_base args)
#endif

CSAE_HIDDEN const char *csae_internal_vector_isa(void) { return use_avx2 ? "avx2+fma" : "baseline"; }

CSAE_HIDDEN void csae_k_gemm_nt(int64_t m, int64_t n, int64_t kk, const float *a, const float *b, float beta, float *c,
                                int unpacked) {
    DISPATCH(csae_k_gemm_nt, (m, n, kk, a, b, beta, c, unpacked));
}

CSAE_HIDDEN float csae_k_dot(const float *a, const float *b, int64_t n) {
    return DISPATCH(csae_k_dot, (a, b, n));
}

CSAE_HIDDEN void csae_k_axpy(float alpha, const float *x, float *y, int64_t n) {
    DISPATCH(csae_k_axpy, (alpha, x, y, n));
}

CSAE_HIDDEN void csae_k_axpby(float *out, float a, const float *x, float b, const float *y, int64_t n) {
    DISPATCH(csae_k_axpby, (out, a, x, b, y, n));
}

CSAE_HIDDEN void csae_k_gather_axpy(float *y, int64_t n, const float *base, int64_t stride,
                                    const int32_t *rows, const float *weights, int64_t count) {
    DISPATCH(csae_k_gather_axpy, (y, n, base, stride, rows, weights, count));
}

CSAE_HIDDEN void csae_k_gather_dot(float *out, const float *base, int64_t stride, const int32_t *rows,
                                   int64_t count, const float *u, int64_t n) {
    DISPATCH(csae_k_gather_dot, (out, base, stride, rows, count, u, n));
}

CSAE_HIDDEN void csae_k_sparse_times_dense64(float *out, uint8_t *flags, int64_t items, int64_t k,
                                             const int32_t *indices, const float *values, const float *dense,
                                             const float *limits) {
    DISPATCH(csae_k_sparse_times_dense64, (out, flags, items, k, indices, values, dense, limits));
}

CSAE_HIDDEN void csae_k_sparse_times_dense64_compact(float *out, uint8_t *flags, int64_t items, int64_t k,
                                                     const uint16_t *indices, const uint16_t *values,
                                                     const float *dense, const float *limits) {
    DISPATCH(csae_k_sparse_times_dense64_compact, (out, flags, items, k, indices, values, dense, limits));
}

CSAE_HIDDEN void csae_k_rows_dot(float *out, const int32_t *items, int64_t count, int64_t k, const int32_t *indices,
                                 const float *values, const float *u) {
    DISPATCH(csae_k_rows_dot, (out, items, count, k, indices, values, u));
}

CSAE_HIDDEN void csae_k_rows_dot_compact(float *out, const int32_t *items, int64_t count, int64_t k,
                                         const uint16_t *indices, const uint16_t *values, const float *u) {
    DISPATCH(csae_k_rows_dot_compact, (out, items, count, k, indices, values, u));
}

CSAE_HIDDEN void csae_k_rows_dot_levels8(float *out, const int32_t *items, int64_t count, int64_t k,
                                         const uint16_t *indices, const uint8_t *levels, const float *scales,
                                         const float *u) {
    DISPATCH(csae_k_rows_dot_levels8, (out, items, count, k, indices, levels, scales, u));
}

CSAE_HIDDEN void csae_k_rows_dot_levels4(float *out, const int32_t *items, int64_t count, int64_t k,
                                         const uint16_t *indices, const uint8_t *levels, const float *scales,
                                         const float *u) {
    DISPATCH(csae_k_rows_dot_levels4, (out, items, count, k, indices, levels, scales, u));
}

CSAE_HIDDEN void csae_k_scatter_lists(float *acc, const uint16_t *ids, const float *values, const int64_t *from,
                                      const int64_t *to, const float *w, int64_t lists) {
    DISPATCH(csae_k_scatter_lists, (acc, ids, values, from, to, w, lists));
}

CSAE_HIDDEN void csae_k_scatter_lists_half(float *acc, const uint16_t *ids, const uint16_t *values,
                                           const int64_t *from, const int64_t *to, const float *w, int64_t lists) {
    DISPATCH(csae_k_scatter_lists_half, (acc, ids, values, from, to, w, lists));
}

CSAE_HIDDEN int64_t csae_k_next_above(float *x, int64_t from, int64_t n, float threshold) {
    return DISPATCH(csae_k_next_above, (x, from, n, threshold));
}

CSAE_HIDDEN int64_t csae_k_count_above(const float *x, int64_t n, float threshold) {
    return DISPATCH(csae_k_count_above, (x, n, threshold));
}

CSAE_HIDDEN void csae_k_select_top(const float *row, int64_t n, int64_t m, int64_t split, int sorted, int32_t *out,
                                   uint32_t *keys, int32_t *positions, uint32_t *bound_hint) {
    DISPATCH(csae_k_select_top, (row, n, m, split, sorted, out, keys, positions, bound_hint));
}

CSAE_HIDDEN void csae_k_adam(float *p, float *m, float *v, const float *g, int64_t n, const csae_adam_scalars *s) {
    DISPATCH(csae_k_adam, (p, m, v, g, n, s));
}

CSAE_HIDDEN void csae_k_latent_block_sums(float *acc, float *acc_bias, int64_t d, const csae_block_entry *entries,
                                          int64_t count, const float *normalized, const float *up_k,
                                          const float *up_4k) {
    DISPATCH(csae_k_latent_block_sums, (acc, acc_bias, d, entries, count, normalized, up_k, up_4k));
}

CSAE_HIDDEN void csae_k_sparse_times_dense64_levels8(float *out, uint8_t *flags, int64_t items, int64_t k,
                                                     const uint16_t *indices, const uint8_t *levels,
                                                     const float *scales, const float *dense, const float *limits) {
    DISPATCH(csae_k_sparse_times_dense64_levels8, (out, flags, items, k, indices, levels, scales, dense, limits));
}

CSAE_HIDDEN void csae_k_sparse_times_dense64_levels4(float *out, uint8_t *flags, int64_t items, int64_t k,
                                                     const uint16_t *indices, const uint8_t *levels,
                                                     const float *scales, const float *dense, const float *limits) {
    DISPATCH(csae_k_sparse_times_dense64_levels4, (out, flags, items, k, indices, levels, scales, dense, limits));
}

CSAE_HIDDEN void csae_k_scatter_lists_levels8(float *acc, const uint16_t *ids, const uint8_t *levels,
                                              const int64_t *from, const int64_t *to, const float *w, int64_t lists) {
    DISPATCH(csae_k_scatter_lists_levels8, (acc, ids, levels, from, to, w, lists));
}

CSAE_HIDDEN void csae_k_scatter_lists_levels4(float *acc, const uint16_t *ids, const uint8_t *levels,
                                              const int64_t *from, const int64_t *to, const float *w, int64_t lists) {
    DISPATCH(csae_k_scatter_lists_levels4, (acc, ids, levels, from, to, w, lists));
}

CSAE_HIDDEN void csae_k_multiply(float *x, const float *scales, int64_t n) {
    DISPATCH(csae_k_multiply, (x, scales, n));
}

CSAE_HIDDEN int64_t csae_k_next_above_scaled(float *x, const float *scales, int64_t from, int64_t n,
                                             float threshold) {
    return DISPATCH(csae_k_next_above_scaled, (x, scales, from, n, threshold));
}
