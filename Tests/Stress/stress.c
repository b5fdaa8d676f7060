/* stress.c -- threads calling libCompresSAE on shared handles at once.
 *
 *   stress [seconds] [threads] [excluded]    (defaults: 5 s, 8 threads, none)
 *
 * excluded: a comma-separated list of operations left out, to look past a
 * known failure: setk (set_k, also from the progress callback), k0 (encode
 * with the model's k), train, free (replacing a handle in use), save.
 *
 * Built against a sanitizer build of the library (scripts/sanitize): under
 * AddressSanitizer and ThreadSanitizer every interleaving below must be free
 * of memory errors and data races. Two model slots and two index slots are
 * shared by all threads; each thread loops over a mix of encode, refit,
 * decode, set_k, train, add, search, save, load, get_shape / get_info, and
 * replacing a slot (free the handle in use by others, create a new one).
 * A call on a handle another thread has just freed must fail with
 * CSAE_ERR_INVALID_HANDLE, never touch freed memory.
 *
 * Checked: every status is one the call may return, a failed call sets a
 * message, outputs are in range (latent indices < h, finite values, result
 * ids of stored items or -1). Any violation prints it and exits 1. */
#define _POSIX_C_SOURCE 200809L
#include "compressae.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { D = 24, H = 96, MAX_K = 8, ROWS = 16, TRAIN_ROWS = 128, SLOTS = 2 };

static _Atomic(csae_model *) models[SLOTS];
static _Atomic(csae_index *) indexes[SLOTS];
static atomic_int failed;
static atomic_long calls, refused_handles, busy;
static double deadline;
static char directory[256];
static int no_setk, no_k0, no_train, no_free, no_save;
static float train_x[TRAIN_ROWS * D]; /* written before the threads start */

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void fail(const char *what, int32_t status) {
    fprintf(stderr, "stress: %s: status %d, %s\n", what, (int)status, csae_last_error());
    atomic_store(&failed, 1);
}

/* Statuses a call may return here: success, a handle freed by another
 * thread, a model busy training, an argument the current state refuses
 * (e.g. a k that no longer matches the index, an index whose model was
 * retrained), or a file another thread is replacing. */
static void check(const char *what, int32_t status, int allow_format) {
    atomic_fetch_add(&calls, 1);
    if (status == CSAE_OK) return;
    if (csae_last_error()[0] == '\0') { fail(what, status); fprintf(stderr, "  (no message)\n"); return; }
    if (status == CSAE_ERR_INVALID_HANDLE) { atomic_fetch_add(&refused_handles, 1); return; }
    if (status == CSAE_ERR_BUSY || status == CSAE_ERR_INVALID_ARGUMENT || status == CSAE_ERR_CANCELLED) {
        atomic_fetch_add(&busy, 1);
        return;
    }
    if (allow_format && (status == CSAE_ERR_FORMAT || status == CSAE_ERR_IO)) return;
    fail(what, status);
}

