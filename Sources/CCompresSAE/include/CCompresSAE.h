/* Umbrella header of the C support module (internal to the Swift library). */
#ifndef CCOMPRESSAE_H
#define CCOMPRESSAE_H
#include "compressae_types.h"

/* Thread-local last-error slot behind csae_last_error(). */
void csae_internal_set_error(const char *message);
const char *csae_internal_get_error(void);

/* BLAS resolved at run time (dlopen), so that the library loads without one
 * and picks a correct kernel on CPUs that old OpenBLAS builds misdetect. */
typedef void (*csae_sgemm_fn)(int order, int trans_a, int trans_b, int m, int n, int k,
                              float alpha, const float *a, int lda, const float *b, int ldb,
                              float beta, float *c, int ldc);
/* Returns the BLAS sgemm, or NULL when no BLAS library could be loaded. */
csae_sgemm_fn csae_internal_blas_sgemm(void);
/* Name of the BLAS in use (e.g. "OpenBLAS Zen") or "none". */
const char *csae_internal_blas_name(void);
#endif
