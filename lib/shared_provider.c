/* The process-wide default token providers: what the adapters sign with
 * when they are given no provider. One caching signer over one cached
 * default credentials chain per profile, made on first use and shared by
 * every caller and thread, so a pool warming up or a burst of connects
 * makes one credentials fetch, not one per connection (the cache is
 * single-flight). Never freed: a thread may still be signing while exit
 * handlers run; memory checkers see them as still reachable. */
#include "internal.h"

#include <pthread.h>
#include <string.h>

typedef struct shared {
    struct shared *next;
    char *profile; /* the explicitly requested profile; NULL: none */
    dsql_token_provider *tp;
} shared;

static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static shared *shared_list; /* guarded by shared_lock */

static int same_profile(const char *a, const char *b)
{
    return a ? b && strcmp(a, b) == 0 : !b;
}

/* A new entry for profile at the head of the list; the caller holds the
 * lock. NULL with err set on failure (nothing added). */
static shared *shared_add(const char *profile, dsql_error *err)
{
    shared *s = dsql__calloc(1, sizeof *s);
    if (!s || (profile && !(s->profile = dsql__strdup(profile)))) {
        dsql__free(s);
        dsql__error(err, DSQL_ENOMEM, "out of memory creating the shared default provider");
        return NULL;
    }
    dsql_credentials_provider *creds = dsql_credentials_provider_default(profile, err);
    s->tp = creds ? dsql_token_provider_signing(creds, NULL, err) : NULL;
    if (!s->tp) {
        dsql__free(s->profile);
        dsql__free(s);
        return NULL;
    }
    dsql__token_provider_mark_shared(s->tp);
    s->next = shared_list;
    shared_list = s;
    return s;
}

dsql_token_provider *dsql_token_provider_shared(const dsql_config *cfg, dsql_error *err)
{
    const char *profile = cfg ? dsql__config_explicit_profile(cfg) : NULL;
    pthread_mutex_lock(&shared_lock);
    shared *s = shared_list;
    while (s && !same_profile(s->profile, profile))
        s = s->next;
    if (!s)
        s = shared_add(profile, err);
    pthread_mutex_unlock(&shared_lock);
    return s ? s->tp : NULL;
}
