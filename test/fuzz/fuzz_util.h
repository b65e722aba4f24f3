/* Helpers shared by the fuzz targets. */
#ifndef DSQL_FUZZ_UTIL_H
#define DSQL_FUZZ_UTIL_H

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

/* The input as a NUL-terminated string (embedded NULs end it early);
 * NULL when out of memory. The caller frees it. */
static inline char *fuzz_cstring(const unsigned char *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s) {
        memcpy(s, data, size);
        s[size] = '\0';
    }
    return s;
}

#endif
