/* Umbrella header of the C support module (internal to the Swift library). */
#ifndef CCOMPRESSAE_H
#define CCOMPRESSAE_H
#include "compressae_types.h"

/* Everything declared here is the Swift library's own: hidden from the
 * shared library's exports, which are the `csae_` functions of the public
 * header alone. */
#pragma GCC visibility push(hidden)

/* CSAE_VERSION as a static string (a string macro reaches Swift only as a
 * String, which has no stable C pointer). */
const char *csae_internal_version(void);

/* Thread-local last-error slot behind csae_last_error(). */
void csae_internal_set_error(const char *message);
const char *csae_internal_get_error(void);

/* 1 when malloc can provide `bytes` right now (they are freed at once), else 0. */
int csae_internal_can_allocate(size_t bytes);

/* BLAS resolved at run time (dlopen), so that the library loads without one
 * and picks a correct kernel on CPUs that old OpenBLAS builds misdetect. */
typedef void (*csae_sgemm_fn)(int order, int trans_a, int trans_b, int m, int n, int k,
                              float alpha, const float *a, int lda, const float *b, int ldb,
                              float beta, float *c, int ldc);
/* Returns the BLAS sgemm, or NULL when no BLAS library could be loaded. */
csae_sgemm_fn csae_internal_blas_sgemm(void);
/* Name of the BLAS in use (e.g. "OpenBLAS Zen") or "none". */
const char *csae_internal_blas_name(void);

/* CPUs this process may use (cpu_budget.c): the number in its affinity mask
 * (the online CPUs when that cannot be read). */
int64_t csae_internal_affinity_cpus(void);
/* The smallest CPU quota, rounded up to whole CPUs, of the process's cgroup
 * and its ancestors in every cgroup v2 hierarchy and v1 "cpu" hierarchy
 * that `mountinfo_file` (/proc/self/mountinfo) lists, with the process's
 * cgroups read from `cgroup_file` (/proc/self/cgroup); 0 when none is set. */
int64_t csae_internal_cgroup_cpus(const char *mountinfo_file, const char *cgroup_file);

/* Vector kernels (vector_kernels.c), each built for the x86-64 baseline and
 * for AVX2 + FMA, chosen at load time. */
/* "avx2+fma" or "baseline": the variant in use. */
const char *csae_internal_vector_isa(void);
/* c[m, n] = a[m, kk] b[n, kk]^T + beta c (c read only when beta != 0), all
 * row-major and contiguous; each output one chain of fused multiply-adds in
 * kk order from 0, then + beta c. `unpacked` (tests) selects the slower form
 * without the packing buffer, which also serves when that cannot be allocated. */
void csae_k_gemm_nt(int64_t m, int64_t n, int64_t kk, const float *a, const float *b, float beta, float *c,
                    int unpacked);
float csae_k_dot(const float *a, const float *b, int64_t n);
/* y += alpha * x */
void csae_k_axpy(float alpha, const float *x, float *y, int64_t n);
/* out = a * x + b * y */
void csae_k_axpby(float *out, float a, const float *x, float b, const float *y, int64_t n);
/* y[0..n) += sum_t weights[t] * base[rows[t] * stride + 0..n) */
void csae_k_gather_axpy(float *y, int64_t n, const float *base, int64_t stride,
                        const int32_t *rows, const float *weights, int64_t count);
/* out[t] = base[rows[t] * stride + 0..n) . u */
void csae_k_gather_dot(float *out, const float *base, int64_t stride, const int32_t *rows, int64_t count,
                       const float *u, int64_t n);
/* out[i, 0..64) = sum_t values[i, t] * dense[indices[i, t], 0..64), for `items` rows of k
 * nonzeros; flags[i] = 1 when some out[i, l] > limits[l], else 0. */
void csae_k_sparse_times_dense64(float *out, uint8_t *flags, int64_t items, int64_t k,
                                 const int32_t *indices, const float *values, const float *dense,
                                 const float *limits);
/* The same with uint16 indices and half-precision value bits (zero or normal halves). */
void csae_k_sparse_times_dense64_compact(float *out, uint8_t *flags, int64_t items, int64_t k,
                                         const uint16_t *indices, const uint16_t *values,
                                         const float *dense, const float *limits);
/* out[c] = sum_t values[i, t] * u[indices[i, t]] for item i = items[c] (rows of k
 * nonzeros), each equal to csae_k_sparse_times_dense64's score of the item. */
void csae_k_rows_dot(float *out, const int32_t *items, int64_t count, int64_t k, const int32_t *indices,
                     const float *values, const float *u);
/* The same with uint16 indices and half-precision value bits. */
void csae_k_rows_dot_compact(float *out, const int32_t *items, int64_t count, int64_t k,
                             const uint16_t *indices, const uint16_t *values, const float *u);
/* The same over level rows (8 bits; 4 bits in rows of (k + 1) / 2 bytes), each
 * sum times scales[i], as csae_k_sparse_times_dense64_levels8 / _levels4. */
void csae_k_rows_dot_levels8(float *out, const int32_t *items, int64_t count, int64_t k,
                             const uint16_t *indices, const uint8_t *levels, const float *scales, const float *u);
