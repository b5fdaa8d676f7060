/* examples/c/example.c -- the compressae C API end to end.
 *
 * Loads real embeddings (the package's embedded WordNet/MiniLM slice, a .npy
 * of float16), trains a small CompresSAE model, encodes and decodes, reports
 * the reconstruction cosine, saves and reloads the model, searches an index
 * of codes, and shows how errors are reported. Exits non-zero on any failure.
 *
 * Build and run from the repository root (scripts/test does this):
 *   swift build -c release --product CompresSAE
 *   gcc -std=c11 -Wall -Wextra -Werror -pedantic -Iinclude examples/c/example.c \
 *       -L.build/release -lCompresSAE -Wl,-rpath,"$PWD/.build/release" -lm -o /tmp/csae_example
 *   /tmp/csae_example [python/compressae/data/wordnet10k_minilm384_f16.npy]
 */
#define _POSIX_C_SOURCE 200809L /* getpid */
#include "compressae.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_DATA "python/compressae/data/wordnet10k_minilm384_f16.npy"

static int failures = 0;

/* Checks a status; on failure prints the library's message and counts it. */
static int check(int32_t status, const char *what) {
    if (status != CSAE_OK) {
        fprintf(stderr, "FAIL: %s -> status %d: %s\n", what, (int)status, csae_last_error());
        failures++;
        return 0;
    }
    return 1;
}

static void expect(int condition, const char *what) {
    if (!condition) {
        fprintf(stderr, "FAIL: %s\n", what);
        failures++;
    }
}

/* IEEE half -> float (handles subnormals, inf, nan). */
static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            exp = 127 - 15 + 1;
            while ((mant & 0x400) == 0) {
                mant <<= 1;
                exp--;
            }
            mant &= 0x3ff;
            bits = sign | (exp << 23) | (mant << 13);
        }
    } else if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Reads a C-ordered little-endian float16 2-D .npy into float32 (malloc'd). */
static float *load_npy_f16(const char *path, int64_t *rows, int64_t *cols) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return NULL;
    }
    unsigned char pre[10];
    float *out = NULL;
    char *header = NULL;
    uint16_t *raw = NULL;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        fprintf(stderr, "%s: not a .npy file\n", path);
        goto done;
    }
    size_t header_len;
    if (pre[6] == 1) {
        header_len = (size_t)pre[8] | ((size_t)pre[9] << 8);
    } else {
        unsigned char extra[2];
        if (fread(extra, 1, 2, f) != 2) goto done;
        header_len = (size_t)pre[8] | ((size_t)pre[9] << 8) | ((size_t)extra[0] << 16) | ((size_t)extra[1] << 24);
    }
    header = malloc(header_len + 1);
    if (!header || fread(header, 1, header_len, f) != header_len) goto done;
    header[header_len] = '\0';
    if (!strstr(header, "'<f2'") || !strstr(header, "'fortran_order': False")) {
        fprintf(stderr, "%s: expected a C-ordered '<f2' array, header %s\n", path, header);
        goto done;
    }
    const char *shape = strstr(header, "'shape': (");
    long long r, c;
    if (!shape || sscanf(shape, "'shape': (%lld, %lld)", &r, &c) != 2 || r < 1 || c < 1) {
        fprintf(stderr, "%s: expected a 2-D array, header %s\n", path, header);
        goto done;
    }
    size_t count = (size_t)r * (size_t)c;
    raw = malloc(count * sizeof *raw);
    out = malloc(count * sizeof *out);
    if (!raw || !out || fread(raw, sizeof *raw, count, f) != count) {
        fprintf(stderr, "%s: short read\n", path);
        free(out);
        out = NULL;
        goto done;
    }
    for (size_t i = 0; i < count; i++) {
        uint8_t *b = (uint8_t *)&raw[i]; /* little-endian on disk */
        out[i] = half_to_float((uint16_t)(b[0] | (b[1] << 8)));
    }
    *rows = r;
    *cols = c;
