/* The caching provider: 8 threads x 100k tokens through
 * dsql_token_provider_signing while the inner credentials expire mid-run
 * (exactly one fetch per expiry, never two at once), the advisory and
 * mandatory windows, failures not cached. Also run under ThreadSanitizer. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "testutil.h"
#include "internal.h"
#include "creds/cache.h"

typedef struct inner {
    atomic_int in_flight;
    atomic_int max_in_flight;
    atomic_int fetches;
    atomic_int fail;          /* 1: fail with DSQL_ENETWORK */
    int64_t life;             /* seconds; 0: no expiration */
    int sleep_ms;
    pthread_mutex_t mu;       /* guards the fields below */
    int64_t last_exp;
    int64_t advisory;
    int undue_fetches;        /* fetches while the previous creds were not due */
    int64_t first_fetch, last_fetch;
} inner;

static dsql_status inner_get(void *self, dsql_credentials *out, dsql_error *err)
{
    inner *in = self;
    int now_in = atomic_fetch_add(&in->in_flight, 1) + 1;
    int prev = atomic_load(&in->max_in_flight);
    while (now_in > prev && !atomic_compare_exchange_weak(&in->max_in_flight, &prev, now_in))
        ;
    if (in->sleep_ms) {
        struct timespec ts = {0, in->sleep_ms * 1000000L};
        nanosleep(&ts, NULL);
    }
    int n = atomic_fetch_add(&in->fetches, 1) + 1;
    dsql_status st;
    int64_t now = dsql__now();
    if (atomic_load(&in->fail)) {
        st = dsql__error(err, DSQL_ENETWORK, "inner: fetch %d failed", n);
    } else {
        pthread_mutex_lock(&in->mu);
        if (in->last_exp && now < in->last_exp - in->advisory)
            in->undue_fetches++;
        if (!in->first_fetch)
            in->first_fetch = now;
        in->last_fetch = now;
        char akid[32];
        snprintf(akid, sizeof akid, "AKIDGEN%06d", n);
        dsql_credentials v = {akid, "secret", "token", in->life ? now + in->life : 0};
        in->last_exp = v.expiration;
        pthread_mutex_unlock(&in->mu);
        st = dsql_credentials_copy(out, &v, err);
    }
    atomic_fetch_sub(&in->in_flight, 1);
    return st;
}

static const dsql_credentials_provider_vtable INNER_VT = {DSQL_STRUCT_VERSION, inner_get, NULL};

static void inner_init(inner *in, int64_t life, int64_t advisory, int sleep_ms)
{
    memset(in, 0, sizeof *in);
    pthread_mutex_init(&in->mu, NULL);
    in->life = life;
    in->advisory = advisory;
    in->sleep_ms = sleep_ms;
}

#define TOTAL_TOKENS 100000
#define THREADS 8

typedef struct shared {
    dsql_token_provider *tp;
    inner *in;
    atomic_int tokens;
    atomic_int failures;
} shared;

static void *worker(void *arg)
{
    shared *s = arg;
    dsql_token_request req = {DSQL_STRUCT_VERSION, "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws",
                              "admin", NULL, 0};
    char buf[4096];
    for (;;) {
        if (atomic_load(&s->tokens) >= TOTAL_TOKENS && atomic_load(&s->in->fetches) >= 3)
            break;
        size_t len;
        dsql_error err;
        if (dsql_token_provider_token(s->tp, &req, buf, sizeof buf, &len, &err) != DSQL_OK)
            atomic_fetch_add(&s->failures, 1);
        atomic_fetch_add(&s->tokens, 1);
    }
    return NULL;
}

START_TEST(test_threads_one_fetch_per_expiry)
{
    inner in;
    /* credentials live 3 s; refresh 2 s before expiry (so about every
     * second), must-refresh 1 s before */
    inner_init(&in, 3, 2, 20);
    dsql_error err = {0};
    dsql_credentials_provider *cp =
        dsql_credentials_provider_cached(dsql_credentials_provider_new(&INNER_VT, &in, &err), &err);
    ck_assert_ptr_nonnull(cp);
    dsql__cached_set_windows(cp, 2, 1);
    shared s = {dsql_token_provider_signing(cp, NULL, &err), &in, 0, 0};
    ck_assert_ptr_nonnull(s.tp);
    int64_t t0 = dsql__now();
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, worker, &s), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    int64_t elapsed = dsql__now() - t0;
    int fetches = atomic_load(&in.fetches);
    ck_assert_int_eq(atomic_load(&s.failures), 0);
    ck_assert_int_ge(atomic_load(&s.tokens), TOTAL_TOKENS);
    ck_assert_int_ge(fetches, 3);                         /* expired mid-run */
    ck_assert_int_eq(atomic_load(&in.max_in_flight), 1);  /* single flight */
    ck_assert_int_eq(in.undue_fetches, 0);                /* only when due */
    /* one fetch per expiry: at most one per second of run time, plus the first */
    ck_assert_msg(fetches <= elapsed + 2, "%d fetches in %lld s", fetches, (long long)elapsed);
    dsql_token_provider_free(s.tp);
    pthread_mutex_destroy(&in.mu);
}
END_TEST

static dsql_status get1(dsql_credentials_provider *p, char *akid_out)
{
    dsql_credentials c;
    dsql_error err = {0};
    dsql_status st = dsql_credentials_provider_get(p, &c, &err);
    if (st == DSQL_OK) {
        strcpy(akid_out, c.access_key_id);
        dsql_credentials_clear(&c);
    }
    return st;
}

