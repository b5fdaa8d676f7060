/* Finds a CBLAS sgemm at run time.
 *
 * Why at run time: the library then loads (and works, with its own portable
 * GEMM) on machines without a BLAS, and we can steer OpenBLAS's kernel choice
 * before its constructor runs: Debian's OpenBLAS 0.3.21 does not recognise
 * some newer CPUs and falls back to a generic "Prescott" kernel about 5x
 * slower. When the user has not set OPENBLAS_CORETYPE we name the kernel
 * family the CPU supports, for the duration of dlopen only. */
#define _GNU_SOURCE
#include "CCompresSAE.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static csae_sgemm_fn blas_sgemm = NULL;
static void (*blas_set_threads)(int) = NULL;
static char blas_name[128] = "none";

static const char *suggested_coretype(void) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return "Haswell";
#endif
    return NULL;
}

static void *open_blas(const char *name) {
    /* Already loaded by someone else in this process: use it as it is. */
    void *handle = dlopen(name, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    if (handle) return handle;
    const char *coretype = suggested_coretype();
    int openblas = strstr(name, "openblas") != NULL;
    int set_env = coretype != NULL && openblas && getenv("OPENBLAS_CORETYPE") == NULL;
    /* OpenBLAS starts its thread pool in its constructor, one thread per CPU
     * it sees; the library calls it from its own workers with one thread
     * each (below), so a pool would only hold idle threads (in every task
     * of a many-task node). */
    int set_threads = openblas && getenv("OPENBLAS_NUM_THREADS") == NULL;
    if (set_env) setenv("OPENBLAS_CORETYPE", coretype, 0);
    if (set_threads) setenv("OPENBLAS_NUM_THREADS", "1", 0);
    handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (set_env) unsetenv("OPENBLAS_CORETYPE");
    if (set_threads) unsetenv("OPENBLAS_NUM_THREADS");
    return handle;
}

/* A symbol under its plain name or, failing that, with the "scipy_" prefix
 * of the OpenBLAS that the scipy-openblas32 wheel ships (its copy renames
 * every symbol so that it cannot clash with another BLAS in the process). */
static void *find_symbol(void *handle, const char *name) {
    void *symbol = dlsym(handle, name);
    if (symbol) return symbol;
    char prefixed[64];
    snprintf(prefixed, sizeof prefixed, "scipy_%s", name);
    return dlsym(handle, prefixed);
}

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static void load_blas(void) {
    if (getenv("CSAE_DISABLE_BLAS") != NULL) return; /* forces the built-in GEMM (tests) */
    const char *candidates[] = {
        getenv("CSAE_BLAS_LIBRARY"),  /* explicit choice, e.g. a path to libopenblas.so */
        "libopenblas.so.0",
        "libopenblas.so",
        "libblis.so.4",
        "libcblas.so.3",
        "libblas.so.3",
        /* Tried only when the system has none of the above: the Python
         * package points this at the scipy-openblas32 wheel's library when
         * that package is installed (a dependency of the Python package). */
        getenv("CSAE_BLAS_FALLBACK_LIBRARY"),
    };
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
        const char *name = candidates[i];
        if (name == NULL || name[0] == '\0') continue;
        void *handle = open_blas(name);
        if (!handle) continue;
        void *fn = find_symbol(handle, "cblas_sgemm");
        if (!fn) {
            dlclose(handle);
            continue;
        }
        blas_sgemm = (csae_sgemm_fn)fn;
        blas_set_threads = (void (*)(int))find_symbol(handle, "openblas_set_num_threads");
        /* The library parallelises across row chunks itself; BLAS threads on
         * top would oversubscribe the cores, and a product whose split depends
         * on the thread count could round differently from run to run. */
        if (blas_set_threads) blas_set_threads(1);
        char *(*corename)(void) = (char *(*)(void))find_symbol(handle, "openblas_get_corename");
        if (corename)
            snprintf(blas_name, sizeof blas_name, "OpenBLAS %s (%s)", corename(), base_name(name));
        else
            snprintf(blas_name, sizeof blas_name, "%s", base_name(name));
        return;
    }
}

csae_sgemm_fn csae_internal_blas_sgemm(void) {
    pthread_once(&blas_once, load_blas);
    return blas_sgemm;
}

const char *csae_internal_blas_name(void) {
    pthread_once(&blas_once, load_blas);
    return blas_sgemm ? blas_name : "none";
}
