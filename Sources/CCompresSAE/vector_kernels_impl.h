/* Kernel bodies of vector_kernels.c, included once per instruction set with
 * KERNEL(name) naming the variant and KERNEL_TARGET its target attribute. */
KERNEL_TARGET
static float KERNEL(csae_k_dot)(const float *a, const float *b, int64_t n) {
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

KERNEL_TARGET
static void KERNEL(csae_k_axpy)(float alpha, const float *x, float *y, int64_t n) {
    v8f va = splat8(alpha);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) store8(y + i, load8(y + i) + va * load8(x + i));
    for (; i < n; i++) y[i] += alpha * x[i];
}

KERNEL_TARGET
static void KERNEL(csae_k_axpby)(float *out, float a, const float *x, float b, const float *y, int64_t n) {
    v8f va = splat8(a), vb = splat8(b);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) store8(out + i, va * load8(x + i) + vb * load8(y + i));
    for (; i < n; i++) out[i] = a * x[i] + b * y[i];
}

/* Four rows per pass over y, each read front to back: lane by lane
 * y = y + w0 r0, then + w1 r1, + w2 r2, + w3 r3 (one fused multiply-add
 * each): the sum a row-at-a-time axpy makes, with a quarter of the loads
 * and stores of y. (Prefetching the next group's rows by hand made no
 * difference: the hardware follows four rows read front to back.) */
KERNEL_TARGET
static void KERNEL(csae_k_gather_axpy)(float *y, int64_t n, const float *base, int64_t stride,
                        const int32_t *rows, const float *weights, int64_t count) {
    int64_t t = 0;
    for (; t + 4 <= count; t += 4) {
        const float *r0 = base + (int64_t)rows[t] * stride, *r1 = base + (int64_t)rows[t + 1] * stride;
        const float *r2 = base + (int64_t)rows[t + 2] * stride, *r3 = base + (int64_t)rows[t + 3] * stride;
        float w0 = weights[t], w1 = weights[t + 1], w2 = weights[t + 2], w3 = weights[t + 3];
        v8f v0 = splat8(w0), v1 = splat8(w1), v2 = splat8(w2), v3 = splat8(w3);
        int64_t c = 0;
        for (; c + 8 <= n; c += 8) {
            v8f a = load8(y + c);
            a += v0 * load8(r0 + c);
            a += v1 * load8(r1 + c);
            a += v2 * load8(r2 + c);
            a += v3 * load8(r3 + c);
            store8(y + c, a);
        }
        for (; c < n; c++) {
            float a = y[c];
            a += w0 * r0[c];
            a += w1 * r1[c];
            a += w2 * r2[c];
            a += w3 * r3[c];
            y[c] = a;
        }
    }
    for (; t < count; t++) {
        const float *r = base + (int64_t)rows[t] * stride;
        float w = weights[t];
        v8f v = splat8(w);
        int64_t c = 0;
        for (; c + 8 <= n; c += 8) store8(y + c, load8(y + c) + v * load8(r + c));
        for (; c < n; c++) y[c] += w * r[c];
    }
}

/* Four dot products per pass over u, each with csae_k_dot's partial sums
 * (so each result equals csae_k_dot's). */
