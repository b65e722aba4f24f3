/* Shared helpers for the Check suites. */
#ifndef DSQL_TESTUTIL_H
#define DSQL_TESTUTIL_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsqlauth.h"

/* Reads a whole file under test/data; NULL if missing. Caller frees. */
static inline char *test_read_file(const char *relpath, size_t *len)
{
    const char *dir = getenv("DSQL_TEST_DATA");
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "test/data", relpath);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        if (len)
            *len = (size_t)n;
    }
    return buf;
}

/* Finds the value of query parameter `key` in a token; copies it to out. */
static inline int test_query_param(const char *token, const char *key, char *out, size_t cap)
{
    const char *q = strchr(token, '?');
    size_t klen = strlen(key);
    for (const char *p = q ? q + 1 : NULL; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t n = amp ? (size_t)(amp - p) : strlen(p);
        if (n > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
            size_t vlen = n - klen - 1;
            if (vlen + 1 > cap)
                return 0;
            memcpy(out, p + klen + 1, vlen);
            out[vlen] = '\0';
            return 1;
        }
        p = amp ? amp + 1 : NULL;
    }
    return 0;
}

#define TEST_MAIN(suite_fn)                                                     \
    int main(void)                                                              \
    {                                                                           \
        SRunner *sr = srunner_create(suite_fn());                               \
        srunner_run_all(sr, CK_NORMAL);                                         \
        int failed = srunner_ntests_failed(sr);                                 \
        srunner_free(sr);                                                       \
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;                       \
    }

#endif
