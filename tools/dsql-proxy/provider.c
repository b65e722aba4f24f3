/* dsql-proxy: where its tokens come from. The same layers as
 * dsql_token_provider_shared (a signing provider over the cached default
 * credentials chain), made here because --metrics counts how often the
 * credentials are fetched: a cache of our own sits over a counter over the
 * library's default chain, so the counter sees each fetch the proxy's cache
 * makes (the first, and each refresh ahead of expiry) and nothing per
 * token. Both caches share one expiry, so a refresh of ours is a refresh
 * of the chain's. */
#include <stdlib.h>

#include "dsqlauth/adapter.h" /* dsql_error_set */
#include "proxy.h"

typedef struct counting {
    dsql_credentials_provider *inner;
    dp_stats *stats;
} counting;

/* Runs on the token worker thread (or at start): the counters are atomic. */
static dsql_status counting_get(void *self, dsql_credentials *out, dsql_error *err)
{
    counting *c = self;
    dsql_status st = dsql_credentials_provider_get(c->inner, out, err);

    atomic_fetch_add(st == DSQL_OK ? &c->stats->creds_fetches : &c->stats->creds_fetch_failures,
                     1);
    return st;
}

static void counting_destroy(void *self)
{
    counting *c = self;

    dsql_credentials_provider_free(c->inner);
    free(c);
}

static const dsql_credentials_provider_vtable COUNTING = {DSQL_STRUCT_VERSION, counting_get,
                                                          counting_destroy};

dsql_token_provider *dp_token_provider_new(const char *profile, dp_stats *stats,
                                           dsql_error *err)
{
    dsql_credentials_provider *chain = dsql_credentials_provider_default(profile, err);
    dsql_credentials_provider *counted, *cached;
    counting *c;

    if (!chain)
        return NULL;
    c = calloc(1, sizeof *c);
    if (!c) {
        dsql_credentials_provider_free(chain);
        dsql_error_set(err, DSQL_ENOMEM, "out of memory");
        return NULL;
    }
    c->inner = chain;
    c->stats = stats;
    counted = dsql_credentials_provider_new(&COUNTING, c, err);
    if (!counted) {
        counting_destroy(c);
        return NULL;
    }
    /* each takes ownership of what it wraps, also when it fails */
    cached = dsql_credentials_provider_cached(counted, err);
    return cached ? dsql_token_provider_signing(cached, NULL, err) : NULL;
}