KERNEL_TARGET
static void KERNEL(csae_k_gather_dot)(float *out, const float *base, int64_t stride, const int32_t *rows, int64_t count,
                       const float *u, int64_t n) {
    int64_t t = 0;
    for (; t + 4 <= count; t += 4) {
        const float *r[4] = {base + (int64_t)rows[t] * stride, base + (int64_t)rows[t + 1] * stride,
                             base + (int64_t)rows[t + 2] * stride, base + (int64_t)rows[t + 3] * stride};
        v8f a0 = splat8(0.0f), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
        int64_t i = 0;
        for (; i + 16 <= n; i += 16) {
            v8f ua = load8(u + i), ub = load8(u + i + 8);
            a0 += load8(r[0] + i) * ua; b0 += load8(r[0] + i + 8) * ub;
            a1 += load8(r[1] + i) * ua; b1 += load8(r[1] + i + 8) * ub;
            a2 += load8(r[2] + i) * ua; b2 += load8(r[2] + i + 8) * ub;
            a3 += load8(r[3] + i) * ua; b3 += load8(r[3] + i + 8) * ub;
        }
        if (i + 8 <= n) {
            v8f ua = load8(u + i);
            a0 += load8(r[0] + i) * ua;
            a1 += load8(r[1] + i) * ua;
            a2 += load8(r[2] + i) * ua;
            a3 += load8(r[3] + i) * ua;
            i += 8;
        }
        v8f sums[4] = {a0 + b0, a1 + b1, a2 + b2, a3 + b3};
        for (int q = 0; q < 4; q++) {
            float s = sum8(sums[q]);
            for (int64_t j = i; j < n; j++) s += r[q][j] * u[j];
            out[t + q] = s;
        }
    }
    for (; t < count; t++) out[t] = KERNEL(csae_k_dot)(base + (int64_t)rows[t] * stride, u, n);
}

KERNEL_TARGET
static void KERNEL(csae_k_sparse_times_dense64)(float *out, uint8_t *flags, int64_t items, int64_t k,
                                                const int32_t *indices, const float *values, const float *dense,
                                                const float *limits) {
    SPARSE_TIMES_DENSE_BODY(indices[i * k + t], values[i * k + t])
}

KERNEL_TARGET
static void KERNEL(csae_k_sparse_times_dense64_compact)(float *out, uint8_t *flags, int64_t items, int64_t k,
                                                        const uint16_t *indices, const uint16_t *values,
                                                        const float *dense, const float *limits) {
    SPARSE_TIMES_DENSE_BODY(indices[i * k + t], HALF_TO_FLOAT(values[i * k + t]))
}

/* Scores of chosen rows against one dense vector: out[c] = sum_t value(i, t)
 * * u[index(i, t)] for item i = items[c], summed in t order with the
 * arithmetic of one lane of SPARSE_TIMES_DENSE_BODY, so that each score
 * equals the one the exhaustive kernel gives the item. The rows lie
 * anywhere in memory, so the lines of row c + ROW_PF_AHEAD are prefetched
 * while row c is summed. */
#ifndef ROW_PF_AHEAD
#define ROW_PF_AHEAD 6
#define PREFETCH_ROW(base, row_bytes)                                             \
    {                                                                             \
        const char *p0 = (const char *)(base), *p1 = p0 + (row_bytes);            \
        for (; p0 < p1; p0 += 64) __builtin_prefetch(p0);                         \
    }
#endif
#define ROWS_DOT_BODY(INDICES, INDEX_TYPE, VALUES, VALUE_TYPE, VALUE, SCALE)     \
    for (int64_t c = 0; c < count; c++) {                                        \
        if (c + ROW_PF_AHEAD < count) {                                          \
            int64_t ahead = items[c + ROW_PF_AHEAD];                             \
            PREFETCH_ROW(INDICES + ahead * k, k * (int64_t)sizeof(INDEX_TYPE))   \
            PREFETCH_ROW(VALUES + ahead * value_stride, value_stride * (int64_t)sizeof(VALUE_TYPE)) \
        }                                                                        \
        const int64_t i = items[c];                                              \
        const INDEX_TYPE *ri = INDICES + i * k;                                  \
        const VALUE_TYPE *rv = VALUES + i * value_stride;                        \
        float a = 0.0f;                                                          \
        for (int64_t t = 0; t < k; t++) a += (VALUE) * u[ri[t]];                 \
        out[c] = SCALE;                                                          \
    }

KERNEL_TARGET
static void KERNEL(csae_k_rows_dot)(float *out, const int32_t *items, int64_t count, int64_t k,
                                    const int32_t *indices, const float *values, const float *u) {
    const int64_t value_stride = k;
    ROWS_DOT_BODY(indices, int32_t, values, float, rv[t], a)
}

