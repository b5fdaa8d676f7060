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

/* Byte offset of entry e of a level array (a 4-bit list may start in the
 * middle of a byte). */
#define LEVEL8_BYTES(e) (e)
#define LEVEL4_BYTES(e) ((e) >> 1)
/* Prefetches the ids and level bytes of list l + PF_AHEAD (LEVEL_BYTES(e):
 * the byte holding entry e). */
#define PREFETCH_LEVEL_LIST(l, LEVEL_BYTES)                                       \
    if ((l) + PF_AHEAD < lists) {                                                 \
        const char *pi = (const char *)(ids + from[(l) + PF_AHEAD]);              \
        const char *pe = (const char *)(ids + to[(l) + PF_AHEAD]);                \
        for (; pi < pe; pi += 64) __builtin_prefetch(pi);                         \
        const char *pv = (const char *)(levels + LEVEL_BYTES(from[(l) + PF_AHEAD])); \
        const char *pw = (const char *)(levels + LEVEL_BYTES(to[(l) + PF_AHEAD])); \
        for (; pv < pw; pv += 64) __builtin_prefetch(pv);                         \
    }
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


/* csae_k_rows_dot over level rows: each row's level sum times its scale, as
 * SCALED_SPARSE_TIMES_DENSE_BODY computes it. */
KERNEL_TARGET
static void KERNEL(csae_k_rows_dot_levels8)(float *out, const int32_t *items, int64_t count, int64_t k,
                                            const uint16_t *indices, const uint8_t *levels, const float *scales,
                                            const float *u) {
    const int64_t value_stride = k;
    ROWS_DOT_BODY(indices, uint16_t, levels, uint8_t, LEVEL8_AT(rv, t), a * scales[i])
}

KERNEL_TARGET
static void KERNEL(csae_k_rows_dot_levels4)(float *out, const int32_t *items, int64_t count, int64_t k,
                                            const uint16_t *indices, const uint8_t *levels, const float *scales,
                                            const float *u) {
    const int64_t value_stride = (k + 1) / 2;
    ROWS_DOT_BODY(indices, uint16_t, levels, uint8_t, LEVEL4_AT(rv, t), a * scales[i])
}

/* 8-bit levels: eight at a time widened to floats and multiplied by the
 * list's weight in one vector step, then added to their items one by one
 * (a list holds an item at most once, so the eight stores never collide). */
KERNEL_TARGET
static void KERNEL(csae_k_scatter_lists_levels8)(float *acc, const uint16_t *ids, const uint8_t *levels,
                                                 const int64_t *from, const int64_t *to, const float *w,
                                                 int64_t lists) {
    typedef int8_t v8b __attribute__((vector_size(8), aligned(1), may_alias));
    for (int64_t l = 0; l < lists; l++) {
        PREFETCH_LEVEL_LIST(l, LEVEL8_BYTES)
        int64_t e = from[l];
        const int64_t end = to[l];
        const float wl = w[l];
        const v8f w8 = splat8(wl);
        for (; e + 8 <= end; e += 8) {
            v8f v = w8 * __builtin_convertvector(__builtin_convertvector(*(const v8b *)(levels + e), v8i), v8f);
            const uint16_t *lid = ids + e;
            float a0 = acc[lid[0]] + v[0], a1 = acc[lid[1]] + v[1], a2 = acc[lid[2]] + v[2], a3 = acc[lid[3]] + v[3];
            acc[lid[0]] = a0; acc[lid[1]] = a1; acc[lid[2]] = a2; acc[lid[3]] = a3;
            float a4 = acc[lid[4]] + v[4], a5 = acc[lid[5]] + v[5], a6 = acc[lid[6]] + v[6], a7 = acc[lid[7]] + v[7];
            acc[lid[4]] = a4; acc[lid[5]] = a5; acc[lid[6]] = a6; acc[lid[7]] = a7;
        }
        for (; e < end; e++) {
            float v = wl * LEVEL8_AT(levels, e);
            acc[ids[e]] += v;
        }
    }
}