static uint64_t next(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void rows(float *x, int n, uint64_t *s) {
    for (int i = 0; i < n * D; i++) x[i] = (float)((int)(next(s) % 2001) - 1000) / 1000.0f;
    for (int i = 0; i < n; i++) x[i * D] += 2.0f; /* never an all-zero row */
}

static int32_t cancel_sometimes(void *user_data, int64_t step, int64_t total, float loss) {
    (void)total; (void)loss;
    /* Changes k from inside training, as a progress bar's owner might. */
    if (!no_setk) csae_model_set_k(atomic_load(&models[0]), 2 + (step % 3));
    return (*(int *)user_data && step >= 3) ? 1 : 0;
}

static csae_model *new_model(uint64_t seed) {
    csae_model *m = NULL;
    int32_t st = csae_model_create(D, H, 4, seed, CSAE_INIT_TIED, &m);
    if (st != CSAE_OK) { fail("create model", st); return NULL; }
    return m;
}

static void replace_model(int slot, uint64_t seed) {
    csae_model *m = new_model(seed);
    if (!m) return;
    csae_model *old = atomic_exchange(&models[slot], m);
    csae_model_free(old); /* other threads may be inside a call on it */
}

static void replace_index(int slot, uint64_t *s) {
    csae_index *ix = NULL;
    int32_t st = csae_index_create(atomic_load(&models[slot]), (int32_t)(next(s) % 2), (int32_t)(next(s) % 2), &ix);
    check("index create", st, 0);
    if (st != CSAE_OK) return;
    csae_index *old = atomic_exchange(&indexes[slot], ix);
    csae_index_free(old);
}

static void check_codes(const char *what, const int32_t *indices, const float *values, int64_t count) {
    for (int64_t i = 0; i < count; i++) {
        if (indices[i] < 0 || indices[i] >= H || !isfinite(values[i])) {
            fprintf(stderr, "stress: %s wrote code %lld = (%d, %g)\n", what, (long long)i, indices[i], values[i]);
            atomic_store(&failed, 1);
            return;
        }
    }
}

static void check_ids(const char *what, const int64_t *ids, int64_t count) {
    for (int64_t i = 0; i < count; i++) {
        if (ids[i] < -1) {
            fprintf(stderr, "stress: %s returned id %lld\n", what, (long long)ids[i]);
            atomic_store(&failed, 1);
            return;
        }
    }
}

/* Encode settings of k nonzeros (0: the model's k). */
static csae_encode_params encode_params(int64_t k, int32_t num_threads) {
    csae_encode_params p = csae_encode_default_params();
    p.k = k;
    p.num_threads = num_threads;
    return p;
}

static void *worker(void *arg) {
    int id = (int)(intptr_t)arg;
    uint64_t s = 0x1234u + (uint64_t)id * 7919u;
    float x[ROWS * D], out[ROWS * D];
    int32_t indices[ROWS * H];
    float values[ROWS * H];
    float scores[ROWS * 10];
    int64_t ids[ROWS * 10];
    const int64_t code_capacity = ROWS * H, result_capacity = ROWS * 10;
    char model_path[300], index_path[300];
    snprintf(model_path, sizeof model_path, "%s/model-%d.safetensors", directory, id % 3);
    snprintf(index_path, sizeof index_path, "%s/index-%d.safetensors", directory, id % 3);

    while (now() < deadline && !atomic_load(&failed)) {
        int slot = (int)(next(&s) % SLOTS);
        csae_model *m = atomic_load(&models[slot]);
        csae_index *ix = atomic_load(&indexes[slot]);
        int n = 1 + (int)(next(&s) % ROWS);
        int64_t k = 1 + (int64_t)(next(&s) % MAX_K);
        rows(x, n, &s);
        int32_t st;
        int op = (int)(next(&s) % 16);
        if ((no_k0 && op == 2) || (no_setk && (op == 3 || op == 4)) || (no_train && op == 5)
            || (no_save && (op == 11 || op == 12)) || (no_free && op >= 14)) continue;
        switch (op) {
        case 0: case 1: { /* encode with an explicit k, then refit and decode the codes */
            csae_encode_params p = encode_params(k, (int32_t)(next(&s) % 3));
            st = csae_model_encode(m, x, n, D, &p, indices, values, code_capacity, NULL);
            check("encode", st, 0);
            if (st == CSAE_OK) {
                check_codes("encode", indices, values, n * k);
                st = csae_model_refit(m, x, n, D, &p, indices, values, code_capacity, NULL);
                check("refit", st, 0);
                if (st == CSAE_OK) check_codes("refit", indices, values, n * k);
                check("decode", csae_model_decode(m, indices, values, n, k, 0, out), 0);
            }
            break;
        }
        case 2: { /* encode with the model's k (k = 0) while others change it,
                     into buffers whose capacity is checked against the k read */
            int64_t used = 0;
            st = csae_model_encode(m, x, n, D, NULL, indices, values, n * MAX_K, &used);
            check("encode k=0", st, 0);
            if (st == CSAE_OK && (used < 1 || used > MAX_K)) {
                fprintf(stderr, "stress: encode k=0 reported k %lld\n", (long long)used);
                atomic_store(&failed, 1);
            }
            break;
        }
        case 3: case 4:
            check("set_k", csae_model_set_k(m, k), 0);
            break;
        case 5: { /* a short training run, sometimes cancelled from its callback */
            int cancel = (int)(next(&s) % 2);
            csae_train_params p = csae_train_reference_params();
            p.epochs = 1; p.batch_size = 32; p.num_threads = 2;
            p.validation_fraction = 0.1; p.patience = 1; p.progress = cancel_sometimes; p.user_data = &cancel;
            check("train", csae_model_train(m, train_x, TRAIN_ROWS, D, &p), 0);
            break;
        }
        case 6: case 7:
            check("index add_dense", csae_index_add_dense(ix, x, n, D, (int32_t)(next(&s) % 3)), 0);
            break;
        case 8: {
            csae_encode_params p = encode_params(4, 0);
            st = csae_model_encode(m, x, n, D, &p, indices, values, code_capacity, NULL);
            check("encode for add", st, 0);
            if (st == CSAE_OK) check("index add_codes", csae_index_add_codes(ix, indices, values, n, 4), 0);
            break;
        }
        case 9: case 10: {
            csae_search_params sp = csae_search_default_params();
            sp.n = 1 + (int64_t)(next(&s) % 10);
            sp.num_threads = (int32_t)(next(&s) % 3);
            int64_t found = -1;
            st = csae_index_search_dense(ix, x, n, D, &sp, scores, ids, result_capacity, &found);
            check("index search_dense", st, 0);
            if (st == CSAE_OK) check_ids("search_dense", ids, n * sp.n);
            csae_encode_params p = encode_params(k, 0);
            st = csae_model_encode(m, x, n, D, &p, indices, values, code_capacity, NULL);
            if (st == CSAE_OK) {
                sp.num_threads = 1;
                st = csae_index_search_codes(ix, indices, values, n, k, &sp, scores, ids, result_capacity, &found);
                check("index search_codes", st, 0);
                if (st == CSAE_OK) check_ids("search_codes", ids, n * sp.n);
            }
            break;
        }
        case 11: { /* save and load back (other threads save to the same paths) */
            check("model save", csae_model_save(m, model_path), 0);
            csae_model *loaded = NULL;
            st = csae_model_load(model_path, 0, &loaded);
            check("model load", st, 1);
            csae_model_free(loaded);
            break;
        }
        case 12: {
            check("index save", csae_index_save(ix, index_path), 0);
            csae_index *loaded = NULL;
            st = csae_index_load(index_path, m, &loaded);
            check("index load", st, 1);
            csae_index_free(loaded);
            break;
        }
        case 13: {
            int64_t d, h, kk, count, nbytes;
            int32_t mode, storage;
            check("get_shape", csae_model_get_shape(m, &d, &h, &kk), 0);
            check("get_info", csae_index_get_info(ix, &count, &kk, &nbytes, &mode, &storage), 0);
            int64_t len;
            float history[8];
            check("history length", csae_model_copy_history(m, CSAE_HISTORY_VALIDATION_LOSS, NULL, 0, &len), 0);
            check("copy_history", csae_model_copy_history(m, CSAE_HISTORY_TRAINING_LOSS, history, 8, &len), 0);
            break;
        }
        case 14: /* free a model others use, put a new one in its place */
            if (next(&s) % 4 == 0) replace_model(slot, next(&s));
            break;
        default: /* free an index others use, put a new one in its place */
            if (next(&s) % 4 == 0) replace_index(slot, &s);
            break;
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 5.0;
    int threads = argc > 2 ? atoi(argv[2]) : 8;
    if (threads < 1 || threads > 64) threads = 8;
    const char *excluded = argc > 3 ? argv[3] : "";
    no_setk = strstr(excluded, "setk") != NULL;
    no_k0 = strstr(excluded, "k0") != NULL;
    no_train = strstr(excluded, "train") != NULL;
    no_free = strstr(excluded, "free") != NULL;
    no_save = strstr(excluded, "save") != NULL;
    const char *tmp = getenv("TMPDIR");
    snprintf(directory, sizeof directory, "%s/compressae-stress.XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(directory)) { perror("mkdtemp"); return 1; }
    if (csae_abi_version() != CSAE_ABI_VERSION) { fprintf(stderr, "ABI mismatch\n"); return 1; }

    uint64_t s = 42;
    rows(train_x, TRAIN_ROWS, &s);
    for (int i = 0; i < SLOTS; i++) {
        atomic_store(&models[i], new_model((uint64_t)i));
        replace_index(i, &s);
    }
    deadline = now() + seconds;
    pthread_t t[64];
    for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < SLOTS; i++) {
        csae_index_free(atomic_load(&indexes[i]));
        csae_model_free(atomic_load(&models[i]));
    }
    char command[400];
    snprintf(command, sizeof command, "rm -rf '%s'", directory);
    if (system(command) != 0) fprintf(stderr, "stress: could not remove %s\n", directory);
    printf("stress: %d threads, %.1f s%s%s: %ld calls, %ld refused (freed handle), %ld refused (busy / argument)%s\n",
           threads, seconds, excluded[0] ? ", without " : "", excluded, atomic_load(&calls), atomic_load(&refused_handles), atomic_load(&busy),
           atomic_load(&failed) ? ", FAILED" : "");
    return atomic_load(&failed) ? 1 : 0;
}
