/* The caching provider: 8 threads x 100k tokens through
 * dsql_token_provider_signing while the inner credentials expire mid-run
 * (exactly one fetch per expiry, never two at once), the advisory and
 * mandatory windows, failures not cached; tokens signed from borrowed
 * snapshots while other threads refresh (every token verified), and a
 * borrowed snapshot outliving a refresh. Also run under ThreadSanitizer. */
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
                              "admin", NULL, 0, 0};
    char buf[4096];
    for (;;) {
        if (atomic_load(&s->tokens) >= TOTAL_TOKENS && atomic_load(&s->in->fetches) >= 3)
            break;
        size_t len;
        dsql_error err;
        if (dsql_token_provider_get(s->tp, &req, buf, sizeof buf, &len, &err) != DSQL_OK)
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

/* ---- borrowed snapshots under constant refresh ------------------------
 * Credential set n (the n-th fetch) is derived from n alone: key id
 * AKIDHAMMER<n>, a secret and a ~900-byte session token that both name n;
 * only its expiration is recorded. Every token is checked by signing it
 * again with dsql_token_generate from set n (read from the token's key
 * id) at the token's own X-Amz-Date: a token signed from freed, wiped,
 * half-replaced or mixed credentials does not match. */
#define HAMMER_SETS 200000
#define HAMMER_SESSION_LEN 900
#define HAMMER_WORKERS 4
#define HAMMER_HOST "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws"

typedef struct hammer_set {
    char akid[32];
    char secret[48];
    char session[HAMMER_SESSION_LEN + 1];
} hammer_set;

static void hammer_make(hammer_set *h, int n)
{
    snprintf(h->akid, sizeof h->akid, "AKIDHAMMER%08d", n);
    snprintf(h->secret, sizeof h->secret, "hammer/secret+%08d/wJalrXUtnFEMI", n);
    int k = snprintf(h->session, sizeof h->session, "IQoJhammer%08d/", n);
    for (int i = k; i < HAMMER_SESSION_LEN; i++)
        h->session[i] = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+AbC="[(i + n) % 61];
    h->session[HAMMER_SESSION_LEN] = '\0';
}

typedef struct hammer {
    atomic_int fetches;
    int64_t life;
    _Atomic int64_t exp[HAMMER_SETS]; /* expiration of set n */
    dsql_credentials_provider *cp;
    dsql_token_provider *tp;
    atomic_int stop;
    atomic_int tokens, bad_tokens, failures, bad_gets, gets;
    atomic_int min_set, max_set; /* sets seen in tokens */
} hammer;

static dsql_status hammer_get(void *self, dsql_credentials *out, dsql_error *err)
{
    hammer *hm = self;
    int n = atomic_fetch_add(&hm->fetches, 1) + 1;
    if (n >= HAMMER_SETS)
        return dsql__error(err, DSQL_ENETWORK, "hammer: out of credential sets");
    hammer_set h;
    hammer_make(&h, n);
    int64_t exp = dsql__now() + hm->life;
    atomic_store(&hm->exp[n], exp);
    dsql_credentials v = {h.akid, h.secret, h.session, exp};
    return dsql_credentials_copy(out, &v, err);
}

static const dsql_credentials_provider_vtable HAMMER_VT = {DSQL_STRUCT_VERSION, hammer_get, NULL};

/* The set number in a token's X-Amz-Credential, or -1. */
static int hammer_set_of(const char *token, int64_t *when)
{
    char cred[256], date[32];
    if (!test_query_param(token, "X-Amz-Credential", cred, sizeof cred) ||
        !test_query_param(token, "X-Amz-Date", date, sizeof date) || strlen(date) != 16 ||
        strncmp(cred, "AKIDHAMMER", 10) != 0)
        return -1;
    char iso[32];
    snprintf(iso, sizeof iso, "%.4s-%.2s-%.2sT%.2s:%.2s:%.2sZ", date, date + 4, date + 6,
             date + 9, date + 11, date + 13);
    if (!dsql__utc_parse_iso8601(iso, when))
        return -1;
    return atoi(cred + 10);
}

static int hammer_verify(hammer *hm, const char *token)
{
    int64_t when;
    int n = hammer_set_of(token, &when);
    if (n <= 0 || n >= HAMMER_SETS || n > atomic_load(&hm->fetches))
        return 0;
    hammer_set h;
    hammer_make(&h, n);
    dsql_credentials c = {h.akid, h.secret, h.session, atomic_load(&hm->exp[n])};
    dsql_token_request p = {DSQL_STRUCT_VERSION, HAMMER_HOST, "admin", NULL, 0, when};
    char again[4096];
    if (dsql_token_generate(&p, &c, again, sizeof again, NULL, NULL) != DSQL_OK ||
        strcmp(token, again) != 0)
        return 0;
    int prev = atomic_load(&hm->min_set);
    while ((prev == 0 || n < prev) && !atomic_compare_exchange_weak(&hm->min_set, &prev, n))
        ;
    prev = atomic_load(&hm->max_set);
    while (n > prev && !atomic_compare_exchange_weak(&hm->max_set, &prev, n))
        ;
    return 1;
}

static void *hammer_worker(void *arg)
{
    hammer *hm = arg;
    dsql_token_request req = {DSQL_STRUCT_VERSION, HAMMER_HOST, "admin", NULL, 0, 0};
    char buf[4096];
    while (!atomic_load(&hm->stop)) {
        size_t len;
        dsql_error err;
        if (dsql_token_provider_get(hm->tp, &req, buf, sizeof buf, &len, &err) != DSQL_OK)
            atomic_fetch_add(&hm->failures, 1);
        else if (len != strlen(buf) || !hammer_verify(hm, buf))
            atomic_fetch_add(&hm->bad_tokens, 1);
        atomic_fetch_add(&hm->tokens, 1);
    }
    return NULL;
}

/* Refreshes through get() (the copying path) as fast as it can, and checks
 * that each copy is one whole set. */
static void *hammer_refresher(void *arg)
{
    hammer *hm = arg;
    while (!atomic_load(&hm->stop)) {
        dsql_credentials c;
        dsql_error err;
        if (dsql_credentials_provider_get(hm->cp, &c, &err) != DSQL_OK) {
            atomic_fetch_add(&hm->bad_gets, 1);
            continue;
        }
        hammer_set h;
        int n = strncmp(c.access_key_id, "AKIDHAMMER", 10) == 0 ? atoi(c.access_key_id + 10) : 0;
        if (n <= 0 || n >= HAMMER_SETS)
            n = 0;
        hammer_make(&h, n);
        if (n == 0 || strcmp(c.access_key_id, h.akid) || strcmp(c.secret_access_key, h.secret) ||
            !c.session_token || strcmp(c.session_token, h.session) ||
            c.expiration != atomic_load(&hm->exp[n]))
            atomic_fetch_add(&hm->bad_gets, 1);
        atomic_fetch_add(&hm->gets, 1);
        dsql_credentials_clear(&c);
    }
    return NULL;
}

START_TEST(test_borrowed_snapshots_under_refresh)
{
    /* {life, advisory, mandatory}: always in the advisory window (each
     * call refreshes unless a refresh runs; the others sign from the old
     * snapshot meanwhile), then always in the mandatory window (callers
     * wait for a refresh and sign from the snapshot it published) */
    static const int64_t phases[2][3] = {{1000, 1001, 0}, {30, 30, 30}};
    for (int ph = 0; ph < 2; ph++) {
        hammer *hm = calloc(1, sizeof *hm);
        ck_assert_ptr_nonnull(hm);
        hm->life = phases[ph][0];
        dsql_error err = {0};
        hm->cp = dsql_credentials_provider_cached(
            dsql_credentials_provider_new(&HAMMER_VT, hm, &err), &err);
        ck_assert_ptr_nonnull(hm->cp);
        dsql__cached_set_windows(hm->cp, phases[ph][1], phases[ph][2]);
        hm->tp = dsql_token_provider_signing(hm->cp, NULL, &err);
        ck_assert_ptr_nonnull(hm->tp);
        pthread_t th[HAMMER_WORKERS + 1];
        for (int i = 0; i < HAMMER_WORKERS; i++)
            ck_assert_int_eq(pthread_create(&th[i], NULL, hammer_worker, hm), 0);
        ck_assert_int_eq(pthread_create(&th[HAMMER_WORKERS], NULL, hammer_refresher, hm), 0);
        /* until enough tokens and refreshes, at most ~20 s */
        for (int waited = 0; waited < 2000; waited++) {
            if (atomic_load(&hm->tokens) >= 20000 && atomic_load(&hm->fetches) >= 500 &&
                atomic_load(&hm->gets) >= 200)
                break;
            struct timespec ts = {0, 10 * 1000000L};
            nanosleep(&ts, NULL);
        }
        atomic_store(&hm->stop, 1);
        for (int i = 0; i <= HAMMER_WORKERS; i++)
            pthread_join(th[i], NULL);
        int tokens = atomic_load(&hm->tokens), fetches = atomic_load(&hm->fetches);
        ck_assert_msg(atomic_load(&hm->bad_tokens) == 0, "phase %d: %d of %d tokens do not verify",
                      ph, atomic_load(&hm->bad_tokens), tokens);
        ck_assert_int_eq(atomic_load(&hm->failures), 0);
        ck_assert_int_eq(atomic_load(&hm->bad_gets), 0);
        ck_assert_msg(fetches >= 50, "phase %d: only %d refreshes", ph, fetches);
        ck_assert_int_ge(tokens, 1000);
        /* tokens came from many snapshots, not one */
        ck_assert_int_gt(atomic_load(&hm->max_set) - atomic_load(&hm->min_set), 10);
        dsql_token_provider_free(hm->tp);
        free(hm);
    }
}
END_TEST

/* A borrowed snapshot stays whole across a refresh and is wiped and freed
 * when it is returned (not before); the cache's get() meanwhile already
 * returns the new credentials. */
#define SNAP_SECRET "SnApShOtSeCrEt/MARKER"
static atomic_int snap_secret_frees;
static atomic_int snap_dirty_frees;

static void *snap_malloc(size_t n)
{
    void *p = test_sized_malloc(n);
    if (p)
        memset(p, 0xa5, n); /* never all zeros unless wiped */
    return p;
}

static void snap_free(void *p)
{
    if (!p)
        return;
    size_t size = test_sized_size(p);
    const char *bytes = p;
    size_t k = strlen(SNAP_SECRET);
    for (size_t i = 0; i + k <= size; i++)
        if (memcmp(bytes + i, SNAP_SECRET, k) == 0)
            atomic_fetch_add(&snap_dirty_frees, 1);
    /* a wiped secret ("SnApShOt...MARKER<n>"): a block of its size, all zeros */
    int zero = size == sizeof SNAP_SECRET + 1;
    for (size_t i = 0; zero && i < size; i++)
        zero = bytes[i] == 0;
    if (zero)
        atomic_fetch_add(&snap_secret_frees, 1);
    test_sized_free(p);
}

static void *snap_realloc(void *p, size_t n)
{
    return test_sized_realloc(p, n, snap_malloc, snap_free);
}

static int snap_fetches;
static dsql_status snap_get(void *self, dsql_credentials *out, dsql_error *err)
{
    (void)self;
    char akid[32], secret[64];
    snprintf(akid, sizeof akid, "AKIDSNAP%d", ++snap_fetches);
    snprintf(secret, sizeof secret, "%s%d", SNAP_SECRET, snap_fetches);
    dsql_credentials v = {akid, secret, NULL, dsql__now() + 1000};
    return dsql_credentials_copy(out, &v, err);
}

static const dsql_credentials_provider_vtable SNAP_VT = {DSQL_STRUCT_VERSION, snap_get, NULL};

START_TEST(test_borrow_outlives_refresh)
{
    atomic_store(&snap_secret_frees, 0);
    atomic_store(&snap_dirty_frees, 0);
    snap_fetches = 0;
    dsql_set_allocator(snap_malloc, snap_realloc, snap_free);
    dsql_error err = {0};
    dsql_credentials_provider *cp =
        dsql_credentials_provider_cached(dsql_credentials_provider_new(&SNAP_VT, NULL, &err), &err);
    ck_assert_ptr_nonnull(cp);
    ck_assert(dsql__is_cached(cp));
    dsql__creds_snapshot *snap;
    const dsql_credentials *c;
    ck_assert_int_eq(dsql__cached_borrow(cp, &snap, &c, &err), DSQL_OK);
    ck_assert_str_eq(c->access_key_id, "AKIDSNAP1");
    /* the advisory window now covers everything: the next get() refreshes */
    dsql__cached_set_windows(cp, 2000, 0);
    char akid[32];
    ck_assert_int_eq(get1(cp, akid), DSQL_OK);
    ck_assert_str_eq(akid, "AKIDSNAP2");
    int wiped_before = atomic_load(&snap_secret_frees);
    ck_assert_int_eq(wiped_before, 1); /* get1's copy; the borrowed set lives on */
    /* the borrowed set is intact after the refresh replaced it */
    ck_assert_str_eq(c->access_key_id, "AKIDSNAP1");
    ck_assert_str_eq(c->secret_access_key, SNAP_SECRET "1");
    dsql__cached_return(snap);
    /* returning the last reference wiped and freed its secret */
    int wiped_after = atomic_load(&snap_secret_frees);
    ck_assert_int_gt(wiped_after, wiped_before);
    /* a borrow now lends the new set */
    ck_assert_int_eq(dsql__cached_borrow(cp, &snap, &c, &err), DSQL_OK);
    ck_assert_str_eq(c->access_key_id, "AKIDSNAP3"); /* still advisory: refreshed again */
    dsql__cached_return(snap);
    dsql__cached_return(NULL);
    /* not a caching provider */
    dsql_credentials sc = {"AKID", "SECRET", NULL, 0};
    dsql_credentials_provider *st = dsql_credentials_provider_static(&sc, &err);
    ck_assert(!dsql__is_cached(st));
    ck_assert_int_eq(dsql__cached_borrow(st, &snap, &c, &err), DSQL_EINVAL);
    ck_assert_ptr_null(snap);
    ck_assert_ptr_null(c);
    dsql_credentials_provider_free(st);
    dsql_credentials_provider_free(cp);
    dsql_set_allocator(NULL, NULL, NULL);
    int dirty = atomic_load(&snap_dirty_frees);
    ck_assert_int_eq(dirty, 0);
}
END_TEST

/* Fail the n-th allocation for every n until a borrow succeeds: each
 * failure is DSQL_ENOMEM (or no provider at all) and nothing leaks. */
START_TEST(test_borrow_allocation_failures)
{
    dsql_status st = DSQL_ENOMEM;
    long n;
    test_use_failing_allocator();
    for (n = 1; st != DSQL_OK && n < 1000; n++) {
        test_alloc_fail_nth(n);
        snap_fetches = 0;
        dsql_error err;
        dsql_credentials_provider *cp = dsql_credentials_provider_cached(
            dsql_credentials_provider_new(&SNAP_VT, NULL, &err), &err);
        if (!cp) {
            ck_assert_int_eq(test_alloc_live(), 0);
            continue;
        }
        dsql__creds_snapshot *snap;
        const dsql_credentials *c;
        st = dsql__cached_borrow(cp, &snap, &c, &err);
        if (st == DSQL_OK) {
            ck_assert_str_eq(c->access_key_id, "AKIDSNAP1");
            dsql__cached_return(snap);
        } else {
            ck_assert_int_eq(st, DSQL_ENOMEM);
            ck_assert_ptr_null(snap);
        }
        dsql_credentials_provider_free(cp);
        ck_assert_msg(test_alloc_live() == 0, "leak after failing allocation %ld", n);
    }
    dsql_set_allocator(NULL, NULL, NULL);
    ck_assert_int_eq(st, DSQL_OK);
    /* failed in turn: the two provider handles, the cache, the key id and
     * secret copies, and the snapshot */
    ck_assert_int_eq(n, 8);
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
    tcase_add_test(tc, test_borrowed_snapshots_under_refresh);
    tcase_add_test(tc, test_borrow_outlives_refresh);
    tcase_add_test(tc, test_borrow_allocation_failures);
    suite_add_tcase(s, tc);
    return s;
}

TEST_MAIN(cache_suite)
