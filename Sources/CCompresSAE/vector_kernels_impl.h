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

KERNEL_TARGET
static void KERNEL(csae_k_gather_axpy)(float *y, int64_t n, const float *base, int64_t stride,
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

KERNEL_TARGET
static void KERNEL(csae_k_gather_dot)(float *out, const float *base, int64_t stride, const int32_t *rows, int64_t count,
                       const float *u, int64_t n) {
    for (int64_t t = 0; t < count; t++) out[t] = KERNEL(csae_k_dot)(base + (int64_t)rows[t] * stride, u, n);
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
    SPARSE_TIMES_DENSE_BODY(indices[i * k + t], half_to_float(values[i * k + t]))
}
