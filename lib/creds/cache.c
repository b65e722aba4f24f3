/* A caching credentials provider: refresh ahead of expiry, single-flight.
 *
 *   expiry - advisory   : one caller refreshes, the others keep using the
 *                         cached value; a failed refresh keeps it (warning)
 *   expiry - mandatory  : callers wait for the one refresh; failure returned
 *
 * Only one inner get() runs at a time; callers that waited for a fetch
 * that failed get its error (no second fetch for the same wait), the next
 * call tries again: failures are never cached.
 *
 * The cached value is an immutable, reference-counted snapshot. The cache
 * holds one reference to its current snapshot; a caller takes another under
 * the mutex and drops it when done, so a refresh publishes a new snapshot
 * without waiting for anyone, and the old one is wiped and freed by
 * whoever drops its last reference. get() copies out of a snapshot; the
 * signing token provider borrows it (dsql__cached_borrow) and signs from
 * it directly, with no copy. A snapshot also keeps its session token
 * percent-encoded, as it goes into every token: STS tokens are about 1 KB,
 * and encoding one cost more than the rest of a cached token. */
#include "cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <openssl/crypto.h>

struct dsql__creds_snapshot {
    atomic_uint refs;
    dsql_credentials creds; /* never written after publication */
    size_t session_len;     /* strlen(creds.session_token); 0: none */
    size_t session_enc_len; /* 0: no session token */
    char session_enc[];     /* creds.session_token percent-encoded, NUL-ended */
};

typedef struct cache {
    dsql_credentials_provider *inner;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    dsql__creds_snapshot *cur; /* NULL until the first successful fetch */
    int fetching;
    uint64_t gen;     /* completed fetches */
    uint64_t started; /* started fetches */
    dsql_status last_st;
    dsql_error last_err;
    int64_t advisory, mandatory;
} cache;

static const dsql_credentials_provider_vtable CACHE_VTABLE;

static void copy_error(dsql_error *dst, const dsql_error *src)
{
    if (dst)
        *dst = *src;
}

/* Another reference to a published snapshot; the caller holds c->mu (so
 * the cache's own reference keeps it alive meanwhile). */
static dsql__creds_snapshot *snapshot_ref(dsql__creds_snapshot *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

/* Drops a reference; the last one wipes the secrets and frees. */
static void snapshot_unref(dsql__creds_snapshot *s)
{
    if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1) {
        dsql_credentials_clear(&s->creds);
        OPENSSL_cleanse(s->session_enc, s->session_enc_len);
        dsql__free(s);
    }
}

/* A snapshot holding fresh (moved in) and its encoded session token, in
 * one block; NULL when out of memory (fresh untouched). */
static dsql__creds_snapshot *snapshot_new(dsql_credentials *fresh)
{
    const char *tok = fresh->session_token;
    size_t n = tok ? strlen(tok) : 0;
    size_t enc_len = dsql__uri_encoded_len(tok, n, 0);
    dsql__creds_snapshot *snap = dsql__malloc(sizeof *snap + enc_len + 1);
    if (!snap)
        return NULL;
    snap->creds = *fresh;
    snap->session_len = n;
    snap->session_enc_len = dsql__uri_encode(snap->session_enc, tok, n, 0);
    snap->session_enc[snap->session_enc_len] = '\0';
    return snap;
}

/* The current credentials as a counted reference in *out, fetching them
 * first when there are none or they are due (see the top of the file). */
static dsql_status cache_acquire(cache *c, dsql__creds_snapshot **out, dsql_error *err)
{
    dsql_status st;
    int advisory_fetch = 0;
    *out = NULL;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        int64_t now = dsql__now();
        if (c->cur) {
            int64_t exp = c->cur->creds.expiration;
            if (exp == 0 || now < exp - c->advisory) {
                *out = snapshot_ref(c->cur);
                pthread_mutex_unlock(&c->mu);
                return DSQL_OK;
            }
            if (now < exp - c->mandatory) {
                if (c->fetching) { /* someone refreshes; the value is still good */
                    *out = snapshot_ref(c->cur);
                    pthread_mutex_unlock(&c->mu);
                    return DSQL_OK;
                }
                advisory_fetch = 1;
                break;
            }
        }
        if (!c->fetching)
            break;
        uint64_t g = c->gen;
        while (c->fetching && c->gen == g)
            pthread_cond_wait(&c->cv, &c->mu);
        if (c->gen != g && c->last_st != DSQL_OK) {
            st = c->last_st;
            copy_error(err, &c->last_err);
            pthread_mutex_unlock(&c->mu);
            return st;
        }
    }
    c->fetching = 1;
    c->started++;
    pthread_mutex_unlock(&c->mu);

    dsql_credentials fresh;
    dsql_error e;
    memset(&e, 0, sizeof e);
    dsql__creds_snapshot *snap = NULL;
    st = dsql_credentials_provider_get(c->inner, &fresh, &e);
    int64_t now = dsql__now();
    if (st == DSQL_OK && fresh.expiration != 0 && fresh.expiration <= now) {
        dsql_credentials_clear(&fresh);
        st = dsql__error(&e, DSQL_EEXPIRED,
                         "cached provider: the provider returned credentials that have "
                         "already expired");
    }
    if (st == DSQL_OK) {
        if ((snap = snapshot_new(&fresh)) != NULL) {
            atomic_init(&snap->refs, 2); /* the cache's and the caller's */
        } else {
            dsql_credentials_clear(&fresh);
            st = dsql__error(&e, DSQL_ENOMEM, "cached provider: out of memory");
        }
    }

    dsql__creds_snapshot *old = NULL;
    pthread_mutex_lock(&c->mu);
    c->fetching = 0;
    c->gen++;
    c->last_st = st;
    c->last_err = e;
    if (st == DSQL_OK) {
        old = c->cur;
        c->cur = snap;
        *out = snap;
        if (snap->creds.expiration)
            dsql__log(DSQL_LOG_DEBUG, "cached provider: new credentials valid for %lld s",
                      (long long)(snap->creds.expiration - now));
    } else if (advisory_fetch && c->cur && now < c->cur->creds.expiration) {
        dsql__log(DSQL_LOG_WARN,
                  "cached provider: refresh failed (%s); using the cached credentials, "
                  "which expire in %lld s",
                  e.message, (long long)(c->cur->creds.expiration - now));
        c->last_st = DSQL_OK; /* nobody waits on an advisory refresh */
        *out = snapshot_ref(c->cur);
        st = DSQL_OK;
    } else {
        copy_error(err, &e);
    }
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    snapshot_unref(old); /* freed here unless someone still signs with it */
    return st;
}

