/* Kernel bodies of the packed index storages (8- and 4-bit value levels with
 * a scale per item), included by vector_kernels.c once per instruction set
 * after vector_kernels_impl.h, with the same KERNEL / KERNEL_TARGET. */
#ifndef CSAE_PACKED_KERNEL_MACROS
#define CSAE_PACKED_KERNEL_MACROS
/* An 8-bit level: a two's-complement byte. */
#define LEVEL8_AT(p, e) ((float)(int8_t)(p)[e])
/* A 4-bit level: nibble e % 2 (low first) of byte e / 2, two's complement. */
#define LEVEL4_AT(p, e) ((float)((int32_t)(((p)[(e) >> 1] >> (((e) & 1) << 2)) & 15u) ^ 8) - 8.0f)

/* SPARSE_TIMES_DENSE_BODY with every item's 64 sums multiplied by
 * scales[i] before they are stored and compared: the levels are small
 * integers, the item's scale is applied once. */
#define SCALED_SPARSE_TIMES_DENSE_BODY(INDEX, VALUE)                             \
    for (int64_t i = 0; i < items; i++) {                                        \
        v8f a0 = splat8(0.0f), a1 = splat8(0.0f), a2 = splat8(0.0f), a3 = splat8(0.0f); \
        v8f a4 = splat8(0.0f), a5 = splat8(0.0f), a6 = splat8(0.0f), a7 = splat8(0.0f); \
        for (int64_t t = 0; t < k; t++) {                                        \
            const float *r = dense + (int64_t)(INDEX) * 64;                      \
            v8f w = splat8(VALUE);                                               \
            a0 += w * load8(r);                                                  \
            a1 += w * load8(r + 8);                                              \
            a2 += w * load8(r + 16);                                             \
            a3 += w * load8(r + 24);                                             \
            a4 += w * load8(r + 32);                                             \
            a5 += w * load8(r + 40);                                             \
            a6 += w * load8(r + 48);                                             \
            a7 += w * load8(r + 56);                                             \
        }                                                                        \
        v8f s = splat8(scales[i]);                                               \
        a0 *= s; a1 *= s; a2 *= s; a3 *= s; a4 *= s; a5 *= s; a6 *= s; a7 *= s;  \
        float *o = out + i * 64;                                                 \
        store8(o, a0); store8(o + 8, a1); store8(o + 16, a2); store8(o + 24, a3); \
        store8(o + 32, a4); store8(o + 40, a5); store8(o + 48, a6); store8(o + 56, a7); \
        v8i hit = (a0 > load8(limits)) | (a1 > load8(limits + 8)) | (a2 > load8(limits + 16)) \
                | (a3 > load8(limits + 24)) | (a4 > load8(limits + 32)) | (a5 > load8(limits + 40)) \
                | (a6 > load8(limits + 48)) | (a7 > load8(limits + 56));          \
        flags[i] = (uint8_t)((hit[0] | hit[1] | hit[2] | hit[3] | hit[4] | hit[5] | hit[6] | hit[7]) != 0); \
    }

/* SCATTER_LISTS_BODY for levels addressed by absolute entry number (a 4-bit
 * list may start in the middle of a byte); LEVEL_BYTES(e) is the byte
 * offset of entry e, for the prefetch. */
#define LEVEL_SCATTER_BODY(LEVEL, LEVEL_BYTES)                                    \
    for (int64_t l = 0; l < lists; l++) {                                         \
        if (l + PF_AHEAD < lists) {                                               \
            const char *pi = (const char *)(ids + from[l + PF_AHEAD]);            \
            const char *pe = (const char *)(ids + to[l + PF_AHEAD]);              \
            for (; pi < pe; pi += 64) __builtin_prefetch(pi);                     \
            const char *pv = (const char *)(levels + LEVEL_BYTES(from[l + PF_AHEAD])); \
            const char *pw = (const char *)(levels + LEVEL_BYTES(to[l + PF_AHEAD])); \
            for (; pv < pw; pv += 64) __builtin_prefetch(pv);                     \
        }                                                                         \
        const uint16_t *lid = ids + from[l];                                      \
        int64_t first = from[l], count = to[l] - from[l];                         \
        float wl = w[l];                                                          \
        int64_t e = 0;                                                            \
        for (; e + 4 <= count; e += 4) {                                          \
            uint16_t i0 = lid[e], i1 = lid[e + 1], i2 = lid[e + 2], i3 = lid[e + 3]; \
            float a0 = acc[i0] + wl * LEVEL(levels, first + e);                   \
            float a1 = acc[i1] + wl * LEVEL(levels, first + e + 1);               \
            float a2 = acc[i2] + wl * LEVEL(levels, first + e + 2);               \
            float a3 = acc[i3] + wl * LEVEL(levels, first + e + 3);               \
            acc[i0] = a0; acc[i1] = a1; acc[i2] = a2; acc[i3] = a3;               \
        }                                                                         \
        for (; e < count; e++) acc[lid[e]] += wl * LEVEL(levels, first + e);      \
    }
#define LEVEL8_BYTES(e) (e)
#define LEVEL4_BYTES(e) ((e) >> 1)
#endif

KERNEL_TARGET
static void KERNEL(csae_k_sparse_times_dense64_levels8)(float *out, uint8_t *flags, int64_t items, int64_t k,
                                                        const uint16_t *indices, const uint8_t *levels,
                                                        const float *scales, const float *dense,
                                                        const float *limits) {
    SCALED_SPARSE_TIMES_DENSE_BODY(indices[i * k + t], LEVEL8_AT(levels, i * k + t))
}

KERNEL_TARGET
static void KERNEL(csae_k_sparse_times_dense64_levels4)(float *out, uint8_t *flags, int64_t items, int64_t k,
                                                        const uint16_t *indices, const uint8_t *levels,
                                                        const float *scales, const float *dense,
                                                        const float *limits) {
    const int64_t stride = (k + 1) / 2;
    SCALED_SPARSE_TIMES_DENSE_BODY(indices[i * k + t], LEVEL4_AT(levels + i * stride, t))
}

KERNEL_TARGET
static void KERNEL(csae_k_scatter_lists_levels8)(float *acc, const uint16_t *ids, const uint8_t *levels,
                                                 const int64_t *from, const int64_t *to, const float *w,
                                                 int64_t lists) {
    LEVEL_SCATTER_BODY(LEVEL8_AT, LEVEL8_BYTES)
}

KERNEL_TARGET
static void KERNEL(csae_k_scatter_lists_levels4)(float *acc, const uint16_t *ids, const uint8_t *levels,
                                                 const int64_t *from, const int64_t *to, const float *w,
                                                 int64_t lists) {
    LEVEL_SCATTER_BODY(LEVEL4_AT, LEVEL4_BYTES)
}

KERNEL_TARGET
static void KERNEL(csae_k_multiply)(float *x, const float *scales, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) store8(x + i, load8(x + i) * load8(scales + i));
    for (; i < n; i++) x[i] *= scales[i];
}