KERNEL_TARGET
static void KERNEL(csae_k_rows_dot_compact)(float *out, const int32_t *items, int64_t count, int64_t k,
                                            const uint16_t *indices, const uint16_t *values, const float *u) {
    const int64_t value_stride = k;
    ROWS_DOT_BODY(indices, uint16_t, values, uint16_t, HALF_TO_FLOAT(rv[t]), a)
}

/* Adds the posting-list segments of one search tile: for each list l,
 * acc[ids[e]] += w[l] * values[e] for e in [from[l], to[l]) (16-bit ids
 * relative to the tile). The ids of one list are distinct, so four updates
 * are loaded before any is stored. While list l is added, every line of list
 * l + PF_AHEAD is prefetched: the segments lie far apart in memory and are
 * short (a few hundred entries), too short for the hardware prefetcher to
 * pick the stream up by itself. */
#define SCATTER_LISTS_BODY(VALUE, VALUE_TYPE)                                     \
    for (int64_t l = 0; l < lists; l++) {                                         \
        if (l + PF_AHEAD < lists) {                                               \
            const char *pi = (const char *)(ids + from[l + PF_AHEAD]);            \
            const char *pe = (const char *)(ids + to[l + PF_AHEAD]);              \
            for (; pi < pe; pi += 64) __builtin_prefetch(pi);                     \
            const char *pv = (const char *)(values + from[l + PF_AHEAD]);         \
            const char *pw = (const char *)(values + to[l + PF_AHEAD]);           \
            for (; pv < pw; pv += 64) __builtin_prefetch(pv);                     \
        }                                                                         \
        const uint16_t *lid = ids + from[l];                                      \
        const VALUE_TYPE *lval = values + from[l];                                \
        int64_t count = to[l] - from[l];                                          \
        float wl = w[l];                                                          \
        int64_t e = 0;                                                            \
        for (; e + 4 <= count; e += 4) {                                          \
            uint16_t i0 = lid[e], i1 = lid[e + 1], i2 = lid[e + 2], i3 = lid[e + 3]; \
            float a0 = acc[i0] + wl * VALUE(lval, e), a1 = acc[i1] + wl * VALUE(lval, e + 1); \
            float a2 = acc[i2] + wl * VALUE(lval, e + 2), a3 = acc[i3] + wl * VALUE(lval, e + 3); \
            acc[i0] = a0; acc[i1] = a1; acc[i2] = a2; acc[i3] = a3;               \
        }                                                                         \
        for (; e < count; e++) acc[lid[e]] += wl * VALUE(lval, e);                \
    }

#define PLAIN_AT(p, e) (p)[e]
#define HALF_AT(p, e) HALF_TO_FLOAT((p)[e])

KERNEL_TARGET
static void KERNEL(csae_k_scatter_lists)(float *acc, const uint16_t *ids, const float *values, const int64_t *from,
                                         const int64_t *to, const float *w, int64_t lists) {
    SCATTER_LISTS_BODY(PLAIN_AT, float)
}

KERNEL_TARGET
static void KERNEL(csae_k_scatter_lists_half)(float *acc, const uint16_t *ids, const uint16_t *values,
                                              const int64_t *from, const int64_t *to, const float *w, int64_t lists) {
    SCATTER_LISTS_BODY(HALF_AT, uint16_t)
}

/* The first i in [from, n) with x[i] > threshold, or n; zeroes x[from..i)
 * behind the scan, so that a scanned tile is ready for the next query (the
 * caller zeroes x[i] once it has read it). Blocks of 32 are tested with one
 * branch: after the first few thousand items almost none holds a hit. */
KERNEL_TARGET
static int64_t KERNEL(csae_k_next_above)(float *x, int64_t from, int64_t n, float threshold) {
    int64_t i = from;
    v8f t = splat8(threshold), zero = splat8(0.0f);
    for (; i + 32 <= n; i += 32) {
        v8i h0 = load8(x + i) > t, h1 = load8(x + i + 8) > t, h2 = load8(x + i + 16) > t, h3 = load8(x + i + 24) > t;
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
        if (x[i] > threshold) return i;
        x[i] = 0.0f;
    }
    return n;
}