done:
    free(raw);
    free(header);
    fclose(f);
    return out;
}

static double cosine(const float *a, const float *b, int64_t d) {
    double dot = 0, na = 0, nb = 0;
    for (int64_t i = 0; i < d; i++) {
        dot += (double)a[i] * b[i];
        na += (double)a[i] * a[i];
        nb += (double)b[i] * b[i];
    }
    return (na > 0 && nb > 0) ? dot / sqrt(na * nb) : 0.0;
}

/* Encodes and decodes rows, returns the mean cosine(x, decode(encode(x))). */
static double mean_recon_cosine(csae_model *model, const float *x, int64_t n, int64_t d, int64_t k,
                                int32_t *indices, float *values, float *recon) {
    csae_encode_params params = csae_encode_default_params();
    params.k = k;
    if (!check(csae_model_encode(model, x, n, d, &params, indices, values, n * k, NULL), "csae_model_encode") ||
        !check(csae_model_decode(model, indices, values, n, k, 0, recon), "csae_model_decode")) {
        return 0.0;
    }
    double sum = 0;
    for (int64_t r = 0; r < n; r++) sum += cosine(x + r * d, recon + r * d, d);
    return sum / (double)n;
}

/* Progress callback: counts the steps and prints a line every 5 steps. */
static int32_t on_progress(void *user_data, int64_t step, int64_t total, float loss) {
    int64_t *calls = user_data;
    (*calls)++;
    if (step % 5 == 0 || step == total) {
        printf("  step %3lld / %lld  loss %.4f\n", (long long)step, (long long)total, (double)loss);
    }
    return 0; /* non-zero would cancel training */
}

