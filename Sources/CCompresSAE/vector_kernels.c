/* Dense vector kernels of the library, compiled twice: for the portable
 * x86-64 baseline and for AVX2 + FMA ("arch=haswell"), the better one chosen
 * once at load time (target_clones, an ifunc). Swift cannot select
 * instruction sets per function without compiler flags that would make the
 * package unusable as a dependency; these few loops carry most of the
 * arithmetic outside the GEMM, so they are where wider vectors pay.
 *
 * The arithmetic is written with 8-lane vector types and a fixed order of
 * partial sums, so each clone's result is deterministic. */
#include "CCompresSAE.h"
#include <string.h>

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__)) && !defined(CSAE_NO_MULTIVERSION)
#define CSAE_MULTIVERSION __attribute__((target_clones("arch=haswell", "default")))
#else
#define CSAE_MULTIVERSION
#endif
#define CSAE_HIDDEN __attribute__((visibility("hidden")))

typedef float v8f __attribute__((vector_size(32), aligned(4), may_alias));

/* Macros, not functions: a function passing an 8-lane vector by value would
 * have a different calling convention in the two clones. The type is
 * declared 4-byte aligned, so these are unaligned loads and stores. */
#define load8(p) (*(const v8f *)(p))
#define store8(p, v) (*(v8f *)(p) = (v))
#define splat8(x) ((v8f){(x), (x), (x), (x), (x), (x), (x), (x)})
#define sum8(v) ((((v)[0] + (v)[4]) + ((v)[1] + (v)[5])) + (((v)[2] + (v)[6]) + ((v)[3] + (v)[7])))

CSAE_HIDDEN CSAE_MULTIVERSION
float csae_k_dot(const float *a, const float *b, int64_t n) {
    v8f acc0 = splat8(0.0f), acc1 = splat8(0.0f);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 += load8(a + i) * load8(b + i);
        acc1 += load8(a + i + 8) * load8(b + i + 8);
    }
    if (i + 8 <= n) {
        acc0 += load8(a + i) * load8(b + i);
        i += 8;
    }
    v8f acc = acc0 + acc1;
    float s = sum8(acc);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

CSAE_HIDDEN CSAE_MULTIVERSION
void csae_k_axpy(float alpha, const float *x, float *y, int64_t n) {
    v8f va = splat8(alpha);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) store8(y + i, load8(y + i) + va * load8(x + i));
    for (; i < n; i++) y[i] += alpha * x[i];
}

CSAE_HIDDEN CSAE_MULTIVERSION
void csae_k_gather_axpy(float *y, int64_t n, const float *base, int64_t stride,
                        const int32_t *rows, const float *weights, int64_t count) {
    /* Column blocks of 32 stay in registers while the selected rows stream by. */
    int64_t c = 0;
    for (; c + 32 <= n; c += 32) {
        v8f a0 = load8(y + c), a1 = load8(y + c + 8), a2 = load8(y + c + 16), a3 = load8(y + c + 24);
        for (int64_t t = 0; t < count; t++) {
            const float *r = base + (int64_t)rows[t] * stride + c;
            float weight = weights[t];
            v8f w = splat8(weight);
            a0 += w * load8(r);
            a1 += w * load8(r + 8);
            a2 += w * load8(r + 16);
            a3 += w * load8(r + 24);
        }
        store8(y + c, a0); store8(y + c + 8, a1); store8(y + c + 16, a2); store8(y + c + 24, a3);
    }
    for (; c + 8 <= n; c += 8) {
        v8f a = load8(y + c);
        for (int64_t t = 0; t < count; t++) {
            float weight = weights[t];
            a += splat8(weight) * load8(base + (int64_t)rows[t] * stride + c);
        }
        store8(y + c, a);
    }
    for (; c < n; c++) {
        float a = y[c];
        for (int64_t t = 0; t < count; t++) a += weights[t] * base[(int64_t)rows[t] * stride + c];
        y[c] = a;
    }
}

CSAE_HIDDEN CSAE_MULTIVERSION
void csae_k_gather_dot(float *out, const float *base, int64_t stride, const int32_t *rows, int64_t count,
                       const float *u, int64_t n) {
    for (int64_t t = 0; t < count; t++) out[t] = csae_k_dot(base + (int64_t)rows[t] * stride, u, n);
}

/* Half to float for the values the compact index stores: zero or normal. */
static inline float half_to_float(uint16_t h) {
    uint32_t magnitude = h & 0x7FFFu, sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t bits = magnitude ? (sign | ((magnitude << 13) + (112u << 23))) : sign;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* out[i, 0..32) = sum_t value(i, t) * dense[index(i, t), 0..32), for both
 * storages of the codes: one body, two element readers. */
#define SPARSE_TIMES_DENSE32_BODY(INDEX, VALUE)                                  \
    for (int64_t i = 0; i < items; i++) {                                        \
        v8f a0 = splat8(0.0f), a1 = splat8(0.0f), a2 = splat8(0.0f), a3 = splat8(0.0f); \
        for (int64_t t = 0; t < k; t++) {                                        \
            const float *r = dense + (int64_t)(INDEX) * 32;                      \
            float weight = (VALUE);                                              \
            v8f w = splat8(weight);                                              \
            a0 += w * load8(r);                                                  \
            a1 += w * load8(r + 8);                                              \
            a2 += w * load8(r + 16);                                             \
            a3 += w * load8(r + 24);                                             \
        }                                                                        \
        float *o = out + i * 32;                                                 \
        store8(o, a0); store8(o + 8, a1); store8(o + 16, a2); store8(o + 24, a3); \
    }

CSAE_HIDDEN CSAE_MULTIVERSION
void csae_k_sparse_times_dense32(float *out, int64_t items, int64_t k, const int32_t *indices,
                                 const float *values, const float *dense) {
    SPARSE_TIMES_DENSE32_BODY(indices[i * k + t], values[i * k + t])
}

CSAE_HIDDEN CSAE_MULTIVERSION
void csae_k_sparse_times_dense32_compact(float *out, int64_t items, int64_t k, const uint16_t *indices,
                                         const uint16_t *values, const float *dense) {
    SPARSE_TIMES_DENSE32_BODY(indices[i * k + t], half_to_float(values[i * k + t]))
}
