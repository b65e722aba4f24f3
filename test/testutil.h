/* Shared helpers for the Check suites. */
#ifndef DSQL_TESTUTIL_H
#define DSQL_TESTUTIL_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

/* Runs every test of a suite; returns the number that failed. */
static inline int test_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed;
}

#define TEST_MAIN(suite_fn)                                                     \
    int main(void)                                                              \
    {                                                                           \
        return test_run_suite(suite_fn()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;   \
    }

/* ---- blocks that know their size, for allocators that inspect frees ---- */

typedef struct test_sized_header {
    size_t size;
    size_t pad; /* keeps the block 16-byte aligned */
} test_sized_header;

/* A block of n bytes that remembers n (test_sized_size); NULL if malloc
 * fails. Give it back with test_sized_free. */
static inline void *test_sized_malloc(size_t n)
{
    test_sized_header *h = malloc(sizeof *h + n);
    if (!h)
        return NULL;
    h->size = n;
    return h + 1;
}
static inline size_t test_sized_size(const void *p)
{
    return ((const test_sized_header *)p - 1)->size;
}
static inline void test_sized_free(void *p)
{
    if (p)
        free((test_sized_header *)p - 1);
}
/* realloc for an allocator built on these blocks: a new block from alloc,
 * the old bytes copied, the old block through release (so it is inspected
 * like any other free). */
static inline void *test_sized_realloc(void *p, size_t n, void *(*alloc)(size_t),
                                       void (*release)(void *))
{
    void *q = alloc(n);
    if (q && p) {
        size_t old = test_sized_size(p);
        memcpy(q, p, old < n ? old : n);
        release(p);
    }
    return q;
}

/* ---- a throwaway HOME with shared config / credentials files ---------- */

/* Unsets the variables that name profile files, a profile, a region or
 * keys, and disables IMDS, so only the files under HOME count. */
static inline void test_clear_profile_env(void)
{
    static const char *const vars[] = {
        "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_PROFILE", "AWS_REGION",
        "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
}

/* Makes a new directory /tmp/<prefix>-XXXXXX in dir (cap bytes) and
 * points HOME at it. */
static inline void test_make_home(char *dir, size_t cap, const char *prefix)
{
    snprintf(dir, cap, "/tmp/%s-XXXXXX", prefix);
    ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp %s failed", dir);
    setenv("HOME", dir, 1);
}

/* Removes the tree at dir, if any, and empties dir. */
static inline void test_remove_tree(char *dir)
{
    if (dir[0]) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        ck_assert_msg(system(cmd) == 0, "%s failed", cmd);
    }
    dir[0] = '\0';
}

/* Writes dir/rel, making the directories between (mode 0700), and gives
 * it mode (chmod, so the umask does not matter). Returns the path, in a
 * buffer the next call reuses. */
static inline const char *test_write_file_in(const char *dir, const char *rel, const char *text,
                                             mode_t mode)
{
    static char path[1024];
    int n = snprintf(path, sizeof path, "%s/%s", dir, rel);
    ck_assert_msg(n > 0 && (size_t)n < sizeof path, "path too long: %s/%s", dir, rel);
    for (char *s = path + strlen(dir) + 1; (s = strchr(s, '/')); s++) {
        *s = '\0';
        mkdir(path, 0700);
        *s = '/';
    }
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    int wrote = fputs(text, f);
    int closed = fclose(f);
    ck_assert_msg(wrote >= 0 && closed == 0, "cannot write %s", path);
    ck_assert_msg(chmod(path, mode) == 0, "cannot chmod %s", path);
    return path;
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