static dsql_status cache_get(void *self, dsql_credentials *out, dsql_error *err)
{
    dsql__creds_snapshot *snap;
    dsql_status st = cache_acquire(self, &snap, err);
    if (st != DSQL_OK)
        return st;
    st = dsql_credentials_copy(out, &snap->creds, err);
    snapshot_unref(snap);
    return st;
}

static void cache_destroy(void *self)
{
    cache *c = self;
    dsql_credentials_provider_free(c->inner);
    snapshot_unref(c->cur);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    dsql__free(c);
}

static const dsql_credentials_provider_vtable CACHE_VTABLE = {DSQL_STRUCT_VERSION, cache_get,
                                                              cache_destroy};

dsql_credentials_provider *dsql_credentials_provider_cached(dsql_credentials_provider *inner,
                                                            dsql_error *err)
{
    if (!inner) {
        dsql__error(err, DSQL_EINVAL, "cached provider: inner provider is NULL");
        return NULL;
    }
    cache *c = dsql__calloc(1, sizeof *c);
    if (!c) {
        dsql_credentials_provider_free(inner);
        dsql__error(err, DSQL_ENOMEM, "out of memory creating a cached provider");
        return NULL;
    }
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        dsql__free(c);
        dsql_credentials_provider_free(inner);
        dsql__error(err, DSQL_ENOMEM, "cached provider: cannot create a mutex");
        return NULL;
    }
    if (pthread_cond_init(&c->cv, NULL) != 0) {
        pthread_mutex_destroy(&c->mu);
        dsql__free(c);
        dsql_credentials_provider_free(inner);
        dsql__error(err, DSQL_ENOMEM, "cached provider: cannot create a condition variable");
        return NULL;
    }
    c->inner = inner;
    c->advisory = DSQL__CACHE_ADVISORY_S;
    c->mandatory = DSQL__CACHE_MANDATORY_S;
    dsql_credentials_provider *p = dsql_credentials_provider_new(&CACHE_VTABLE, c, err);
    if (!p)
        cache_destroy(c);
    return p;
}

void dsql__cached_set_windows(dsql_credentials_provider *p, int64_t advisory_s,
                              int64_t mandatory_s)
{
    if (!p || p->vtable != &CACHE_VTABLE)
        return;
    cache *c = p->self;
    c->advisory = advisory_s;
    c->mandatory = mandatory_s;
}

uint64_t dsql__cached_fetches(dsql_credentials_provider *p)
{
    if (!p || p->vtable != &CACHE_VTABLE)
        return 0;
    cache *c = p->self;
    pthread_mutex_lock(&c->mu);
    uint64_t n = c->started;
    pthread_mutex_unlock(&c->mu);
    return n;
}

dsql_status dsql__cached_borrow(dsql_credentials_provider *p, dsql__creds_snapshot **snap,
                                const dsql_credentials **creds, dsql_error *err)
{
    *snap = NULL;
    *creds = NULL;
    if (!p || p->vtable != &CACHE_VTABLE)
        return dsql__error(err, DSQL_EINVAL, "cached provider: not a caching provider");
    dsql_status st = cache_acquire(p->self, snap, err);
    if (st == DSQL_OK)
        *creds = &(*snap)->creds;
    return st;
}

void dsql__snapshot_session(const dsql__creds_snapshot *snap, dsql__session_known *known)
{
    known->enc = snap->session_enc_len ? snap->session_enc : NULL;
    known->enc_len = snap->session_enc_len;
    known->len = snap->session_len;
}

void dsql__cached_return(dsql__creds_snapshot *snap)
{
    snapshot_unref(snap);
}

int dsql__is_cached(const dsql_credentials_provider *p)
{
    return p && p->vtable == &CACHE_VTABLE;
}