/* 4-bit levels: the list's weight times each of the 16 levels in a table
 * (nibble n holds level (n ^ 8) - 8), and two entries per level byte. */
KERNEL_TARGET
static void KERNEL(csae_k_scatter_lists_levels4)(float *acc, const uint16_t *ids, const uint8_t *levels,
                                                 const int64_t *from, const int64_t *to, const float *w,
                                                 int64_t lists) {
    const v8f low = {0.0f, 1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f, 7.0f};
    const v8f high = {-8.0f, -7.0f, -6.0f, -5.0f, -4.0f, -3.0f, -2.0f, -1.0f};
    float table[16];
    for (int64_t l = 0; l < lists; l++) {
        PREFETCH_LEVEL_LIST(l, LEVEL4_BYTES)
        int64_t e = from[l];
        const int64_t end = to[l];
        const v8f w8 = splat8(w[l]);
        store8(table, w8 * low);
        store8(table + 8, w8 * high);
        if (e < end && (e & 1)) { /* the list starts in a byte's high nibble */
            acc[ids[e]] += table[levels[e >> 1] >> 4];
            e++;
        }
        for (; e + 4 <= end; e += 4) {
            const uint8_t b0 = levels[e >> 1], b1 = levels[(e >> 1) + 1];
            const uint16_t *lid = ids + e;
            float a0 = acc[lid[0]] + table[b0 & 15u], a1 = acc[lid[1]] + table[b0 >> 4];
            float a2 = acc[lid[2]] + table[b1 & 15u], a3 = acc[lid[3]] + table[b1 >> 4];
            acc[lid[0]] = a0; acc[lid[1]] = a1; acc[lid[2]] = a2; acc[lid[3]] = a3;
        }
        for (; e < end; e++) acc[ids[e]] += table[(levels[e >> 1] >> ((e & 1) << 2)) & 15u];
    }
}

/* csae_k_next_above on the products x[i] * scales[i] (the packed storages'
 * item scores), without writing them: the scan that follows the scatter
 * also applies the items' scales, in one pass over the tile. */
KERNEL_TARGET
static int64_t KERNEL(csae_k_next_above_scaled)(float *x, const float *scales, int64_t from, int64_t n,
                                                float threshold) {
    int64_t i = from;
    v8f t = splat8(threshold), zero = splat8(0.0f);
    for (; i + 32 <= n; i += 32) {
        v8i h0 = load8(x + i) * load8(scales + i) > t, h1 = load8(x + i + 8) * load8(scales + i + 8) > t;
        v8i h2 = load8(x + i + 16) * load8(scales + i + 16) > t, h3 = load8(x + i + 24) * load8(scales + i + 24) > t;
        v8i any = h0 | h1 | h2 | h3;
        if (any[0] | any[1] | any[2] | any[3] | any[4] | any[5] | any[6] | any[7]) {
            uint32_t bits = (uint32_t)MASK8(h0) | (uint32_t)MASK8(h1) << 8 | (uint32_t)MASK8(h2) << 16
                          | (uint32_t)MASK8(h3) << 24;
            int64_t hit = i + __builtin_ctz(bits);
            for (int64_t j = i; j < hit; j++) x[j] = 0.0f;
            return hit;
        }
        store8(x + i, zero); store8(x + i + 8, zero); store8(x + i + 16, zero); store8(x + i + 24, zero);
    }
    for (; i < n; i++) {
        if (x[i] * scales[i] > threshold) return i;
        x[i] = 0.0f;
    }
    return n;
}

KERNEL_TARGET
static void KERNEL(csae_k_multiply)(float *x, const float *scales, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) store8(x + i, load8(x + i) * load8(scales + i));
    for (; i < n; i++) x[i] *= scales[i];
}
