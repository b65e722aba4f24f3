/* Secret hygiene: every block the library frees is inspected by a test
 * allocator, and must not contain the secret key or session token; log
 * lines and error messages must not contain secrets, tokens or signatures. */
#include <pthread.h>

#include "testutil.h"
#include "internal.h"
#include "sigv4.h"

#define SECRET "SeCrEtKeY/ab+cdEXAMPLEwJalrXUtnFEMI0123"
#define SESSION "SeSsIoNtOkEn/+=MARKER"
#define SESSION_ENCODED "SeSsIoNtOkEn%2F%2B%3DMARKER"

static long leaked_secrets;

static int contains(const unsigned char *p, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(p + i, needle, k) == 0)
            return 1;
    return 0;
}

static void *inspect_malloc(size_t n)
{
    return test_sized_malloc(n);
}

static void inspect_free(void *p)
{
    if (!p)
        return;
    size_t size = test_sized_size(p);
    const unsigned char *bytes = p;
    if (contains(bytes, size, SECRET) || contains(bytes, size, SESSION) ||
        contains(bytes, size, SESSION_ENCODED))
        __atomic_add_fetch(&leaked_secrets, 1, __ATOMIC_RELAXED);
    test_sized_free(p);
}

static void *inspect_realloc(void *p, size_t n)
{
    return test_sized_realloc(p, n, inspect_malloc, inspect_free);
}

static char logged[65536];
static size_t logged_len;
static void capture_log(dsql_log_level level, const char *msg, void *ud)
{
    (void)level, (void)ud;
    size_t n = strlen(msg);
    if (logged_len + n + 1 < sizeof logged) {
        memcpy(logged + logged_len, msg, n);
        logged[logged_len + n] = '\n';
        logged_len += n + 1;
    }
}

START_TEST(test_freed_memory_holds_no_secret)
{
    leaked_secrets = 0;
    dsql_set_allocator(inspect_malloc, inspect_realloc, inspect_free);
    dsql_set_log_handler(capture_log, DSQL_LOG_DEBUG, NULL);

    dsql_credentials src = {"AKIDHYGIENE", SECRET, SESSION, 1700000000 + 100};
    dsql_credentials_provider *cp = dsql_credentials_provider_static(&src, NULL);
    ck_assert_ptr_nonnull(cp);
    dsql_token_provider *tp = dsql_token_provider_signing(cp, NULL, NULL);
    ck_assert_ptr_nonnull(tp);
    char token[2048];
    size_t len;
    dsql_error err;
    dsql_token_request req = {DSQL_STRUCT_VERSION, "a.dsql.us-east-1.on.aws", "admin", NULL, 0, 0};
    /* live clock: the static credentials have expired; the error must not leak */
    ck_assert_int_eq(dsql_token_provider_get(tp, &req, token, sizeof token, &len, &err),
                     DSQL_EEXPIRED);
    ck_assert(!strstr(err.message, SECRET) && !strstr(err.message, SESSION));
    dsql_token_provider_free(tp);

    src.expiration = 0;
    dsql_signer *s = dsql__signer_new(NULL);
    dsql_token_request p = {DSQL_STRUCT_VERSION, "a.dsql.us-east-1.on.aws", NULL, NULL, 0, 0};
    ck_assert_int_eq(dsql__signer_token(s, &p, &src, token, sizeof token, &len, &err), DSQL_OK);
    dsql__signer_free(s);

    dsql_credentials copy;
    ck_assert_int_eq(dsql_credentials_copy(&copy, &src, NULL), DSQL_OK);
    dsql_credentials_clear(&copy);

    dsql_sigv4_pair h[] = {{"Host", "sts.amazonaws.com"}};
    dsql_sigv4_request r = {.version = DSQL_STRUCT_VERSION, .mode = DSQL_SIGV4_QUERY,
                            .method = "GET", .path = "/", .headers = h, .header_count = 1,
                            .region = "us-east-1", .service = "sts", .time = 1700000000,
                            .expires = 60};
    dsql_sigv4_result res;
    ck_assert_int_eq(dsql__sigv4_sign(&r, &src, &res, NULL), DSQL_OK);
    dsql__sigv4_result_clear(&res);
    r.mode = DSQL_SIGV4_HEADER;
    ck_assert_int_eq(dsql__sigv4_sign(&r, &src, &res, NULL), DSQL_OK);
    dsql__sigv4_result_clear(&res);

    dsql_set_allocator(NULL, NULL, NULL);
    dsql_set_log_handler(NULL, DSQL_LOG_ERROR, NULL);
    ck_assert_int_eq(leaked_secrets, 0);
    logged[logged_len] = '\0';
    ck_assert(!strstr(logged, SECRET) && !strstr(logged, SESSION) &&
              !strstr(logged, SESSION_ENCODED) && !strstr(logged, "X-Amz-Signature"));
}
END_TEST

