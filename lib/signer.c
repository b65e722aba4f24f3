/* The caching signer: derived SigV4 keys are kept per (secret, date,
 * region), one cache slot per stripe, and so is the percent-encoded form of
 * the last session token signed (a 1 KB STS token costs more to encode
 * than to compare), and the last few hostnames with what a token takes
 * from each (checked once, lowercased once). Threads are spread round-robin over the stripes, so
 * each usually has a lock of its own and the hot path never waits on
 * another thread. */
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <openssl/crypto.h>

#define STRIPES 16
#define CACHED_SECRET_MAX 128
#define CACHED_SESSION_MAX 8192 /* STS, SSO, IMDS and ECS tokens are 0.4-3 KB */

typedef struct stripe {
    pthread_mutex_t lock;
    int valid;
    size_t secret_len;
    char secret[CACHED_SECRET_MAX];
    char date[9];
    char region[DSQL_REGION_MAX + 1];
    size_t region_len;
    dsql__hmac_key key;
    /* one per action (DbConnect, DbConnectAdmin): a process that connects
     * as admin and as an application user keeps both warm */
    int prefix_valid[2];
    dsql__token_prefix prefix[2];
    /* the last session token and its encoding, one heap block: session_len
     * raw bytes, then session_enc_len encoded ones; wiped when replaced */
    char *session;
    size_t session_len, session_enc_len, session_cap;
    /* the last few hostnames signed for, checked once each */
    dsql__host_memo hosts;
} __attribute__((aligned(64))) stripe;

struct dsql_signer {
    stripe stripes[STRIPES];
};

static unsigned this_thread_stripe(void)
{
    static atomic_uint next;
    static _Thread_local unsigned id; /* 0 = not assigned yet */
    if (id == 0)
        id = atomic_fetch_add_explicit(&next, 1, memory_order_relaxed) % STRIPES + 1;
    return id - 1;
}

dsql_signer *dsql__signer_new(dsql_error *err)
{
    /* aligned storage: the allocator seam gives malloc alignment only, so
     * over-allocate and keep the raw pointer just before the struct */
    unsigned char *raw = dsql__malloc(sizeof(dsql_signer) + 64 + sizeof(void *));
    if (!raw) {
        dsql__error(err, DSQL_ENOMEM, "out of memory creating a signer");
        return NULL;
    }
    uintptr_t at = ((uintptr_t)raw + sizeof(void *) + 63) & ~(uintptr_t)63;
    dsql_signer *s = (dsql_signer *)at;
    ((void **)at)[-1] = raw;
    memset(s, 0, sizeof *s);
    for (int i = 0; i < STRIPES; i++) {
        if (pthread_mutex_init(&s->stripes[i].lock, NULL) != 0) {
            while (i-- > 0)
                pthread_mutex_destroy(&s->stripes[i].lock);
            dsql__free(raw);
            dsql__error(err, DSQL_EINTERNAL, "pthread_mutex_init failed");
            return NULL;
        }
    }
    return s;
}

void dsql__signer_free(dsql_signer *s)
{
    if (!s)
        return;
    for (int i = 0; i < STRIPES; i++) {
        stripe *st = &s->stripes[i];
        pthread_mutex_destroy(&st->lock);
        if (st->session) {
            OPENSSL_cleanse(st->session, st->session_cap);
            dsql__free(st->session);
        }
    }
    void *raw = ((void **)s)[-1];
    OPENSSL_cleanse(s, sizeof *s);
    dsql__free(raw);
}

static int stripe_matches(const stripe *st, const char *secret, size_t secret_len,
                          const dsql__token_input *in)
{
    return st->valid && st->secret_len == secret_len &&
           memcmp(st->date, in->date, 8) == 0 && st->region_len == in->region_len &&
           memcmp(st->region, in->region, in->region_len) == 0 &&
           dsql__ct_equal(st->secret, secret, secret_len);
}

/* The encoding of session token tok (n bytes) from the stripe's cache;
 * encodes and keeps it when it is not the cached one. NULL when it is too
 * long to keep or no memory: the token then encodes it in place. */
