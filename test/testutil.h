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

/* A failing, counting allocator for dsql_set_allocator(): after
 * test_alloc_fail_nth(n) the n-th allocation from then on fails (0: none),
 * and test_alloc_live() is the number of blocks allocated and not freed. */
typedef struct test_alloc_state {
    long countdown, live;
} test_alloc_state;
static inline test_alloc_state *test_alloc(void)
{
    static test_alloc_state state;
    return &state;
}
static inline void test_alloc_fail_nth(long n)
{
    test_alloc()->countdown = n;
    test_alloc()->live = 0;
}
static inline long test_alloc_live(void) { return test_alloc()->live; }
static inline int test_alloc_fails_now(void)
{
    return test_alloc()->countdown > 0 && --test_alloc()->countdown == 0;
}
static inline void *test_failing_malloc(size_t n)
{
    void *p = test_alloc_fails_now() ? NULL : malloc(n);
    if (p)
        test_alloc()->live++;
    return p;
}
static inline void *test_failing_realloc(void *p, size_t n)
{
    void *q = test_alloc_fails_now() ? NULL : realloc(p, n);
    if (q && !p)
        test_alloc()->live++;
    return q;
}
static inline void test_counting_free(void *p)
{
    if (p)
        test_alloc()->live--;
    free(p);
}
static inline void test_use_failing_allocator(void)
{
    dsql_set_allocator(test_failing_malloc, test_failing_realloc, test_counting_free);
}

#endif
