#include "CCompresSAE.h"

const char *csae_internal_version(void) { return CSAE_VERSION; }
