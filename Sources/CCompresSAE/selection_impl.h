/* Top-m selection by magnitude (csae_k_select_top), included by
 * vector_kernels.c once per instruction set like vector_kernels_impl.h.
 *
 * Magnitudes are compared as the bit patterns of |value| (sign cleared), an
 * order that equals the numeric one for finite floats; among equal
 * magnitudes the lower position ranks first. Every step below is exact for
 * that total order, so the chosen set depends only on the row; the bounds
 * only decide how many candidates the exact steps see.
 *
 * The loops are written without data-dependent branches: a row's
 * candidates pass or fail in no predictable pattern, and a mispredicted
 * branch per candidate costs more than the arithmetic. */

/* Appends (key, position) of every entry of row[0..n) whose key is >= bound,
 * in position order, to keys/positions (n + 8 slots each); returns the count. */
KERNEL_TARGET
static int64_t KERNEL(collect_at_least)(const float *row, int64_t n, uint32_t bound, uint32_t *keys,
                                        int32_t *positions) {
    int64_t count = 0, j = 0;
    const uint32_t *bits = (const uint32_t *)row;
#ifdef COMPRESS8
    /* Eight keys at a time: the passing lanes are packed to the front by a
     * permutation chosen by the comparison mask and stored whole; the count
     * advances by the number that passed, so the next store overwrites the
     * rest. */
    const __m256i magnitude = _mm256_set1_epi32(0x7FFFFFFF);
    /* key >= bound as a signed compare with bound - 1: keys are < 2^31. */
    const __m256i limit = _mm256_set1_epi32((int32_t)bound - 1);
    __m256i position = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i eight = _mm256_set1_epi32(8);
    for (; j + 8 <= n; j += 8) {
        __m256i key = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(bits + j)), magnitude);
        unsigned mask = (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(key, limit)));
        COMPRESS8(keys + count, key, mask);
        COMPRESS8(positions + count, position, mask);
        count += __builtin_popcount(mask);
        position = _mm256_add_epi32(position, eight);
    }
#endif
    for (; j < n; j++) {
        uint32_t key = bits[j] & 0x7FFFFFFFu;
        keys[count] = key;
        positions[count] = (int32_t)j;
        count += key >= bound;
    }
    return count;
}

/* The key of the want-th best of keys[0..count) (1 <= want <= count), by an
 * MSD radix search: the best `want` are every key above the returned one
 * plus the first *take_equal of the keys equal to it (earlier positions rank
 * first). Each round takes as its digit the 8 bits from the highest bit in
 * which the remaining keys differ, so the keys spread over the histogram
 * (many increments of one count would wait on each other), and keeps the
 * keys of the digit that holds the want-th. `work` holds count keys.
 * O(count) per round, at most 4 rounds that keep more than one key. */
KERNEL_TARGET
static uint32_t KERNEL(rank_threshold)(const uint32_t *keys, int64_t count, int64_t want, uint32_t *work,
                                       int64_t *take_equal) {
    const uint32_t *source = keys;
    int64_t n = count, remaining = want;
    for (;;) {
        uint32_t first = source[0], differ = 0, largest = 0;
        for (int64_t e = 0; e < n; e++) {
            differ |= source[e] ^ first;
            largest = source[e] > largest ? source[e] : largest;
        }
        if (differ == 0) break;
        int high = 31 - __builtin_clz(differ);
        int shift = high >= 7 ? high - 7 : 0;
        uint32_t histogram[256] = {0};
        for (int64_t e = 0; e < n; e++) histogram[(source[e] >> shift) & 255u]++;
        /* From the largest digit down to the one holding the want-th key. */
        uint32_t digit = (largest >> shift) & 255u;
        int64_t above = 0;
        while (above + histogram[digit] < remaining) above += histogram[digit--];
        remaining -= above;
        /* Keep only the keys with this digit, in order (in place after the first round). */
        int64_t kept = 0;
        for (int64_t e = 0; e < n; e++) {
            uint32_t key = source[e];
            work[kept] = key;
            kept += ((key >> shift) & 255u) == digit;
        }
        source = work;
        n = kept;
    }
    *take_equal = remaining;
    return source[0];
}

/* The smallest of the maxima of m groups of row: at least m keys reach it. */
KERNEL_TARGET
static uint32_t KERNEL(group_bound)(const float *row, int64_t n, int64_t m) {
    int64_t size = n / m;
    if (size < 8) return 0;
    const uint32_t *bits = (const uint32_t *)row;
    uint32_t bound = 0xFFFFFFFFu;
    for (int64_t g = 0; g < m; g++) {
        int64_t first = g * size, last = g == m - 1 ? n : first + size;
        uint32_t best = 0;
        for (int64_t j = first; j < last; j++) {
            uint32_t key = bits[j] & 0x7FFFFFFFu;
            best = key > best ? key : best;
        }
        bound = best < bound ? best : bound;
    }
    return bound;
}

#define RANKS_BEFORE(ka, pa, kb, pb) ((ka) > (kb) || ((ka) == (kb) && (pa) < (pb)))