START_TEST(test_windows_and_failures)
{
    inner in;
    inner_init(&in, 100, 0, 0);
    dsql_error err = {0};
    dsql_credentials_provider *cp =
        dsql_credentials_provider_cached(dsql_credentials_provider_new(&INNER_VT, &in, &err), &err);
    char akid[32];
    /* fresh: cached */
    dsql__cached_set_windows(cp, 50, 10);
    ck_assert_int_eq(get1(cp, akid), DSQL_OK);
    ck_assert_str_eq(akid, "AKIDGEN000001");
    ck_assert_int_eq(get1(cp, akid), DSQL_OK);
    ck_assert_int_eq(atomic_load(&in.fetches), 1);
    ck_assert_uint_eq(dsql__cached_fetches(cp), 1);
    /* advisory window: refresh fails, the cached value is used, and the
     * failure is not cached (the next call tries again) */
    dsql__cached_set_windows(cp, 200, 10);
    atomic_store(&in.fail, 1);
    ck_assert_int_eq(get1(cp, akid), DSQL_OK);
    ck_assert_str_eq(akid, "AKIDGEN000001");
    ck_assert_int_eq(get1(cp, akid), DSQL_OK);
    ck_assert_int_eq(atomic_load(&in.fetches), 3);
    /* mandatory window: the failure is returned */
    dsql__cached_set_windows(cp, 200, 150);
    dsql_credentials c;
    ck_assert_int_eq(dsql_credentials_provider_get(cp, &c, &err), DSQL_ENETWORK);
    ck_assert_str_eq(err.message, "inner: fetch 4 failed");
    /* recovery */
    atomic_store(&in.fail, 0);
    ck_assert_int_eq(get1(cp, akid), DSQL_OK);
    ck_assert_str_eq(akid, "AKIDGEN000005");
    /* advisory refresh succeeds: new value */
    dsql__cached_set_windows(cp, 200, 10);
    ck_assert_int_eq(get1(cp, akid), DSQL_OK);
    ck_assert_str_eq(akid, "AKIDGEN000006");
    dsql_credentials_provider_free(cp);

    /* credentials without expiration are fetched once */
    inner_init(&in, 0, 0, 0);
    cp = dsql_credentials_provider_cached(dsql_credentials_provider_new(&INNER_VT, &in, &err),
                                          &err);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(get1(cp, akid), DSQL_OK);
    ck_assert_int_eq(atomic_load(&in.fetches), 1);
    dsql_credentials_provider_free(cp);

    /* already-expired credentials are an error, not cached */
    inner_init(&in, -5, 0, 0);
    cp = dsql_credentials_provider_cached(dsql_credentials_provider_new(&INNER_VT, &in, &err),
                                          &err);
    ck_assert_int_eq(dsql_credentials_provider_get(cp, &c, &err), DSQL_EEXPIRED);
    ck_assert_int_eq(dsql_credentials_provider_get(cp, &c, &err), DSQL_EEXPIRED);
    ck_assert_int_eq(atomic_load(&in.fetches), 2);
    dsql_credentials_provider_free(cp);

    ck_assert_ptr_null(dsql_credentials_provider_cached(NULL, &err));
    ck_assert_int_eq(err.status, DSQL_EINVAL);
}
END_TEST

/* Waiters share the outcome of the one fetch: with no cached value, 8
 * threads calling at once cause exactly one fetch, and when it fails all of
 * them get its error. */
typedef struct burst {
    dsql_credentials_provider *cp;
    atomic_int ok, failed;
} burst;

static void *burst_worker(void *arg)
{
    burst *b = arg;
    dsql_credentials c;
    dsql_error err;
    if (dsql_credentials_provider_get(b->cp, &c, &err) == DSQL_OK) {
        atomic_fetch_add(&b->ok, 1);
        dsql_credentials_clear(&c);
    } else {
        atomic_fetch_add(&b->failed, 1);
    }
    return NULL;
}

START_TEST(test_single_flight_burst)
{
    for (int fail = 0; fail < 2; fail++) {
        inner in;
        inner_init(&in, 1000, 0, 200);
        atomic_store(&in.fail, fail);
        dsql_error err = {0};
        burst b = {dsql_credentials_provider_cached(
                       dsql_credentials_provider_new(&INNER_VT, &in, &err), &err),
                   0, 0};
        pthread_t th[THREADS];
        for (int i = 0; i < THREADS; i++)
            pthread_create(&th[i], NULL, burst_worker, &b);
        for (int i = 0; i < THREADS; i++)
            pthread_join(th[i], NULL);
        ck_assert_int_eq(atomic_load(&in.max_in_flight), 1);
        if (!fail) {
            ck_assert_int_eq(atomic_load(&in.fetches), 1);
            ck_assert_int_eq(atomic_load(&b.ok), THREADS);
        } else {
            ck_assert_int_eq(atomic_load(&b.failed), THREADS);
            /* threads that arrived during the fetch shared its failure */
            ck_assert_int_lt(atomic_load(&in.fetches), THREADS);
        }
        dsql_credentials_provider_free(b.cp);
        pthread_mutex_destroy(&in.mu);
    }
}
END_TEST

static Suite *cache_suite(void)
{
    Suite *s = suite_create("creds_cache");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_threads_one_fetch_per_expiry);
    tcase_add_test(tc, test_windows_and_failures);
    tcase_add_test(tc, test_single_flight_burst);
    suite_add_tcase(s, tc);
    return s;
}

TEST_MAIN(cache_suite)