static const char *stripe_session_enc(stripe *st, const char *tok, size_t n, size_t *enc_len)
{
    if (st->session && st->session_len == n && dsql__ct_equal(st->session, tok, n)) {
        *enc_len = st->session_enc_len;
        return st->session + n;
    }
    if (n > CACHED_SESSION_MAX)
        return NULL;
    size_t need = 4 * n; /* raw + encoded at its worst */
    if (st->session)
        OPENSSL_cleanse(st->session, st->session_cap);
    if (st->session_cap < need) {
        char *bigger = dsql__malloc(need);
        dsql__free(st->session);
        st->session = bigger;
        st->session_cap = bigger ? need : 0;
        if (!bigger)
            return NULL;
    }
    memcpy(st->session, tok, n);
    st->session_len = n;
    st->session_enc_len = dsql__uri_encode(st->session + n, tok, n, 0);
    *enc_len = st->session_enc_len;
    return st->session + n;
}

/* Signs in (validated) with the stripe's cached key and prefix, keeping
 * them when they are not the ones in; the caller holds st->lock. */
static size_t stripe_sign(stripe *st, dsql__token_input *in, const dsql_credentials *creds,
                          char *buf)
{
    const char *secret = creds->secret_access_key;
    size_t secret_len = in->secret_len;
    if (secret_len > CACHED_SECRET_MAX) /* unusual: sign without caching */
        return dsql__token_sign_uncached(in, creds, buf);
    if (!stripe_matches(st, secret, secret_len, in)) {
        dsql__sigv4_derive_key(&st->key, secret, in->date, in->region, "dsql");
        OPENSSL_cleanse(st->secret, sizeof st->secret);
        memcpy(st->secret, secret, secret_len);
        st->secret_len = secret_len;
        memcpy(st->date, in->date, 9);
        memcpy(st->region, in->region, in->region_len + 1);
        st->region_len = in->region_len;
        st->valid = 1;
        st->prefix_valid[0] = st->prefix_valid[1] = 0;
    }
    int a = in->action[strlen("DbConnect")] != '\0'; /* 1: DbConnectAdmin */
    dsql__token_prefix *pre = &st->prefix[a];
    if (!st->prefix_valid[a] || !dsql__token_prefix_matches(pre, in, creds)) {
        dsql__token_prefix_init(pre, in, creds);
        st->prefix_valid[a] = 1;
    }
    if (!in->session_enc && in->session_token_len)
        in->session_enc = stripe_session_enc(st, creds->session_token, in->session_token_len,
                                             &in->session_enc_len);
    return dsql__token_write(in, creds, pre, &st->key, buf);
}

dsql_status dsql__signer_token_enc(dsql_signer *signer, const dsql_token_request *params,
                                   const dsql_credentials *creds,
                                   const dsql__session_known *known, char *buf, size_t cap,
                                   size_t *len, dsql_error *err)
{
    if (!signer)
        return dsql__error(err, DSQL_EINVAL, "signer is NULL");
    stripe *st = &signer->stripes[this_thread_stripe()];
    dsql__token_input in;
    dsql__token_host scratch; /* for a hostname too long to keep (and to be valid) */
    pthread_mutex_lock(&st->lock);
    dsql_status status =
        dsql__token_begin(params, creds, &in, &st->hosts, &scratch, known, buf, cap, len, err);
    if (status == DSQL_OK) {
        size_t written = stripe_sign(st, &in, creds, buf);
        if (len)
            *len = written;
    }
    pthread_mutex_unlock(&st->lock);
    if (status == DSQL_OK)
        dsql__token_end(&in);
    return status;
}

dsql_status dsql__signer_token(dsql_signer *signer, const dsql_token_request *params,
                              const dsql_credentials *creds, char *buf, size_t cap,
                              size_t *len, dsql_error *err)
{
    return dsql__signer_token_enc(signer, params, creds, NULL, buf, cap, len, err);
}