/* A token from dsql_token_provider_get_alloc holds the session token
 * (URI-encoded): neither its buffer nor a too-small first buffer may
 * reach the allocator's free unwiped. */
START_TEST(test_alloc_token_freed_wiped)
{
    leaked_secrets = 0;
    dsql_set_allocator(inspect_malloc, inspect_realloc, inspect_free);
    dsql_credentials src = {"AKIDHYGIENE", SECRET, SESSION, 0};
    /* a session token long enough that the first 4 KiB buffer is too small */
    char session[4500];
    memset(session, 'z', sizeof session - 1);
    session[sizeof session - 1] = '\0';
    memcpy(session, SESSION, strlen(SESSION));
    for (int round = 0; round < 2; round++) {
        src.session_token = round ? session : SESSION;
        dsql_credentials_provider *cp = dsql_credentials_provider_static(&src, NULL);
        dsql_token_provider *tp = dsql_token_provider_signing(cp, NULL, NULL);
        ck_assert_ptr_nonnull(tp);
        dsql_token_request req = {DSQL_STRUCT_VERSION, "a.dsql.us-east-1.on.aws", "admin", NULL,
                                  0, 0};
        char *token = NULL;
        size_t len = 0;
        ck_assert_int_eq(dsql_token_provider_get_alloc(tp, &req, &token, &len, NULL), DSQL_OK);
        ck_assert(strstr(token, SESSION_ENCODED) != NULL);
        ck_assert(round == 0 ? len < 4096 : len > 4096);
        dsql_token_free(token);
        dsql_token_provider_free(tp);
    }
    dsql_set_allocator(NULL, NULL, NULL);
    ck_assert_int_eq(leaked_secrets, 0);
}
END_TEST

/* The inspection itself must be able to fail: a block freed with a
 * secret in it is counted. */
START_TEST(test_inspector_detects_a_secret)
{
    leaked_secrets = 0;
    char *p = inspect_malloc(64);
    strcpy(p, "xx" SECRET);
    inspect_free(p);
    ck_assert_int_eq(leaked_secrets, 1);
}
END_TEST

START_TEST(test_clamp_is_logged_without_secrets)
{
    logged_len = 0;
    dsql_set_log_handler(capture_log, DSQL_LOG_DEBUG, NULL);
    dsql_credentials c = {"AKIDHYGIENE", SECRET, SESSION, 1700000000 + 60};
    dsql_token_request p = {DSQL_STRUCT_VERSION, "a.dsql.us-east-1.on.aws", NULL, NULL, 900, 1700000000};
    char token[2048];
    ck_assert_int_eq(dsql_token_generate(&p, &c, token, sizeof token, NULL, NULL), DSQL_OK);
    dsql_set_log_handler(NULL, DSQL_LOG_ERROR, NULL);
    logged[logged_len] = '\0';
    ck_assert_msg(strstr(logged, "lowered from 900 s to 60 s") != NULL, "log: %s", logged);
    ck_assert(!strstr(logged, SECRET) && !strstr(logged, SESSION));
}
END_TEST

static Suite *hygiene_suite(void)
{
    Suite *s = suite_create("hygiene");
    TCase *tc = tcase_create("hygiene");
    tcase_add_test(tc, test_inspector_detects_a_secret);
    tcase_add_test(tc, test_freed_memory_holds_no_secret);
    tcase_add_test(tc, test_alloc_token_freed_wiped);
    tcase_add_test(tc, test_clamp_is_logged_without_secrets);
    suite_add_tcase(s, tc);
    return s;
}

TEST_MAIN(hygiene_suite)
