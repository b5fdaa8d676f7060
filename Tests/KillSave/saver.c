/* saver.c -- the writer and checker of Tests/KillSave/kill_during_save.py.
 *
 *   saver init  DIR   write a good model and index to DIR
 *   saver loop  DIR   load them, then save both over themselves forever
 *                     (k alternates, the index grows): killed with SIGKILL
 *                     at a random point by the driver. Prints "saving" once
 *                     the first save starts.
 *   saver once  DIR   load both and save both once (the "next save")
 *   saver check DIR   load both; exit 0 when they load, 1 (with the error) when not
 */
#define _POSIX_C_SOURCE 200809L
#include "compressae.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { D = 128, H = 512, K = 8, ROWS = 50 };

static char model_path[4096], index_path[4096];

static void die(const char *what) {
    fprintf(stderr, "saver: %s: %s\n", what, csae_last_error());
    exit(1);
}

static void rows(float *x, int n, unsigned seed) {
    for (int i = 0; i < n * D; i++) {
        seed = seed * 1103515245u + 12345u;
        x[i] = (float)((int)(seed >> 16 & 0x7FF) - 1024) / 1024.0f;
    }
    for (int i = 0; i < n; i++) x[i * D] += 2.0f;
}

static void load(csae_model **m, csae_index **ix) {
    if (csae_model_load(model_path, 0, m) != CSAE_OK) die("model load");
    if (csae_index_load(index_path, *m, ix) != CSAE_OK) die("index load");
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: saver init|loop|once|check DIR\n"); return 2; }
    snprintf(model_path, sizeof model_path, "%s/model.safetensors", argv[2]);
    snprintf(index_path, sizeof index_path, "%s/index.safetensors", argv[2]);
    static float x[ROWS * D];
    csae_model *m = NULL;
    csae_index *ix = NULL;
    const char *mode = argv[1];
    if (strcmp(mode, "init") == 0) {
        if (csae_model_create(D, H, K, 3, CSAE_INIT_TIED, &m) != CSAE_OK) die("model create");
        if (csae_index_create(m, CSAE_INDEX_SPARSE, CSAE_STORAGE_STANDARD, &ix) != CSAE_OK) die("index create");
        for (unsigned b = 0; b < 20; b++) {
            rows(x, ROWS, b);
            if (csae_index_add_dense(ix, x, ROWS, D, 0) != CSAE_OK) die("index add");
        }
        if (csae_model_save(m, model_path) != CSAE_OK) die("model save");
        if (csae_index_save(ix, index_path) != CSAE_OK) die("index save");
    } else if (strcmp(mode, "loop") == 0 || strcmp(mode, "once") == 0) {
        load(&m, &ix);
        int once = strcmp(mode, "once") == 0;
        for (unsigned i = 0;; i++) {
            if (i == 0 && !once) { printf("saving\n"); fflush(stdout); }
            if (csae_model_set_k(m, i % 2 ? K : K / 2) != CSAE_OK) die("set_k");
            if (csae_model_save(m, model_path) != CSAE_OK) die("model save");
            rows(x, 1, 1000 + i);
            if (csae_index_add_dense(ix, x, 1, D, 0) != CSAE_OK) die("index add");
            if (csae_index_save(ix, index_path) != CSAE_OK) die("index save");
            if (once) break;
        }
    } else if (strcmp(mode, "check") == 0) {
        load(&m, &ix);
        int64_t d, h, k, count;
        if (csae_model_get_shape(m, &d, &h, &k) != CSAE_OK) die("get_shape");
        if (csae_index_get_info(ix, &count, NULL, NULL, NULL, NULL) != CSAE_OK) die("get_info");
        if (d != D || h != H || (k != K && k != K / 2) || count < 20 * ROWS) {
            fprintf(stderr, "saver: loaded d %lld h %lld k %lld count %lld\n", (long long)d, (long long)h,
                    (long long)k, (long long)count);
            return 1;
        }
    } else {
        fprintf(stderr, "saver: unknown mode %s\n", mode);
        return 2;
    }
    csae_index_free(ix);
    csae_model_free(m);
    return 0;
}
