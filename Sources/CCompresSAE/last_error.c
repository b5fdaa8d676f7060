#include "CCompresSAE.h"
#include <string.h>

/* One message per thread, so concurrent callers never read each other's error. */
static _Thread_local char last_error[1024];

void csae_internal_set_error(const char *message) {
    if (message == NULL) {
        last_error[0] = '\0';
        return;
    }
    size_t n = strlen(message);
    if (n >= sizeof last_error) n = sizeof last_error - 1;
    memcpy(last_error, message, n);
    last_error[n] = '\0';
}

const char *csae_internal_get_error(void) { return last_error; }
