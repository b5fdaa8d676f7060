#include "CCompresSAE.h"
#include <stdlib.h>

/* Asks malloc for `bytes` and gives them back. Written in C, with the
 * pointer passed through a volatile, because an optimiser may delete an
 * unused malloc/free pair and assume it succeeded: the probe would then
 * always say yes. */
int csae_internal_can_allocate(size_t bytes) {
    void *volatile probe = malloc(bytes > 0 ? bytes : 1);
    void *p = probe;
    if (p == NULL) return 0;
    free(p);
    return 1;
}