/* How many of x[0..n) exceed threshold. */
KERNEL_TARGET
static int64_t KERNEL(csae_k_count_above)(const float *x, int64_t n, float threshold) {
    v8f t = splat8(threshold);
    v8i c0 = {0, 0, 0, 0, 0, 0, 0, 0}, c1 = c0;
    int64_t i = 0;
    /* A true comparison lane is -1: subtracting counts it. */
    for (; i + 16 <= n; i += 16) {
        c0 -= load8(x + i) > t;
        c1 -= load8(x + i + 8) > t;
    }
    v8i c = c0 + c1;
    int64_t count = (int64_t)c[0] + c[1] + c[2] + c[3] + c[4] + c[5] + c[6] + c[7];
    for (; i < n; i++) count += x[i] > threshold;
    return count;
}

/* See csae_k_latent_block_sums in CCompresSAE.h. One fused multiply-add per
 * entry and lane, in entry order: the sums an axpy per entry makes, without
 * a call and an index computation per entry. */
KERNEL_TARGET
static void KERNEL(csae_k_latent_block_sums)(float *acc, float *acc_bias, int64_t d,
                                             const csae_block_entry *entries, int64_t count,
                                             const float *normalized, const float *up_k, const float *up_4k) {
    for (int64_t e = 0; e < count; e++) {
        int32_t code = entries[e].row_code;
        int64_t row = code >> 1;
        float g = entries[e].g, v = entries[e].v;
        float *acc_enc = acc + (int64_t)entries[e].local * 2 * d, *acc_dec = acc_enc + d;
        const float *x = normalized + row * d;
        const float *u = (code & 1 ? up_k : up_4k) + row * d;
        v8f vg = splat8(g), vv = splat8(v);
        int64_t c = 0;
        for (; c + 8 <= d; c += 8) {
            store8(acc_enc + c, load8(acc_enc + c) + vg * load8(x + c));
            store8(acc_dec + c, load8(acc_dec + c) + vv * load8(u + c));
        }
        for (; c < d; c++) {
            acc_enc[c] += g * x[c];
            acc_dec[c] += v * u[c];
        }
        acc_bias[entries[e].local] += g;
    }
}

/* See csae_k_adam in CCompresSAE.h. Written without contraction, so that
 * each lane computes exactly the separately rounded operations listed
 * there, in both variants. */
KERNEL_TARGET
static void KERNEL(csae_k_adam)(float *p, float *m, float *v, const float *g, int64_t n,
                                const csae_adam_scalars *s) {
#pragma clang fp contract(off)
    int64_t i = 0;
#ifdef SQRT8
    v8f b1 = splat8(s->one_minus_beta1), b2 = splat8(s->beta2), nb2 = splat8(s->one_minus_beta2);
    v8f eps = splat8(s->eps), step = splat8(s->step_size), c2 = splat8(s->correction2_sqrt);
    for (; i + 8 <= n; i += 8) {
        v8f gi = load8(g + i), mi = load8(m + i), vi = load8(v + i);
        mi = mi + b1 * (gi - mi);
        vi = b2 * vi + nb2 * gi * gi;
        store8(m + i, mi);
        store8(v + i, vi);
        v8f denom = SQRT8(vi) / c2 + eps;
        store8(p + i, load8(p + i) - step * (mi / denom));
    }
#endif
    for (; i < n; i++) {
        float gi = g[i];
        float mi = m[i] + s->one_minus_beta1 * (gi - m[i]);
        float vi = s->beta2 * v[i] + s->one_minus_beta2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float denom = __builtin_sqrtf(vi) / s->correction2_sqrt + s->eps;
        p[i] = p[i] - s->step_size * (mi / denom);
    }
}