void csae_k_rows_dot_levels4(float *out, const int32_t *items, int64_t count, int64_t k,
                             const uint16_t *indices, const uint8_t *levels, const float *scales, const float *u);
/* For l in [0, lists): acc[ids[e]] += w[l] * values[e] for e in [from[l], to[l]);
 * the ids within one list's range must be distinct. */
void csae_k_scatter_lists(float *acc, const uint16_t *ids, const float *values, const int64_t *from,
                          const int64_t *to, const float *w, int64_t lists);
/* The same with half-precision value bits (zero or normal halves). */
void csae_k_scatter_lists_half(float *acc, const uint16_t *ids, const uint16_t *values, const int64_t *from,
                               const int64_t *to, const float *w, int64_t lists);
/* Packed index storages: values are 8-bit levels (two's-complement bytes) or
 * 4-bit levels (two's-complement nibbles, entry e in byte e / 2, low nibble
 * first), and each item's sums are multiplied by its scale. Reconstructed
 * rows: k uint16 indices and k bytes (8-bit) or (k + 1) / 2 bytes (4-bit) of
 * levels per item; out[i, l] = scales[i] * sum_t level[i, t] * dense[indices[i, t], l]. */
void csae_k_sparse_times_dense64_levels8(float *out, uint8_t *flags, int64_t items, int64_t k,
                                         const uint16_t *indices, const uint8_t *levels, const float *scales,
                                         const float *dense, const float *limits);
void csae_k_sparse_times_dense64_levels4(float *out, uint8_t *flags, int64_t items, int64_t k,
                                         const uint16_t *indices, const uint8_t *levels, const float *scales,
                                         const float *dense, const float *limits);
/* csae_k_scatter_lists with levels addressed by entry number e. */
void csae_k_scatter_lists_levels8(float *acc, const uint16_t *ids, const uint8_t *levels, const int64_t *from,
                                  const int64_t *to, const float *w, int64_t lists);
void csae_k_scatter_lists_levels4(float *acc, const uint16_t *ids, const uint8_t *levels, const int64_t *from,
                                  const int64_t *to, const float *w, int64_t lists);
/* x[i] *= scales[i] for i in [0, n). */
void csae_k_multiply(float *x, const float *scales, int64_t n);
/* The first i in [from, n) with x[i] > threshold (NaN is never above), or n;
 * sets x[from..i) to 0 (the caller zeroes x[i] after reading it). */
int64_t csae_k_next_above(float *x, int64_t from, int64_t n, float threshold);
/* csae_k_next_above on x[i] * scales[i] (compared, not stored): the first i
 * in [from, n) with x[i] * scales[i] > threshold, or n; sets x[from..i) to 0. */
int64_t csae_k_next_above_scaled(float *x, const float *scales, int64_t from, int64_t n, float threshold);
/* The number of i in [0, n) with x[i] > threshold. */
int64_t csae_k_count_above(const float *x, int64_t n, float threshold);
/* The m entries of row[0..n) of largest magnitude (1 <= split <= m <= n;
 * equal magnitudes: lower position first). out[0..split) receives the best
 * `split` positions and out[split..m) the others, each part in ascending
 * position order; with `sorted`, all m best first instead. Scratch: keys
 * 3n + 16 slots, positions n + 8. bound_hint (may be NULL): a magnitude key
 * to try first as the candidates' bound (0: none), overwritten with one for
 * the next row of the same kind; the result never depends on it. */
void csae_k_select_top(const float *row, int64_t n, int64_t m, int64_t split, int sorted, int32_t *out,
                       uint32_t *keys, int32_t *positions, uint32_t *bound_hint);
/* One selected entry of a training batch as the latent phase reads it:
 * row_code = 2 * row + 1 for an entry of the row's k-code, 2 * row for the
 * other 3k; local = its latent's place in its block; g = d(loss)/d(pre-
 * activation); v = the pre-activation. */
typedef struct {
    int32_t row_code;
    int32_t local;
    float g;
    float v;
} csae_block_entry;
/* Adds a latent block's entries to its accumulators, in entry order: for
 * each entry, acc[local * 2d + 0..d) += g * normalized[row * d + 0..d)
 * (encoder), acc[local * 2d + d..2d) += v * (k-code entry ? up_k : up_4k)[row * d + 0..d)
 * (decoder), and acc_bias[local] += g. */
void csae_k_latent_block_sums(float *acc, float *acc_bias, int64_t d, const csae_block_entry *entries,
                              int64_t count, const float *normalized, const float *up_k, const float *up_4k);
/* The per-step scalars of Adam. */
typedef struct {
    float one_minus_beta1, beta2, one_minus_beta2, eps, step_size, correction2_sqrt;
} csae_adam_scalars;
/* One Adam update of n parameters, each operation rounded separately:
 * m = m + (1 - beta1) (g - m); v = beta2 v + (1 - beta2) g g;
 * p = p - step_size (m / (sqrt(v) / correction2_sqrt + eps)). */
void csae_k_adam(float *p, float *m, float *v, const float *g, int64_t n, const csae_adam_scalars *s);
#pragma GCC visibility pop

#endif