int main(int argc, char **argv) {
    const char *data_path = argc > 1 ? argv[1] : DEFAULT_DATA;
    const int64_t h = 1024, k = 16;
    const int64_t n_eval = 500;

    printf("compressae %s, C ABI %d, BLAS: %s\n", csae_version(), (int)csae_abi_version(), csae_blas_name());
    if (csae_abi_version() != CSAE_ABI_VERSION) {
        fprintf(stderr, "FAIL: library ABI %d, header ABI %d\n", (int)csae_abi_version(), CSAE_ABI_VERSION);
        return 1;
    }

    int64_t n = 0, d = 0;
    float *x = load_npy_f16(data_path, &n, &d);
    if (!x) return 1;
    printf("data: %s, %lld x %lld\n", data_path, (long long)n, (long long)d);
    if (n <= n_eval) {
        fprintf(stderr, "FAIL: need more than %lld rows\n", (long long)n_eval);
        free(x);
        return 1;
    }
    /* The last n_eval rows are held out for evaluation. */
    const int64_t n_train = n - n_eval;
    const float *x_eval = x + n_train * d;

    /* 1. Create a model: d -> h latents, k nonzeros per code. */
    csae_model *model = NULL;
    if (!check(csae_model_create(d, h, k, 42, CSAE_INIT_TIED, &model), "csae_model_create")) {
        free(x);
        return 1;
    }
    int64_t got_d = 0, got_h = 0, got_k = 0;
    check(csae_model_get_shape(model, &got_d, &got_h, &got_k), "csae_model_get_shape");
    expect(got_d == d && got_h == h && got_k == k, "shape of the new model");

    int32_t *indices = malloc((size_t)(n_eval * k) * sizeof *indices);
    float *values = malloc((size_t)(n_eval * k) * sizeof *values);
    float *recon = malloc((size_t)(n_eval * d) * sizeof *recon);
    if (!indices || !values || !recon) {
        fprintf(stderr, "FAIL: out of memory\n");
        return 1;
    }
    const double cos_init = mean_recon_cosine(model, x_eval, n_eval, d, k, indices, values, recon);
    printf("mean reconstruction cosine at initialisation: %.4f\n", cos_init);

    /* 2. Train: start from a recipe, change what you need. csae_train_default_params()
     *    is the measured recipe (up to 400 epochs with a validation split and early
     *    stopping); this example counts steps, so it starts from the reference's
     *    plain recipe: every row trains, constant learning rate, fixed epochs. */
    csae_train_params defaults = csae_train_default_params();
    expect(defaults.batch_size == 4096 && defaults.epochs == 400 && defaults.learning_rate_decay == CSAE_LR_PLATEAU,
           "default params");
    csae_train_params params = csae_train_reference_params();
    expect(params.epochs == 1 && params.validation_fraction == 0.0, "reference params");
    params.batch_size = 1024;
    params.epochs = 2;
    params.learning_rate = 1e-3f;
    params.seed = 7;
    int64_t progress_calls = 0;
    params.progress = on_progress;
    params.user_data = &progress_calls;
    const int64_t steps = params.epochs * ((n_train + params.batch_size - 1) / params.batch_size);
    printf("training: %lld rows, batch %lld, %lld epochs (%lld steps)\n", (long long)n_train,
           (long long)params.batch_size, (long long)params.epochs, (long long)steps);
    check(csae_model_train(model, x, n_train, d, &params), "csae_model_train");
    expect(progress_calls == steps, "progress callback called once per step");

    /* The loss of every step: ask for the length (NULL, 0), then copy. */
    int64_t hist_len = 0;
    check(csae_model_copy_history(model, CSAE_HISTORY_TRAINING_LOSS, NULL, 0, &hist_len), "csae_model_copy_history");
    expect(hist_len == steps, "history length == steps");
    float *history = malloc((size_t)(hist_len > 0 ? hist_len : 1) * sizeof *history);
    if (hist_len > 0 && check(csae_model_copy_history(model, CSAE_HISTORY_TRAINING_LOSS, history, hist_len, &hist_len),
                              "csae_model_copy_history")) {
        printf("loss: first step %.4f, last step %.4f\n", (double)history[0], (double)history[hist_len - 1]);
        expect(history[hist_len - 1] < history[0], "training lowers the loss");
    }
    free(history);

    /* 3. Encode held-out rows: k (index, value) pairs per row. NULL params:
     *    the defaults, k = 0 (the model's k, reported in k_used), every
     *    default thread; the capacity guards the buffers whatever k is. */
    int64_t k_used = 0;
    check(csae_model_encode(model, x_eval, n_eval, d, NULL, indices, values, n_eval * k, &k_used),
          "csae_model_encode");
    expect(k_used == k, "encode reports the model's k");
    int ok_codes = 1;
    for (int64_t i = 0; i < n_eval * k; i++) {
        if (indices[i] < 0 || indices[i] >= h || !isfinite(values[i])) ok_codes = 0;
    }
    for (int64_t r = 0; r < n_eval; r++) { /* ordered by |value| descending */
        for (int64_t j = 1; j < k; j++) {
            if (fabsf(values[r * k + j]) > fabsf(values[r * k + j - 1])) ok_codes = 0;
        }
    }
    expect(ok_codes, "codes: indices in [0,h), finite values, |value| descending");
    printf("row 0 code: ");
    for (int64_t j = 0; j < 4; j++) printf("(%d, %+.3f) ", (int)indices[j], (double)values[j]);
    printf("...\n");

    /* 4. Decode and measure the reconstruction. */
    check(csae_model_decode(model, indices, values, n_eval, k, 0, recon), "csae_model_decode");
    double mean_cos = 0;
    for (int64_t r = 0; r < n_eval; r++) mean_cos += cosine(x_eval + r * d, recon + r * d, d);
    mean_cos /= (double)n_eval;
    printf("storage: %lld bytes/vector as int32+float32 pairs vs %lld dense float32 (%.1fx)\n",
           (long long)(8 * k), (long long)(4 * d), (double)(4 * d) / (double)(8 * k));
    printf("mean reconstruction cosine on %lld held-out rows: %.4f\n", (long long)n_eval, mean_cos);
    expect(mean_cos > cos_init && mean_cos <= 1.0 + 1e-6, "training improves the reconstruction cosine");

    /* 5. Save, load, and check that the loaded model encodes identically. */
    char path[256];
    snprintf(path, sizeof path, "%s/compressae_c_example_%ld.safetensors",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (long)getpid());
    if (check(csae_model_save(model, path), "csae_model_save")) {
        csae_model *loaded = NULL;
        if (check(csae_model_load(path, 0, &loaded), "csae_model_load")) {
            int64_t ld = 0, lh = 0, lk = 0;
            check(csae_model_get_shape(loaded, &ld, &lh, &lk), "csae_model_get_shape(loaded)");
            expect(ld == d && lh == h && lk == k, "loaded shape (k from the file)");
            int32_t *indices2 = malloc((size_t)(n_eval * k) * sizeof *indices2);
            float *values2 = malloc((size_t)(n_eval * k) * sizeof *values2);
            if (indices2 && values2 &&
                check(csae_model_encode(loaded, x_eval, n_eval, d, NULL, indices2, values2, n_eval * k, NULL),
                      "encode(loaded)")) {
                expect(memcmp(indices, indices2, (size_t)(n_eval * k) * sizeof *indices) == 0 &&
                           memcmp(values, values2, (size_t)(n_eval * k) * sizeof *values) == 0,
                       "loaded model gives identical codes");
            }
            free(indices2);
            free(values2);
            printf("saved and reloaded %s: identical codes\n", path);
            csae_model_free(loaded);
        }
        remove(path);
    }

    /* 6. Retrieval: an index of the held-out codes, searched by sparse codes
     *    (cosine between codes, inverted index) and, in reconstructed mode,
     *    by dense queries (cosine against decoded items, O(k) per item). */
    {
        const int64_t nq = 5, top = 10;
        float scores[5 * 10];
        int64_t ids[5 * 10], found = 0;
        csae_search_params search = csae_search_default_params();
        search.n = top; /* rows of the results: nq x n */
        csae_index *sparse = NULL, *recon = NULL;
        if (check(csae_index_create(model, CSAE_INDEX_SPARSE, CSAE_STORAGE_STANDARD, &sparse), "csae_index_create")) {
            check(csae_index_add_codes(sparse, indices, values, n_eval, k), "csae_index_add_codes");
            int64_t count = 0, nbytes = 0;
            check(csae_index_get_info(sparse, &count, NULL, &nbytes, NULL, NULL), "csae_index_get_info");
            expect(count == n_eval, "index holds every added code");
            /* the first nq items' own codes as queries: each finds itself first */
            if (check(csae_index_search_codes(sparse, indices, values, nq, k, &search, scores, ids, nq * top, &found),
                      "csae_index_search_codes")) {
                expect(found == top, "n_results = min(n, items)");
                int self_first = 1;
                for (int64_t q = 0; q < nq; q++) {
                    if (ids[q * top] != q || fabsf(scores[q * top] - 1.0f) > 1e-4f) self_first = 0;
                    for (int64_t j = 1; j < top; j++) {
                        if (scores[q * top + j] > scores[q * top + j - 1]) self_first = 0;
                    }
                }
                expect(self_first, "sparse search: each item's own code ranks it first (cosine 1), scores descending");
                printf("sparse index: %lld items, %lld bytes; query 0 -> ids %lld %lld %lld (cos %.3f %.3f %.3f)\n",
                       (long long)count, (long long)nbytes, (long long)ids[0], (long long)ids[1], (long long)ids[2],
                       (double)scores[0], (double)scores[1], (double)scores[2]);
            }
            csae_index_free(sparse);
        }
        if (check(csae_index_create(model, CSAE_INDEX_RECONSTRUCTED, CSAE_STORAGE_STANDARD, &recon),
                  "csae_index_create(reconstructed)")) {
            check(csae_index_add_dense(recon, x_eval, n_eval, d, 0), "csae_index_add_dense");
            if (check(csae_index_search_dense(recon, x_eval, nq, d, &search, scores, ids, nq * top, &found),
                      "csae_index_search_dense")) {
                int64_t hits = 0;
                for (int64_t q = 0; q < nq; q++) hits += (ids[q * top] == q);
                printf("reconstructed index, dense queries: %lld of %lld find themselves first\n",
                       (long long)hits, (long long)nq);
                expect(ids[0] >= 0 && ids[0] < n_eval && scores[0] <= 1.0f + 1e-4f, "reconstructed search returns valid ids");
            }
            csae_index_free(recon);
        }
        /* More results asked than items: n_results says how many are real;
         * the columns past it hold id -1 and score -INFINITY. An empty index
         * is an empty result (n_results = 0), not an error. */
        csae_index *few = NULL;
        if (check(csae_index_create(model, CSAE_INDEX_SPARSE, CSAE_STORAGE_COMPACT, &few), "csae_index_create(few)")) {
            check(csae_index_search_dense(few, x_eval, nq, d, &search, scores, ids, nq * top, &found),
                  "csae_index_search_dense(empty)");
            expect(found == 0 && ids[0] == -1 && isinf(scores[0]), "an empty index gives no results");
            check(csae_index_add_codes(few, indices, values, 3, k), "csae_index_add_codes(3)");
            check(csae_index_search_dense(few, x_eval, nq, d, &search, scores, ids, nq * top, &found),
                  "csae_index_search_dense(3 items)");
            expect(found == 3 && ids[3] == -1 && ids[top + 3] == -1 && ids[0] >= 0, "3 items: 3 results, then padding");
            printf("index of 3 items, n = %lld: n_results = %lld, ids of query 0: %lld %lld %lld %lld ...\n",
                   (long long)top, (long long)found, (long long)ids[0], (long long)ids[1], (long long)ids[2],
                   (long long)ids[3]);
            csae_index_free(few);
        }
    }

    /* 7. Errors: every call returns a status; csae_last_error() explains it. */
    csae_model *bad = NULL;
    int32_t st = csae_model_create(d, h, 0, 0, CSAE_INIT_REFERENCE, &bad); /* k = 0 is invalid */
    printf("create with k=0 -> status %d (%s): %s\n", (int)st,
           st == CSAE_ERR_INVALID_ARGUMENT ? "CSAE_ERR_INVALID_ARGUMENT" : "?", csae_last_error());
    expect(st == CSAE_ERR_INVALID_ARGUMENT && bad == NULL && strlen(csae_last_error()) > 0,
           "k=0 is refused with a message");

    st = csae_model_encode(model, x_eval, 1, d + 1, NULL, indices, values, k, NULL); /* wrong width */
    printf("encode with d=%lld -> status %d: %s\n", (long long)(d + 1), (int)st, csae_last_error());
    expect(st == CSAE_ERR_INVALID_ARGUMENT, "wrong input width is refused");

    st = csae_model_load("/nonexistent/dir/model.safetensors", 0, &bad);
    printf("load of a missing file -> status %d: %s\n", (int)st, csae_last_error());
    expect(st == CSAE_ERR_IO, "missing file gives CSAE_ERR_IO");

    st = csae_model_get_shape(NULL, &got_d, &got_h, &got_k);
    printf("NULL handle -> status %d: %s\n", (int)st, csae_last_error());
    expect(st == CSAE_ERR_INVALID_HANDLE && strlen(csae_last_error()) > 0,
           "a NULL handle gives CSAE_ERR_INVALID_HANDLE with a message");

    /* 8. Free. A freed handle is refused, never a crash; free(NULL) is a no-op. */
    csae_model_free(model);
    st = csae_model_get_shape(model, &got_d, &got_h, &got_k);
    printf("use after free -> status %d: %s\n", (int)st, csae_last_error());
    expect(st == CSAE_ERR_INVALID_HANDLE, "freed handle gives CSAE_ERR_INVALID_HANDLE");
    csae_model_free(NULL);

    free(indices);
    free(values);
    free(recon);
    free(x);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("OK\n");
    return 0;
}