/* Moves entry `parent` down a heap of `end` entries whose root is the worst. */
KERNEL_TARGET
static void KERNEL(sift_worst_down)(uint32_t *keys, int32_t *positions, int64_t end, int64_t parent) {
    uint32_t key = keys[parent];
    int32_t position = positions[parent];
    for (;;) {
        int64_t child = 2 * parent + 1;
        if (child >= end) break;
        if (child + 1 < end && RANKS_BEFORE(keys[child], positions[child], keys[child + 1], positions[child + 1]))
            child++;
        if (!RANKS_BEFORE(key, position, keys[child], positions[child])) break;
        keys[parent] = keys[child];
        positions[parent] = positions[child];
        parent = child;
    }
    keys[parent] = key;
    positions[parent] = position;
}

/* Orders (keys, positions)[0..count) best first: larger key, then lower
 * position. Insertion sort for the short codes of encoding, heap sort above. */
KERNEL_TARGET
static void KERNEL(sort_best_first)(uint32_t *keys, int32_t *positions, int64_t count) {
    if (count <= 64) {
        for (int64_t i = 1; i < count; i++) {
            uint32_t key = keys[i];
            int32_t position = positions[i];
            int64_t j = i;
            while (j > 0 && RANKS_BEFORE(key, position, keys[j - 1], positions[j - 1])) {
                keys[j] = keys[j - 1];
                positions[j] = positions[j - 1];
                j--;
            }
            keys[j] = key;
            positions[j] = position;
        }
        return;
    }
    for (int64_t root = count / 2 - 1; root >= 0; root--) KERNEL(sift_worst_down)(keys, positions, count, root);
    /* The worst goes to the back, one at a time. */
    for (int64_t end = count - 1; end > 0; end--) {
        uint32_t key = keys[0];
        int32_t position = positions[0];
        keys[0] = keys[end];
        positions[0] = positions[end];
        keys[end] = key;
        positions[end] = position;
        KERNEL(sift_worst_down)(keys, positions, end, 0);
    }
}
#undef RANKS_BEFORE

/* See CCompresSAE.h. Scratch: keys 3n + 16, positions n + 8. */
KERNEL_TARGET
static void KERNEL(csae_k_select_top)(const float *row, int64_t n, int64_t m, int64_t split, int sorted,
                                      int32_t *out, uint32_t *keys, int32_t *positions, uint32_t *bound_hint) {
    uint32_t *candidates = keys, *work = keys + n + 8, *chosen = keys + 2 * n + 8;
    int64_t count = 0, take_equal = 0;
    /* The previous row's bound first: rows of one batch have much the same
     * m-th magnitude, and this saves the sampling pass. */
    if (bound_hint && *bound_hint) {
        count = KERNEL(collect_at_least)(row, n, *bound_hint, candidates, positions);
        if (count < m) count = 0;
    }
    if (count == 0 && n >= 64 && m * 16 <= n) {
        /* A bound about 1.5 m keys reach: the (3m/16)-th best of every 8th key. */
        int64_t samples = n / 8, rank = 3 * m / 16;
        rank = rank < 1 ? 1 : (rank > samples ? samples : rank);
        const uint32_t *bits = (const uint32_t *)row;
        for (int64_t s = 0; s < samples; s++) chosen[s] = bits[8 * s] & 0x7FFFFFFFu;
        uint32_t bound = KERNEL(rank_threshold)(chosen, samples, rank, work, &take_equal);
        count = KERNEL(collect_at_least)(row, n, bound, candidates, positions);
    }
    if (count < m)
        count = KERNEL(collect_at_least)(row, n, KERNEL(group_bound)(row, n, m), candidates, positions);

    /* The best m of the candidates, kept in position order. */
    uint32_t threshold = KERNEL(rank_threshold)(candidates, count, m, work, &take_equal);
    if (bound_hint) {
        /* The next row's bound: 0.85 times this row's m-th magnitude (as a
         * float), low enough that the next row rarely has fewer than m
         * entries above it and not so low that it has many more. */
        float value;
        memcpy(&value, &threshold, sizeof value);
        value *= 0.85f;
        memcpy(bound_hint, &value, sizeof value);
    }
    int64_t kept = 0;
    for (int64_t e = 0; e < count; e++) {
        uint32_t key = candidates[e];
        int64_t equal = key == threshold;
        int64_t keep = (key > threshold) | (equal & (take_equal > 0));
        take_equal -= equal & keep;
        chosen[kept] = key;
        positions[kept] = positions[e];
        kept += keep;
    }
    if (sorted || split >= m) {
        if (sorted) KERNEL(sort_best_first)(chosen, positions, m);
        for (int64_t t = 0; t < m; t++) out[t] = positions[t];
        return;
    }
    /* The best `split` to the front, the others behind, each in position order. */
    threshold = KERNEL(rank_threshold)(chosen, m, split, work, &take_equal);
    int64_t front = 0, back = split;
    for (int64_t e = 0; e < m; e++) {
        uint32_t key = chosen[e];
        int64_t equal = key == threshold;
        int64_t keep = (key > threshold) | (equal & (take_equal > 0));
        take_equal -= equal & keep;
        out[keep ? front : back] = positions[e];
        front += keep;
        back += 1 - keep;
    }
}
